"""PutMetricData ingest benchmark.

For each variant (JSON 1.0 single values, JSON with Values arrays, CBOR, query) it:

1. builds request bodies exactly as boto3 sends them (botocore serializes for the forced
   protocol, gzips bodies > 10 KiB, signs; we capture the request at ``before-send``);
2. measures the *decode-only* rate of those bodies in-process: ``pick_codec`` + ``decode`` +
   ``read_params`` + ``operations.metrics.build_batch`` (gzip inflate included, as the server
   pays it too);
3. starts ``python -m metricstore serve`` on a fresh data dir and posts the same bodies from
   ``--clients`` processes with ``--connections`` keep-alive connections each, for
   ``--seconds``; meanwhile a probe measures how long after a 200 a datapoint shows up in
   GetMetricStatistics;
4. the same load against moto's server where moto speaks the protocol.

Once, it also measures a raw DuckDB insert of the same rows in 10,000-row batches (and the
server's own ``MetricsStore.insert`` path in-process), and prints end-to-end datapoints/s with
the ratios to decode-only and to the raw insert.

    .venv/bin/python bench/ingest.py                     # everything, ~4 minutes
    .venv/bin/python bench/ingest.py --variants json --seconds 10 --no-moto
    .venv/bin/python bench/ingest.py --profile           # + py-spy of the server under JSON load
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.ROOT))

NAMESPACE = "Bench/Ingest"


# ---------------------------------------------------------------------------------------------
# bodies
# ---------------------------------------------------------------------------------------------

def make_datums(body_no: int, n: int, now: float, values_per_datum: int, rng: random.Random):
    """n datums on n distinct series (10 metric names x n/10 hosts), timestamps in the last
    hour, in the shape a typical agent sends (name, 2 dimensions, timestamp, value, unit)."""
    out = []
    for i in range(n):
        d = {"MetricName": f"metric_{i % 10}",
             "Dimensions": [{"Name": "InstanceId", "Value": f"i-{body_no:04d}{i // 10:08d}"},
                            {"Name": "Service", "Value": "api"}],
             "Timestamp": now - 3600 + rng.random() * 3500,
             "Unit": "Milliseconds"}
        if values_per_datum:
            d["Values"] = [round(rng.random() * 1000, 3) for _ in range(values_per_datum)]
        else:
            d["Value"] = round(rng.random() * 1000, 3)
        out.append(d)
    return out


VARIANTS = {
    # name: (protocol, values per datum; 0 = single Value)
    "json": ("json", 0),
    "json-values": ("json", 20),
    "cbor": ("cbor", 0),
    "query": ("query", 0),
}


def build_bodies(variant: str, n_bodies: int, datums: int, now: float, dirs) -> list[dict]:
    protocol, vpd = VARIANTS[variant]
    rec = C.Recorder(protocol, dirs)
    rng = random.Random(42)
    bodies = []
    for b in range(n_bodies):
        data = make_datums(b, datums, now, vpd, rng)
        req = rec.request("put_metric_data", Namespace=NAMESPACE, MetricData=data)
        req["datapoints"] = datums * (vpd or 1)
        req["raw_size"] = len(gzip.decompress(req["body"])) \
            if req["headers"].get("Content-Encoding") == "gzip" else len(req["body"])
        bodies.append(req)
    return bodies


# ---------------------------------------------------------------------------------------------
# decode-only and raw inserts (in-process)
# ---------------------------------------------------------------------------------------------

def decoder():
    """``decode(request, now) -> MetricBatch``: the server's codec path for PutMetricData, in
    this process: pick_codec + decode + read_params + build_batch (through the operation's
    prepare step when the server has one: build_batch + conversion to numpy columns)."""
    from multidict import CIMultiDict

    from metricstore import operations
    from metricstore.codecs import RequestInfo, pick_codec
    from metricstore.operations.metrics import build_batch
    operations.load_all()
    prep = getattr(operations, "PREPARE", {}).get(("cloudwatch", "PutMetricData"))
    env_cls = getattr(operations, "PrepareEnv", None)

    def decode(req: dict, now: float):
        path, _, qs = req["path"].partition("?")
        ri = RequestInfo(req["method"], path, CIMultiDict(req["headers"]), req["body"], {})
        codec = pick_codec(ri)
        call = codec.decode(ri)
        params = codec.read_params(call, ri)
        if prep is not None and env_cls is not None:
            return prep(env_cls(now), **params)
        return build_batch(params["Namespace"], params["MetricData"], now, False)
    return decode


def decode_only(bodies: list[dict], seconds: float) -> dict:
    decode = decoder()
    decode(bodies[0], time.time())             # warm the shape readers
    n_dp = n_req = 0
    t0 = time.perf_counter()
    i = 0
    while True:
        b = bodies[i % len(bodies)]
        batch = decode(b, time.time())
        assert batch.datapoints == b["datapoints"], (batch.datapoints, b["datapoints"])
        n_dp += batch.datapoints
        n_req += 1
        i += 1
        el = time.perf_counter() - t0
        if el >= seconds and i >= len(bodies):
            break
    return {"datapoints": n_dp, "requests": n_req, "seconds": el, "dp_per_s": n_dp / el,
            "ms_per_request": el / n_req * 1000}


def _decode_proc(bodies, seconds, q):
    q.put(decode_only(bodies, seconds))


def decode_parallel(bodies: list[dict], seconds: float, procs: int) -> dict:
    """decode_only in ``procs`` processes at once: the decode ceiling of the whole machine."""
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    ps = [ctx.Process(target=_decode_proc, args=(bodies, seconds, q)) for _ in range(procs)]
    for p in ps:
        p.start()
    rs = [q.get(timeout=seconds + 120) for _ in ps]
    for p in ps:
        p.join()
    return {"procs": procs, "dp_per_s": sum(r["dp_per_s"] for r in rs)}


def raw_rows(bodies: list[dict], total: int):
    """Columns (numpy) of the rows the bodies decode to, repeated up to ``total`` rows."""
    import numpy as np
    decode = decoder()
    cols = {k: [] for k in ("series_id", "ts", "value", "weight", "unit", "hires")}
    key_ids: dict = {}
    for b in bodies:
        batch = decode(b, time.time())
        ids = np.array([key_ids.setdefault(k, len(key_ids) + 1) for k in batch.keys], dtype=np.int32)
        cols["series_id"].append(ids[np.asarray(batch.s_key)])
        cols["ts"].append(np.asarray(batch.s_ts, dtype=np.int64))
        cols["value"].append(np.asarray(batch.s_value, dtype=np.float64))
        cols["weight"].append(np.asarray(batch.s_weight, dtype=np.float64))
        cols["unit"].append(np.asarray(batch.s_unit, dtype=np.uint8))
        cols["hires"].append(np.asarray(batch.s_hires, dtype=np.bool_))
    one = {k: np.concatenate(v) for k, v in cols.items()}
    reps = -(-total // len(one["ts"]))
    return {k: np.tile(v, reps)[:total] for k, v in one.items()}


def raw_duckdb_insert(rows: dict, batch_rows: int, workdir: Path) -> dict:
    """INSERT of the same rows into a file database, one committed transaction per batch."""
    import duckdb
    path = workdir / "raw.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE samples_hot (series_id INTEGER, ts BIGINT, value DOUBLE, "
                "weight DOUBLE, unit UTINYINT, hires BOOLEAN)")
    n = len(rows["ts"])
    t0 = time.perf_counter()
    for a in range(0, n, batch_rows):
        _rows = {k: v[a:a + batch_rows] for k, v in rows.items()}  # noqa: F841 (replacement scan)
        con.execute("INSERT INTO samples_hot SELECT * FROM _rows")
    el = time.perf_counter() - t0
    assert con.execute("SELECT count(*) FROM samples_hot").fetchone()[0] == n
    con.close()
    return {"rows": n, "seconds": el, "dp_per_s": n / el, "batch_rows": batch_rows}


def store_insert(bodies: list[dict], seconds: float, workdir: Path, groups=(1, 8)) -> dict:
    """The server's write path in-process: ``MetricsStore.insert`` through ``Store.write_sync``,
    ``per_commit`` request batches per transaction (as group commit does under load)."""
    from metricstore.store.db import Store
    from metricstore.store.metrics import MetricsStore
    decode = decoder()
    batches = [decode(b, time.time()) for b in bodies]
    store = Store(str(workdir / "store.duckdb"))
    ms = MetricsStore(store)
    now_ms = int(time.time() * 1000)
    out = {}
    # first touch creates the series (reported separately)
    t0 = time.perf_counter()
    for b in batches:
        store.write_sync(lambda w, b=b: ms.insert(w, "000000000000", "us-east-1", b, now_ms))
    out["first_put_new_series_ms"] = (time.perf_counter() - t0) / len(batches) * 1000
    for per_commit in groups:
        n = 0
        i = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            group = [batches[(i + j) % len(batches)] for j in range(per_commit)]
            i += per_commit

            def fn(w, group=group):
                return sum(ms.insert(w, "000000000000", "us-east-1", b, now_ms) for b in group)
            n += store.write_sync(fn)
        el = time.perf_counter() - t0
        out[per_commit] = {"datapoints": n, "seconds": el, "dp_per_s": n / el}
    store.close()
    return out


# ---------------------------------------------------------------------------------------------
# load generator (separate processes)
# ---------------------------------------------------------------------------------------------

def _client_main(url, bodies, connections, start_at, seconds, grace, offset, out_q):
    import aiohttp

    async def run():
        stats = {"datapoints": 0, "requests": 0, "errors": 0, "lat": [], "first_error": None,
                 "end": 0.0}
        conn = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
        timeout = aiohttp.ClientTimeout(total=300)
        prepared = [(b["path"], b["body"],
                     {k: v for k, v in b["headers"].items() if k.lower() != "content-length"},
                     b["datapoints"]) for b in bodies]
        async with aiohttp.ClientSession(connector=conn, timeout=timeout,
                                         auto_decompress=False) as s:
            # open the connections before the clock starts
            await asyncio.gather(*(s.get(url + "/health") for _ in range(connections)),
                                 return_exceptions=True)
            delay = start_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            deadline = start_at + seconds

            async def worker(k):
                i = offset + k
                while time.time() < deadline:
                    path, body, headers, n = prepared[i % len(prepared)]
                    i += connections
                    t0 = time.perf_counter()
                    try:
                        async with s.post(url + path, data=body, headers=headers) as r:
                            payload = await r.read()
                            status = r.status
                    except Exception as e:  # noqa: BLE001
                        status, payload = -1, repr(e).encode()
                    stats["lat"].append(time.perf_counter() - t0)
                    stats["end"] = max(stats["end"], time.time())
                    if status == 200:
                        stats["datapoints"] += n
                        stats["requests"] += 1
                    else:
                        stats["errors"] += 1
                        if stats["first_error"] is None:
                            stats["first_error"] = f"{status} {payload[:300]!r}"
            # requests still in flight `grace` seconds after the deadline are abandoned (not
            # counted): bounds the run against a server that takes minutes per call
            try:
                await asyncio.wait_for(asyncio.gather(*(worker(k) for k in range(connections))),
                                       timeout=deadline + grace - time.time())
            except asyncio.TimeoutError:
                stats["abandoned"] = True
        return stats

    t_cpu = time.process_time()
    stats = asyncio.run(run())
    stats["cpu"] = time.process_time() - t_cpu
    out_q.put(stats)


class Prober(threading.Thread):
    """While the load runs: PutMetricData one datapoint on a fresh series, and from its 200 poll
    GetMetricStatistics until the datapoint is there.  Records 200 → visible times."""

    def __init__(self, url: str, dirs, interval: float, until: float):
        super().__init__(daemon=True)
        self.url, self.interval, self.until = url, interval, until
        self.rec = C.Recorder("json", dirs)
        self.results: list[dict] = []
        self.error = None

    def probe_once(self, conn) -> dict:
        now = time.time()
        name = f"probe_{os.getpid()}_{random.randrange(1 << 40)}"
        put = self.rec.request("put_metric_data", Namespace="Bench/Probe", MetricData=[
            {"MetricName": name, "Timestamp": now, "Value": 1.0}])
        get = self.rec.request("get_metric_statistics", Namespace="Bench/Probe",
                               MetricName=name, StartTime=now - 600, EndTime=now + 600,
                               Period=60, Statistics=["SampleCount"])
        t_put = time.perf_counter()
        status, body = C.send(conn, put)
        t_ok = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"probe put: {status} {body[:200]!r}")
        polls = 0
        while True:
            polls += 1
            status, body = C.send(conn, get)
            if status == 200 and json.loads(body).get("Datapoints"):
                break
            if time.perf_counter() - t_ok > 30:
                raise RuntimeError("probe datapoint not visible after 30 s")
        return {"put_s": t_ok - t_put, "visible_s": time.perf_counter() - t_ok, "polls": polls}

    def run(self):
        import http.client
        try:
            conn = http.client.HTTPConnection(self.url.split("//")[1], timeout=60)
            while time.time() + 1.0 < self.until:
                self.results.append(self.probe_once(conn))
                time.sleep(self.interval)
            conn.close()
        except Exception as e:  # noqa: BLE001
            self.error = repr(e)


def run_load(url: str, bodies: list[dict], clients: int, connections: int, seconds: float,
             dirs, server: C.Proc | None, probe: bool, grace: float = 30.0) -> dict:
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=_client_main,
                         args=(url, bodies, connections, start_at, seconds, grace, c * 7, q))
             for c in range(clients)]
    for p in procs:
        p.start()
    prober = None
    if probe:
        prober = Prober(url, dirs, 0.5, start_at + seconds)
    while time.time() < start_at:
        time.sleep(0.005)
    cpu0 = server.cpu_seconds() if server else None
    if prober:
        prober.start()
    results = [q.get(timeout=seconds + grace + 60) for _ in procs]
    cpu1 = server.cpu_seconds() if server else None
    for p in procs:
        p.join()
    if prober:
        prober.join(timeout=60)
    end = max((r["end"] for r in results if r["end"]), default=start_at + seconds)
    wall = end - start_at
    lat = sorted(x for r in results for x in r["lat"])
    dp = sum(r["datapoints"] for r in results)
    out = {"datapoints": dp, "requests": sum(r["requests"] for r in results),
           "errors": sum(r["errors"] for r in results),
           "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
           "seconds": wall, "dp_per_s": dp / wall if wall > 0 else 0.0,
           "lat_p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
           "lat_p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else None,
           "client_cpu_s": sum(r["cpu"] for r in results),
           "abandoned_in_flight": any(r.get("abandoned") for r in results)}
    if server:
        out["server_cpu_cores"] = (cpu1 - cpu0) / wall
        out["server_rss_mib"] = server.rss_mib()
    if prober:
        out["probe_error"] = prober.error
        vis = [r["visible_s"] for r in prober.results]
        out["visible_probes"] = len(vis)
        if vis:
            out["visible_median_ms"] = statistics.median(vis) * 1000
            out["visible_max_ms"] = max(vis) * 1000
            out["visible_first_poll"] = sum(1 for r in prober.results if r["polls"] == 1)
            out["probe_put_median_ms"] = statistics.median(r["put_s"] for r in prober.results) * 1000
    return out


def warm_up(url: str, bodies: list[dict]) -> float:
    """Send each distinct body once (creates the series); mean ms per request."""
    import http.client
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=300)
    t0 = time.perf_counter()
    for b in bodies:
        status, body = C.send(conn, b)
        if status != 200:
            raise RuntimeError(f"warm-up: {status} {body[:300]!r}")
    conn.close()
    return (time.perf_counter() - t0) / len(bodies) * 1000


def idle_visibility(url: str, dirs, n: int = 5) -> dict:
    """The same probe with no load running."""
    import http.client
    p = Prober(url, dirs, 0, 0)
    conn = http.client.HTTPConnection(url.split("//")[1], timeout=60)
    try:
        res = [p.probe_once(conn) for _ in range(n)]
    except Exception as e:  # noqa: BLE001
        return {"error": repr(e)}
    finally:
        conn.close()
    vis = [r["visible_s"] for r in res]
    return {"probes": len(vis), "visible_median_ms": statistics.median(vis) * 1000,
            "visible_max_ms": max(vis) * 1000,
            "visible_first_poll": sum(1 for r in res if r["polls"] == 1)}


# ---------------------------------------------------------------------------------------------
# profiling
# ---------------------------------------------------------------------------------------------

def pyspy_summary(raw_path: Path, rate: int, seconds: float, top: int = 20) -> str:
    """Per thread of the server and its worker processes: how many cores it kept busy, and its
    top functions by self and inclusive time (py-spy raw output, on-CPU samples only)."""
    from collections import Counter
    self_c: dict = {}
    incl_c: dict = {}
    total: Counter = Counter()
    for ln in raw_path.read_text().splitlines():
        stack, _, cnt = ln.rpartition(" ")
        if not stack:
            continue
        n = int(cnt)
        frames = stack.split(";")
        proc = "server"
        thread = "?"
        while frames and (frames[0].startswith("process ") or frames[0].startswith("thread (")):
            f = frames.pop(0)
            if f.startswith("process ") and ("spawn_main" in f or "multiprocessing" in f):
                proc = "worker" if "spawn_main" in f else "mp-helper"
            elif f.startswith("thread ("):
                thread = f.split("): ", 1)[-1].rstrip(")") or "?"
        key = f"{proc}/{thread}"
        total[key] += n
        if not frames:
            continue
        self_c.setdefault(key, Counter())[_fname(frames[-1])] += n
        seen = set()
        for f in frames:
            fn = _fname(f)
            if fn not in seen:
                incl_c.setdefault(key, Counter())[fn] += n
                seen.add(fn)
    per_core = rate * seconds
    lines = ["cores kept busy (on-CPU samples / (rate x seconds)), by process/thread:"]
    lines += [f"  {c / per_core:5.2f}  {k}" for k, c in total.most_common()]
    for key, c in total.most_common(4):
        if c / per_core < 0.03:
            break
        lines.append(f"\n[{key}] top self time (cores):")
        for fn, k in self_c.get(key, Counter()).most_common(top):
            lines.append(f"  {k / per_core:5.3f}  {fn}")
        lines.append(f"[{key}] top inclusive time (cores):")
        for fn, k in incl_c.get(key, Counter()).most_common(top):
            lines.append(f"  {k / per_core:5.3f}  {fn}")
    return "\n".join(lines)


def _fname(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (dir/file.py:123)"
    name, _, loc = frame.partition(" (")
    loc = loc.rstrip(")")
    parts = loc.split("/")
    short = "/".join(parts[-2:]) if len(parts) > 1 else loc
    return f"{name} ({short})"


def profile_server(bodies, dirs, args, base: Path) -> str:
    pyspy = Path(sys.executable).parent / "py-spy"
    if not pyspy.exists():
        return "py-spy not installed (.venv/bin/pip install py-spy)"
    data = base / "profile-data"
    srv = C.metricstore_server(data, extra=args.server_args.split()).start()
    try:
        warm_up(srv.url, bodies)
        out = base / "pyspy.raw"
        dur = max(5, int(args.seconds))
        rate = 200
        # the load starts 2 s after run_load is called; py-spy records the load only
        ctx = mp.get_context("fork")
        spy_args = [str(pyspy), "record", "-p", str(srv.proc.pid), "-d", str(dur), "-r", str(rate),
                    "--threads", "--subprocesses", "-f", "raw", "-o", str(out)]

        def spy_later():
            time.sleep(2.2)
            subprocess.run(spy_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        th = threading.Thread(target=spy_later)
        th.start()
        load = run_load(srv.url, bodies, args.clients, args.connections, dur + 1, dirs, srv, False)
        th.join(timeout=120)
        if not out.exists():
            return "py-spy failed (ptrace not permitted?)"
        summary = pyspy_summary(out, rate, dur)
        if args.profile_out:
            Path(args.profile_out).write_text(out.read_text())
        return (f"(JSON load while py-spy samples: {C.fmt_rate(load['dp_per_s'])} dp/s)\n"
                + summary)
    finally:
        srv.stop()


# ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10, help="load duration per variant")
    ap.add_argument("--clients", type=int, default=2, help="client processes")
    ap.add_argument("--connections", type=int, default=4, help="keep-alive connections per client")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of " + ",".join(VARIANTS))
    ap.add_argument("--datums", type=int, default=1000, help="datums per PutMetricData call")
    ap.add_argument("--bodies", type=int, default=4,
                    help="distinct bodies per variant (each on its own --datums series)")
    ap.add_argument("--decode-seconds", type=float, default=3)
    ap.add_argument("--decode-procs", type=int, default=os.cpu_count() or 1,
                    help="also measure decode-only in this many processes at once (1: skip)")
    ap.add_argument("--server-args", default="",
                    help="extra flags for metricstore serve, e.g. '--ingest-workers 0'")
    ap.add_argument("--raw-rows", type=int, default=2_000_000)
    ap.add_argument("--store-seconds", type=float, default=3)
    ap.add_argument("--no-moto", action="store_true")
    ap.add_argument("--moto-seconds", type=float, default=8)
    ap.add_argument("--moto-clients", type=int, default=1)
    ap.add_argument("--moto-connections", type=int, default=1,
                    help="moto serves one request at a time per core (GIL): more only queue")
    ap.add_argument("--grace", type=float, default=20,
                    help="seconds after the deadline before in-flight calls are abandoned")
    ap.add_argument("--profile", action="store_true", help="py-spy the server under JSON load")
    ap.add_argument("--profile-out", help="keep py-spy's raw stacks here")
    ap.add_argument("--json-out", help="write all figures as JSON")
    args = ap.parse_args()

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")
    base = C.tmpdir("ms-bench-ingest-")
    results: dict = {"machine": C.machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                     "argv": sys.argv, "variants": {}}
    print(f"# ingest benchmark  {results['date']}\n# {results['machine']}\n"
          f"# {args.clients} client processes x {args.connections} connections, "
          f"{args.datums} datums/call, {args.seconds:g} s per variant\n# {C.busy_note()}", flush=True)
    other = C.OtherCPU()
    try:
        dirs = C.model_dirs(base)
        now = time.time()  # timestamps are regenerated at every start (last hour)
        bodies = {}
        for v in variants:
            t = time.perf_counter()
            bodies[v] = build_bodies(v, args.bodies, args.datums, now, dirs)
            b0 = bodies[v][0]
            print(f"[{v}] {len(bodies[v])} bodies built in {time.perf_counter() - t:.1f} s: "
                  f"{b0['datapoints']} datapoints, {b0['raw_size'] / 1024:.0f} KiB raw, "
                  f"{len(b0['body']) / 1024:.0f} KiB on the wire "
                  f"({b0['headers'].get('Content-Encoding', 'identity')})", flush=True)

        # decode-only
        for v in variants:
            r = decode_only(bodies[v], args.decode_seconds)
            results["variants"].setdefault(v, {})["decode_only"] = r
            line = (f"[{v}] decode-only: {C.fmt_rate(r['dp_per_s'])} dp/s on one core "
                    f"({r['ms_per_request']:.1f} ms per call)")
            if args.decode_procs > 1:
                rp = decode_parallel(bodies[v], args.decode_seconds, args.decode_procs)
                results["variants"][v]["decode_parallel"] = rp
                line += f"; {C.fmt_rate(rp['dp_per_s'])} dp/s in {rp['procs']} processes at once"
            print(line, flush=True)

        # raw DuckDB insert and the server's insert path, of the rows of the JSON bodies
        src = bodies.get("json") or bodies[variants[0]]
        rows = raw_rows(src, args.raw_rows)
        results["raw_insert"] = raw_duckdb_insert(rows, 10_000, base)
        print(f"raw DuckDB insert, 10,000-row batches: "
              f"{C.fmt_rate(results['raw_insert']['dp_per_s'])} rows/s", flush=True)
        del rows
        r = store_insert(src, args.store_seconds, base)
        results["store_insert"] = r
        print(f"MetricsStore.insert, first put of {args.datums} new series: "
              f"{r['first_put_new_series_ms']:.0f} ms per call", flush=True)
        for per in (1, 8):
            print(f"MetricsStore.insert ({per} call(s) of {args.datums} per commit): "
                  f"{C.fmt_rate(r[per]['dp_per_s'])} dp/s", flush=True)

        # end to end
        for v in variants:
            data = base / f"data-{v}"
            srv = C.metricstore_server(data, extra=args.server_args.split()).start()
            try:
                warm = warm_up(srv.url, bodies[v])
                r = run_load(srv.url, bodies[v], args.clients, args.connections, args.seconds,
                             dirs, srv, probe=True, grace=args.grace)
                r["warmup_ms_per_call_new_series"] = warm
                r["idle_visibility"] = idle_visibility(srv.url, dirs)
            except Exception:
                srv.stop()
                print(srv.log_path.read_text(errors="replace")[-3000:])
                raise
            finally:
                rc = srv.stop()
            log = srv.log_path.read_text(errors="replace")
            if "Traceback" in log:
                print(log[-3000:])
            r["server_exit"] = rc
            d = results["variants"][v]
            d["e2e"] = r
            d["ratio_e2e_decode"] = r["dp_per_s"] / d["decode_only"]["dp_per_s"]
            d["ratio_e2e_raw_insert"] = r["dp_per_s"] / results["raw_insert"]["dp_per_s"]
            print(f"[{v}] end-to-end: {C.fmt_rate(r['dp_per_s'])} dp/s "
                  f"({r['requests']} calls, {r['errors']} errors, p50 {r['lat_p50_ms'] or 0:.0f} ms, "
                  f"p99 {r['lat_p99_ms'] or 0:.0f} ms, server {r['server_cpu_cores']:.2f} cores, "
                  f"clients {r['client_cpu_s'] / r['seconds']:.2f} cores); "
                  f"x{d['ratio_e2e_decode']:.2f} of decode-only, "
                  f"x{d['ratio_e2e_raw_insert']:.3f} of raw insert", flush=True)
            if r.get("first_error"):
                print(f"    first error: {r['first_error']}")
            if r.get("visible_probes"):
                print(f"    200 -> visible in GetMetricStatistics under load: median "
                      f"{r['visible_median_ms']:.1f} ms, max {r['visible_max_ms']:.1f} ms over "
                      f"{r['visible_probes']} probes ({r['visible_first_poll']} seen on the first "
                      f"poll); idle: median {r['idle_visibility'].get('visible_median_ms', 0):.1f} ms",
                      flush=True)
            elif r.get("probe_error"):
                print(f"    probe error: {r['probe_error']}")
            shutil_rm(data)

        # moto
        if not args.no_moto:
            if not C.have_moto():
                print("moto[server] not installed: .venv/bin/pip install 'moto[server]'")
            for v in variants if C.have_moto() else []:
                srv = C.moto_server(base).start()
                try:
                    try:
                        warm_up(srv.url, bodies[v][:1])
                    except RuntimeError as e:
                        results["variants"][v]["moto"] = {"unsupported": str(e)[:200]}
                        print(f"[{v}] moto: cannot ({str(e)[:120]})", flush=True)
                        continue
                    r = run_load(srv.url, bodies[v], args.moto_clients, args.moto_connections,
                                 args.moto_seconds, dirs, srv, probe=True, grace=args.grace)
                finally:
                    srv.stop()
                d = results["variants"][v]
                d["moto"] = r
                d["ratio_e2e_moto"] = d["e2e"]["dp_per_s"] / r["dp_per_s"] if r["dp_per_s"] else None
                if not r["requests"]:
                    r["unsupported"] = (f"no call completed within {args.moto_seconds:g} + "
                                        f"{args.grace:g} s ({r['errors']} errors)")
                    print(f"[{v}] moto: {r['unsupported']}", flush=True)
                    continue
                print(f"[{v}] moto: {C.fmt_rate(r['dp_per_s'])} dp/s ({r['requests']} calls, "
                      f"{r['errors']} errors, p50 {r['lat_p50_ms']:.0f} ms); metricstore is "
                      f"{C.fmt_ratio(d['ratio_e2e_moto'])} moto"
                      + (f"; visible median {r['visible_median_ms']:.1f} ms"
                         if r.get("visible_probes") else ""), flush=True)

        if args.profile and "json" in bodies:
            prof = profile_server(bodies["json"], dirs, args, base)
            results["profile"] = prof
            print("\n# py-spy of the server under JSON ingest\n" + prof, flush=True)

        results["other_processes_cores"] = other.cores()
        print_summary(results, variants)
        print(f"# other processes on the machine used {results['other_processes_cores']:.2f} "
              f"cores on average during this run")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(results, indent=1, default=str))
    finally:
        C.rmtree(base)
    return 0


def shutil_rm(p: Path) -> None:
    C.rmtree(p)


def print_summary(results: dict, variants: list[str]) -> None:
    raw = results["raw_insert"]["dp_per_s"]
    print("\n| variant | decode-only dp/s | end-to-end dp/s | e2e / decode | e2e / raw insert "
          "| moto dp/s | metricstore / moto | 200→visible median (max) |")
    print("|---|---|---|---|---|---|---|---|")
    for v in variants:
        d = results["variants"][v]
        e = d.get("e2e", {})
        m = d.get("moto") or {}
        moto = (("too slow" if m["unsupported"].startswith("no call") else "cannot")
                if m.get("unsupported") else C.fmt_rate(m["dp_per_s"])) if m else "-"
        ratio = C.fmt_ratio(d["ratio_e2e_moto"]) if d.get("ratio_e2e_moto") else "-"
        vis = (f"{e['visible_median_ms']:.1f} ms ({e['visible_max_ms']:.1f} ms)"
               if e.get("visible_probes") else "-")
        print(f"| {v} | {C.fmt_rate(d['decode_only']['dp_per_s'])} | {C.fmt_rate(e.get('dp_per_s', 0))} "
              f"| {d.get('ratio_e2e_decode', 0):.2f} | {d.get('ratio_e2e_raw_insert', 0):.3f} "
              f"| {moto} | {ratio} | {vis} |")
    print(f"\nraw DuckDB insert (10,000-row batches, one commit each): {C.fmt_rate(raw)} rows/s")


if __name__ == "__main__":
    sys.exit(main())
