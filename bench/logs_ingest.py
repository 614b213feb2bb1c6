"""CloudWatch Logs benchmarks: PutLogEvents ingest over HTTP, and FilterLogEvents over 10 M events.

Ingest
  Bodies are the largest PutLogEvents calls AWS allows for ~200-byte log lines, half JSON and
  half text: events are added while Σ(UTF-8 bytes + 26) stays within 1,048,576 bytes (≈ 4,700
  events a call).  ``python -m metricstore serve`` runs on a fresh data dir; ``--clients``
  processes with ``--connections`` keep-alive connections each post the bodies for
  ``--seconds``.  Events/s counts events of 200 answers, and after the run the database must
  hold exactly that many (200 means committed).  In the same run: a raw DuckDB insert of the
  same rows (Arrow tables built beforehand, one committed INSERT per 10,000 rows, the
  server's table layout), and the server's own write path in-process (``LogsStore.append``
  through ``Store.write_sync``, one call's events per transaction).

FilterLogEvents
  A store of ``--events`` events (default 10 M, one group, 10 streams, ~200-byte lines, half
  JSON) is built directly with ``LogsStore.append`` through ``Store.write_sync``, then the
  server is started on it and FilterLogEvents runs a term pattern and a JSON pattern (first
  page, AWS's default limit of 10,000 events), timed from the client (boto3) and as the
  server's own handler time.  The baseline is hand-written DuckDB SQL answering the same
  question on the same file, in its own process, fetching the same rows.

    .venv/bin/python bench/logs_ingest.py                          # everything (~6 min)
    .venv/bin/python bench/logs_ingest.py --skip-filter --seconds 10
    .venv/bin/python bench/logs_ingest.py --skip-ingest --events 2000000
    .venv/bin/python bench/logs_ingest.py --profile                # + py-spy of the server
    .venv/bin/python bench/logs_ingest.py --results bench/RESULTS.md   # append the results
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.ROOT))

# metricstore.store.db puts None in sys.modules["pandas"] (a cached failed import for duckdb);
# pyarrow's pandas shim, if first used after that, raises AttributeError on the first
# pa.array(numpy array) of the process.  Let the shim look for pandas before that happens.
import numpy as _np  # noqa: E402
import pyarrow as _pa  # noqa: E402

_pa.array(_np.zeros(1))

GROUP = "/bench/logs"
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
TERM_PATTERN = "ERROR"
JSON_PATTERN = "{ $.latency > 990 }"
HEADERS = {"Content-Type": "application/x-amz-json-1.1",
           "X-Amz-Target": "Logs_20140328.PutLogEvents",
           # auth is off: only the credential scope (account, region) is read
           "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/logs/"
                            "aws4_request, SignedHeaders=host;x-amz-date, Signature=0"}


# ---------------------------------------------------------------------------------------------
# log lines
# ---------------------------------------------------------------------------------------------

PATHS = ["/api/v1/items", "/api/v1/users", "/api/v2/orders", "/health", "/static/app.js",
         "/api/v1/search", "/login", "/api/v2/cart"]
WORDS = ["cache", "miss", "retry", "upstream", "timeout", "ok", "slow", "db", "auth", "queue"]


def lines(seed: int, start: int, n: int) -> list[str]:
    """``n`` log lines of ~200 bytes: half JSON objects, half text; 1 % of each kind is an
    error (``ERROR``, status 500).  Random fields are drawn with numpy, so that building a
    10 M event store is not dominated by Python's random module."""
    import numpy as np
    rng = np.random.default_rng(seed * 1_000_003 + start)
    lat = rng.integers(1, 1001, n)
    path = rng.integers(0, len(PATHS), n)
    err = rng.random(n) < 0.01
    status = np.where(err, 500, np.array([200, 200, 200, 201, 304, 404])[rng.integers(0, 6, n)])
    user = rng.integers(1, 100_000, n)
    size = rng.integers(100, 100_000, n)
    words = rng.integers(0, len(WORDS), (n, 4))
    trace = rng.integers(0, 2 ** 63, (n, 2))
    # numpy scalars are slow one by one: plain lists from here
    lat, path, err, status = lat.tolist(), path.tolist(), err.tolist(), status.tolist()
    user, size = user.tolist(), size.tolist()
    notes = [" ".join(WORDS[w] for w in ws) for ws in words.tolist()]
    traces = [f"{a:016x}{b:016x}" for a, b in trace.tolist()]
    out = []
    for j in range(n):
        i = start + j
        note, tr = notes[j], traces[j]
        p = f"{PATHS[path[j]]}/{lat[j] % 97}"
        if i % 2:
            level = "ERROR" if err[j] else "INFO"
            out.append(f'{{"level": "{level}", "latency": {lat[j]}, "path": "{p}", '
                       f'"status": {status[j]}, "user": "u{user[j]:05d}", '
                       f'"request_id": "req-{i:012d}", "msg": "{note}", "bytes": {size[j]}, '
                       f'"trace": "{tr}"}}')
        else:
            level = "ERROR" if err[j] else "INFO "
            out.append(f"2026-11-26T10:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d}Z {level} "
                       f"[req-{i:012d}] GET {p} {status[j]} {lat[j]}ms user=u{user[j]:05d} "
                       f"agent=bench/1.0 {note} bytes={size[j]} host=web-{i % 7} trace={tr}")
    return out


def make_bodies(stream: str, n_bodies: int, now_ms: int, seed: int) -> list[dict]:
    """PutLogEvents JSON bodies, each as large as AWS allows for these lines."""
    pool = lines(seed, seed * 10_000_000, n_bodies * 6000)
    bodies, k = [], 0
    for b in range(n_bodies):
        events, size = [], 0
        t = now_ms - 3_600_000 + b * 1000
        while True:
            msg = pool[k]
            n = len(msg.encode()) + EVENT_OVERHEAD
            if size + n > MAX_BATCH_BYTES or len(events) == 10_000:
                break
            events.append({"timestamp": t + len(events) // 10, "message": msg})
            size += n
            k += 1
        body = json.dumps({"logGroupName": GROUP, "logStreamName": stream,
                           "logEvents": events}).encode()
        bodies.append({"body": body, "events": len(events), "bytes": size})
    return bodies


# ---------------------------------------------------------------------------------------------
# ingest: load generator
# ---------------------------------------------------------------------------------------------

def _client(url, bodies, connections, start_at, seconds, out_q):
    import aiohttp

    async def run():
        st = {"events": 0, "requests": 0, "errors": 0, "first_error": None, "lat": [],
              "end": 0.0}
        conn = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=conn,
                                         timeout=aiohttp.ClientTimeout(total=300)) as s:
            await asyncio.gather(*(s.get(url + "/health") for _ in range(connections)))
            await asyncio.sleep(max(0.0, start_at - time.time()))
            deadline = start_at + seconds

            async def worker(k):
                i = k
                while time.time() < deadline:
                    b = bodies[i % len(bodies)]
                    i += connections
                    t0 = time.perf_counter()
                    async with s.post(url + "/", data=b["body"], headers=HEADERS) as r:
                        payload = await r.read()
                    st["lat"].append(time.perf_counter() - t0)
                    st["end"] = max(st["end"], time.time())
                    if r.status == 200 and b"rejectedLogEventsInfo" not in payload:
                        st["events"] += b["events"]
                        st["requests"] += 1
                    else:
                        st["errors"] += 1
                        st["first_error"] = st["first_error"] or f"{r.status} {payload[:300]!r}"
            await asyncio.gather(*(worker(k) for k in range(connections)))
        return st

    out_q.put(asyncio.run(run()))


def setup_group(url: str, streams: list[str]) -> None:
    import http.client
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=60)
    for op, body in [("CreateLogGroup", {"logGroupName": GROUP})] + [
            ("CreateLogStream", {"logGroupName": GROUP, "logStreamName": s}) for s in streams]:
        conn.request("POST", "/", body=json.dumps(body).encode(),
                     headers=dict(HEADERS, **{"X-Amz-Target": f"Logs_20140328.{op}"}))
        r = conn.getresponse()
        payload = r.read()
        assert r.status == 200, payload
    conn.close()


def run_load(srv: C.Proc, per_client: list[list[dict]], connections: int,
             seconds: float) -> dict:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=_client, args=(srv.url, bodies, connections, start_at, seconds, q))
             for bodies in per_client]
    for p in procs:
        p.start()
    while time.time() < start_at:
        time.sleep(0.005)
    cpu0, other = srv.cpu_seconds(), C.OtherCPU()
    res = [q.get(timeout=seconds + 300) for _ in procs]
    cpu1 = srv.cpu_seconds()
    for p in procs:
        p.join()
    wall = max(r["end"] for r in res) - start_at
    lat = sorted(x for r in res for x in r["lat"])
    events = sum(r["events"] for r in res)
    return {"events": events, "requests": sum(r["requests"] for r in res),
            "errors": sum(r["errors"] for r in res),
            "first_error": next((r["first_error"] for r in res if r["first_error"]), None),
            "seconds": wall, "events_per_s": events / wall,
            "mib_per_s": sum(r["requests"] for r in res) * MAX_BATCH_BYTES / 2 ** 20 / wall,
            "lat_p50_ms": lat[len(lat) // 2] * 1000, "lat_p99_ms": lat[int(len(lat) * .99)] * 1000,
            "server_cores": (cpu1 - cpu0) / wall, "other_cores": other.cores()}


def stored_events(db: Path) -> int:
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM log_events").fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# ingest: baselines in-process
# ---------------------------------------------------------------------------------------------

def rows_of(bodies: list[dict]) -> tuple[list, list]:
    ts, msgs = [], []
    for b in bodies:
        for e in json.loads(b["body"])["logEvents"]:
            ts.append(e["timestamp"])
            msgs.append(e["message"])
    return ts, msgs


def raw_insert(bodies: list[dict], total: int, workdir: Path, batch_rows: int = 10_000) -> dict:
    """The same rows into the server's table layout: Arrow tables built first, then one
    committed INSERT per ``batch_rows`` rows."""
    import duckdb
    import numpy as np
    import pyarrow as pa

    from metricstore.store.logs import DDL
    ts, msgs = rows_of(bodies)
    reps = -(-total // len(ts))
    ts, msgs = (ts * reps)[:total], (msgs * reps)[:total]
    tables = []
    for a in range(0, total, batch_rows):
        n = len(ts[a:a + batch_rows])
        tables.append(pa.table({
            "group_id": pa.array(np.full(n, 1, dtype=np.int32)),
            "stream_id": pa.array(np.full(n, 1, dtype=np.int32)),
            "ts": pa.array(np.asarray(ts[a:a + batch_rows], dtype=np.int64)),
            "ingest": pa.array(np.full(n, 0, dtype=np.int64)),
            "seq": pa.array(np.arange(a, a + n, dtype=np.int64)),
            "message": pa.array(msgs[a:a + batch_rows], type=pa.string())}))
    path = workdir / "raw.duckdb"
    con = duckdb.connect(str(path))
    con.execute(next(st for st in DDL.split(";") if "TABLE IF NOT EXISTS log_events" in st))
    t0 = time.perf_counter()
    for _batch in tables:  # noqa: B007 (replacement scan)
        con.execute("INSERT INTO log_events SELECT * FROM _batch")
    el = time.perf_counter() - t0
    assert con.execute("SELECT count(*) FROM log_events").fetchone()[0] == total
    con.close()
    path.unlink()
    return {"rows": total, "seconds": el, "events_per_s": total / el, "batch_rows": batch_rows}


def store_append(bodies: list[dict], seconds: float, workdir: Path, prepare=None,
                 report=None) -> dict:
    """The server's write path without HTTP: ``LogsStore.append`` (and the metric hook with no
    filters) through ``Store.write_sync``, one call's events per transaction.
    ``prepare(store, logs, group_id)`` runs before the timed loop, ``report(store, logs)``
    after it, its dict merged into the result (bench/insights.py: demanded fields)."""
    import numpy as np

    from metricstore.store.db import Store
    from metricstore.store.logs import EventBatch, LogsStore
    batches = []
    for b in bodies:
        evs = json.loads(b["body"])["logEvents"]
        batches.append(([e["timestamp"] for e in evs], [e["message"] for e in evs], b["bytes"]))
    path = workdir / "append.duckdb"
    for p in (path, path.with_name(path.name + ".wal")):
        p.unlink(missing_ok=True)
    store = Store(str(path))
    logs = LogsStore(store)
    g = store.write_sync(lambda w: logs.create_group(w, "a", "r", "/g", 0, None, "STANDARD"))
    sid = store.write_sync(lambda w: logs.create_stream(w, g.id, "s", 0))
    if prepare is not None:
        prepare(store, logs, g.id)
    n, i = 0, 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        ts, msgs, size = batches[i % len(batches)]
        i += 1
        batch = EventBatch(np.asarray(ts, dtype=np.int64), msgs, size)
        store.write_sync(lambda w, batch=batch: logs.append(w, g.id, sid, batch, 0))
        n += len(msgs)
    el = time.perf_counter() - t0
    extra = report(store, logs) if report is not None else {}
    store.close()
    return {"events": n, "seconds": el, "events_per_s": n / el, **extra}


# ---------------------------------------------------------------------------------------------
# FilterLogEvents
# ---------------------------------------------------------------------------------------------

def build_store(data_dir: Path, events: int, chunk: int = 200_000) -> float:
    """``events`` events in one group, 10 streams, over the last 10 days (oldest first)."""
    import numpy as np

    from metricstore.store.db import Store
    from metricstore.store.logs import EventBatch, LogsStore
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(str(data_dir / "metricstore.duckdb"))
    logs = LogsStore(store)
    now = int(time.time() * 1000)
    g = store.write_sync(lambda w: logs.create_group(w, "000000000000", "us-east-1", GROUP, now,
                                                     None, "STANDARD"))
    sids = [store.write_sync(lambda w, k=k: logs.create_stream(w, g.id, f"s{k}", now))
            for k in range(10)]
    t0 = time.perf_counter()
    start = now - 10 * 86_400_000
    step = 10 * 86_400_000 / events
    for a in range(0, events, chunk):
        n = min(chunk, events - a)
        msgs = lines(7, a, n)
        ts = (start + np.arange(a, a + n) * step).astype(np.int64)
        per = -(-n // len(sids))
        for k, sid in enumerate(sids):      # streams interleave in time, as in a real group
            sl = slice(k * per, (k + 1) * per)
            part = EventBatch(ts[sl], msgs[sl], sum(len(m) for m in msgs[sl]))
            if len(part.messages):
                store.write_sync(lambda w, p=part, sid=sid: logs.append(w, g.id, sid, p, now))
    el = time.perf_counter() - t0
    store.close()
    return el


def _time_server(url: str, pattern: str, repeats: int) -> dict:
    """FilterLogEvents first page: raw HTTP (request sent → last byte of the answer read; the
    server's whole work, no client-side parsing), and boto3 end to end (+ botocore's parsing
    of the ~1 MB answer)."""
    import http.client

    import boto3
    from botocore.config import Config
    body = json.dumps({"logGroupName": GROUP, "filterPattern": pattern}).encode()
    headers = dict(HEADERS, **{"X-Amz-Target": "Logs_20140328.FilterLogEvents"})
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=900)
    times = []
    for _ in range(repeats + 1):                      # the first call warms caches
        t0 = time.perf_counter()
        conn.request("POST", "/", body=body, headers=headers)
        r = conn.getresponse()
        payload = r.read()
        times.append(time.perf_counter() - t0)
        assert r.status == 200, payload[:300]
    conn.close()
    events = json.loads(payload)["events"]
    client = boto3.client("logs", endpoint_url=url, region_name="us-east-1",
                          config=Config(retries={"max_attempts": 1}, read_timeout=900))
    b3 = []
    for _ in range(2):
        t0 = time.perf_counter()
        client.filter_log_events(logGroupName=GROUP, filterPattern=pattern)
        b3.append(time.perf_counter() - t0)
    return {"events": len(events), "bytes": len(payload),
            "first": (events[0]["timestamp"], events[0]["message"]) if events else None,
            "cold_s": times[0], "median_s": statistics.median(times[1:]),
            "boto3_s": min(b3)}


SQL_BASE = ("SELECT ts, message, ingest, seq, stream_id FROM log_events WHERE group_id = 1 AND {}"
            " ORDER BY ts, seq LIMIT 10001")
HAND_SQL = {
    TERM_PATTERN: {"contains": "contains(message, 'ERROR')"},
    JSON_PATTERN: {
        # the simplest correct SQL (non-JSON lines must not fail) ...
        "try_cast": "TRY_CAST(json_extract(TRY_CAST(message AS JSON), '$.latency') AS DOUBLE)"
                    " > 990",
        # ... and what an expert adds knowing objects start with '{'
        "prefiltered": "starts_with(ltrim(message), '{') AND TRY_CAST(json_extract("
                       "TRY_CAST(message AS JSON), '$.latency') AS DOUBLE) > 990",
    },
}


def _hand_sql_proc(db: str, repeats: int, q) -> None:
    import duckdb
    con = duckdb.connect(db, read_only=True)
    out = {}
    for pattern, variants in HAND_SQL.items():
        for name, cond in variants.items():
            sql = SQL_BASE.format(cond)
            times = []
            for _ in range(repeats + 1):
                t0 = time.perf_counter()
                rows = con.execute(sql).fetchall()
                times.append(time.perf_counter() - t0)
            out[(pattern, name)] = {"rows": len(rows), "median_s": statistics.median(times[1:]),
                                    "first": (rows[0][0], rows[0][1]) if rows else None}
    con.close()
    q.put(out)


def hand_sql(db: Path, repeats: int) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_hand_sql_proc, args=(str(db), repeats, q))
    p.start()
    out = q.get(timeout=3600)
    p.join()
    return out


# ---------------------------------------------------------------------------------------------
# profiling
# ---------------------------------------------------------------------------------------------

def pyspy(pid: int, seconds: float, out: Path, rate: int = 100) -> subprocess.Popen | None:
    exe = Path(sys.executable).parent / "py-spy"
    if not exe.exists():
        return None
    return subprocess.Popen([str(exe), "record", "-p", str(pid), "-d", str(int(seconds)), "-r",
                             str(rate), "--threads", "--subprocesses", "-f", "raw", "-o",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_PLUMBING = ("threading.py", "futures/thread.py", "futures/process.py", "asyncio/", "runpy",
             "multiprocessing/", "aiohttp/web.py", "metricstore/__main__.py", "<string>",
             "store/db.py:183", "store/db.py:125", "spawn_main", "thread (")


def pyspy_summary(raw: Path, rate: int, seconds: float, top: int = 6) -> str:
    """Cores kept busy per process/thread, and each busy thread's top functions (self and
    inclusive), from py-spy's raw (collapsed) output."""
    if not raw.exists():
        return "(no py-spy output: ptrace not permitted?)"
    total: Counter = Counter()
    selfc: dict = {}
    incl: dict = {}
    for ln in raw.read_text().splitlines():
        stack, _, cnt = ln.rpartition(" ")
        if not stack:
            continue
        frames, n = stack.split(";"), int(cnt)
        proc, thread = "server", "?"
        while frames and (frames[0].startswith("process ") or frames[0].startswith("thread (")):
            f = frames.pop(0)
            if f.startswith("process ") and "spawn_main" in f:
                proc = "worker"
            elif f.startswith("thread ("):
                thread = f.split("): ", 1)[-1].rstrip(")") or "?"
        key = f"{proc}/{thread}"
        total[key] += n
        if frames:
            selfc.setdefault(key, Counter())[_short(frames[-1])] += n
            for fn in {_short(f) for f in frames}:
                if not any(x in fn for x in _PLUMBING):
                    incl.setdefault(key, Counter())[fn] += n
    per_core = rate * seconds
    out = ["cores busy by process/thread: " + ", ".join(
        f"{k} {c / per_core:.2f}" for k, c in total.most_common(6))]
    for key, c in total.most_common(3):
        if c / per_core < 0.05:
            break
        out.append(f"[{key}] self: " + "; ".join(
            f"{fn} {k / per_core:.2f}" for fn, k in selfc.get(key, Counter()).most_common(top)))
        out.append(f"[{key}] inclusive: " + "; ".join(
            f"{fn} {k / per_core:.2f}" for fn, k in incl.get(key, Counter()).most_common(top)))
    return "\n".join(out)


def _short(frame: str) -> str:
    name, _, loc = frame.partition(" (")
    parts = loc.rstrip(")").split("/")
    return f"{name} ({'/'.join(parts[-2:])})"


# ---------------------------------------------------------------------------------------------

def bench_ingest(args, base: Path, report: list) -> None:
    now_ms = int(time.time() * 1000)
    streams = [f"s{c}" for c in range(args.clients)]
    per_client = [make_bodies(s, args.bodies, now_ms, seed=c + 1) for c, s in enumerate(streams)]
    sizes = [b["events"] for bs in per_client for b in bs]
    data = base / "ingest-data"
    srv = C.metricstore_server(data, extra=args.server_args.split()).start()
    try:
        setup_group(srv.url, streams)
        prof = None
        if args.profile:
            prof = pyspy(srv.proc.pid, args.seconds - 1, base / "ingest.raw")
            time.sleep(1.0)                            # py-spy attaches before the load starts
        load = run_load(srv, per_client, args.connections, args.seconds)
        if prof:
            prof.wait(timeout=120)
    finally:
        srv.stop()
    stored = stored_events(data / "metricstore.duckdb")
    raw = raw_insert(per_client[0], args.raw_rows, base)
    app = store_append(per_client[0], min(args.seconds, 8), base)
    ratio = load["events_per_s"] / raw["events_per_s"]
    report += [
        "### PutLogEvents over HTTP",
        "",
        f"- bodies: {min(sizes):,}–{max(sizes):,} events of ~200 bytes (half JSON, half text) "
        f"per call, each just under 1,048,576 bytes counting 26 bytes an event; "
        f"{args.clients} client processes × {args.connections} connections, "
        f"{args.seconds:.0f} s; server `{args.server_args or 'defaults'}`",
        f"- **{C.fmt_rate(load['events_per_s'])} events/s** ({load['mib_per_s']:.1f} MiB/s of "
        f"events), {load['requests']} calls, {load['errors']} errors"
        + (f" (first: {load['first_error']})" if load["first_error"] else "")
        + f"; latency p50 {load['lat_p50_ms']:.0f} ms, p99 {load['lat_p99_ms']:.0f} ms; server "
        f"{load['server_cores']:.2f} cores, other processes {load['other_cores']:.2f} cores",
        f"- stored after the run: {stored:,} events "
        + ("(= events acknowledged)" if stored == load["events"] else
           f"(≠ {load['events']:,} acknowledged: CHECK)"),
        f"- raw DuckDB insert of the same rows via Arrow, 10,000-row committed batches: "
        f"{C.fmt_rate(raw['events_per_s'])} events/s → **ratio {ratio:.2f}×** (target ≥ 0.5×)",
        f"- the server's write path in-process (`LogsStore.append` via `Store.write_sync`, one "
        f"call per transaction, no HTTP): {C.fmt_rate(app['events_per_s'])} events/s",
    ]
    if args.profile:
        report += ["", "py-spy of the server under this load (on-CPU samples):", "", "```",
                   pyspy_summary(base / "ingest.raw", 100, args.seconds - 1), "```"]
    report.append("")


def bench_filter(args, base: Path, report: list) -> None:
    data = Path(args.filter_dir) if args.filter_dir else base / "filter-data"
    db = data / "metricstore.duckdb"
    marker = data / f"built-{args.events}"
    if not marker.exists():
        if data.exists():
            C.rmtree(data)
        built = build_store(data, args.events)
        marker.write_text(str(built))
    built = float(marker.read_text())
    size = db.stat().st_size / 2 ** 30
    srv = C.metricstore_server(data, extra=args.server_args.split()).start()
    results = {}
    try:
        for pattern in (TERM_PATTERN, JSON_PATTERN):
            prof = None
            if args.profile:
                prof = pyspy(srv.proc.pid, 6, base / f"filter-{len(results)}.raw")
                time.sleep(1.0)
            results[pattern] = _time_server(srv.url, pattern, args.repeats)
            if prof:
                prof.wait(timeout=120)
    finally:
        srv.stop()
    hand = hand_sql(db, args.repeats)
    report += [
        f"### FilterLogEvents over {args.events / 1e6:g} M events",
        "",
        f"- store: {args.events:,} events (~200 bytes, half JSON) in one group, 10 streams, "
        f"{size:.2f} GiB on disk, built in {built:.0f} s through `LogsStore.append`",
        "- first page (AWS's default limit: 10,000 events or 1 MB), timed over raw HTTP from "
        "sending the request to the last byte of the answer, median of "
        f"{args.repeats} after one warm-up call (boto3 end to end, with its parsing of the "
        "answer: best of 2); baseline: the hand-written SQL in its own process on the same "
        "file, `ORDER BY ts, seq LIMIT 10001`, rows fetched to Python",
        "",
        "| pattern | events returned | server, HTTP (median) | boto3 | hand-written SQL (fastest "
        "variant) | ratio |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for pattern, r in results.items():
        variants = {name: h for (p, name), h in hand.items() if p == pattern}
        best = min(variants, key=lambda n: variants[n]["median_s"])
        h = variants[best]
        others = ", ".join(f"`{n}` {v['median_s'] * 1000:.0f} ms" for n, v in variants.items()
                           if n != best)
        same = "" if h["first"] == (r["first"][0], r["first"][1]) else " (first row differs!)"
        report.append(
            f"| `{pattern}` | {r['events']:,} ({r['bytes'] / 2 ** 20:.1f} MiB) | "
            f"{r['median_s'] * 1000:.0f} ms (cold {r['cold_s'] * 1000:.0f} ms) | "
            f"{r['boto3_s'] * 1000:.0f} ms | {h['median_s'] * 1000:.0f} ms (`{best}`"
            f"{'; ' + others if others else ''}){same} | "
            f"**{r['median_s'] / h['median_s']:.2f}×** |")
    report.append("")
    if args.profile:
        for k, pattern in enumerate(results):
            report += [f"py-spy of the server during FilterLogEvents `{pattern}`:", "", "```",
                       pyspy_summary(base / f"filter-{k}.raw", 100, 6), "```", ""]
    if not args.filter_dir and not args.keep:
        C.rmtree(data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=15, help="ingest load duration")
    ap.add_argument("--clients", type=int, default=3, help="client processes")
    ap.add_argument("--connections", type=int, default=2, help="connections per client")
    ap.add_argument("--bodies", type=int, default=4, help="distinct bodies per client")
    ap.add_argument("--raw-rows", type=int, default=1_000_000, help="rows of the raw insert")
    ap.add_argument("--events", type=int, default=10_000_000, help="FilterLogEvents store size")
    ap.add_argument("--repeats", type=int, default=5, help="FilterLogEvents timed calls")
    ap.add_argument("--filter-dir", help="build/reuse the FilterLogEvents store here")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directories")
    ap.add_argument("--server-args", default="", help="extra `metricstore serve` flags")
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--skip-filter", action="store_true")
    ap.add_argument("--profile", action="store_true", help="py-spy the server")
    ap.add_argument("--results", help="append the report to this markdown file")
    args = ap.parse_args()
    base = C.tmpdir("bench-logs-")
    report = [f"## CloudWatch Logs ({time.strftime('%Y-%m-%d %H:%M')}, bench/logs_ingest.py)", "",
              f"Machine: {C.machine()}; {C.busy_note()} at start.", ""]
    try:
        if not args.skip_ingest:
            bench_ingest(args, base, report)
        if not args.skip_filter:
            bench_filter(args, base, report)
    finally:
        if not args.keep:
            C.rmtree(base)
    text = "\n".join(report)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
