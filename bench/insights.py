"""Logs Insights benchmark: five reference queries over a store of mixed JSON/text events.

The store (``--events``, default 10 M; one group, 10 streams, ~200-byte lines, half JSON
objects with 9 keys, half text; the lines of ``bench/logs_ingest.py``) is built directly with
``LogsStore.append`` through ``Store.write_sync`` (no field is queried yet, so no column).  The
fields get their columns as on a server: the reference queries are compiled once against the
store (``LogsStore.field_sql`` records the JSON fields they read), then
``LogsStore.materialize_step`` runs until the backfill is done, each step timed (the writer
pause).  Then, in the same run:

* the lower bound: hand-written DuckDB SQL answering each query over the materialized
  columns (``log_fields`` gives their names), on a copy of the file opened read-only in this
  process (the server holds the original);
* the server: ``python -m metricstore serve`` on the data dir; each query is StartQuery, then
  GetQueryResults polled every 10 ms until Complete (client wall time), and the server's own
  ``queryDuration`` (DescribeQueries);

alternately, query by query (hand-written, server, hand-written, ...), so that a busy moment
of the shared machine falls on both.  The ratio is server wall time / hand-written SQL
(target ≤ 3×).  ``--ingest`` measures ingest with no field demanded and with the reference
queries' fields demanded (their columns filled at ingest): in process (``LogsStore.append`` via ``Store.write_sync``) and PutLogEvents over
HTTP (``bench/logs_ingest.py``'s load generator on a fresh server; for "demanded", the
reference queries are started once before the load, and the columns checked after it),
against a raw DuckDB insert of the same rows.

    .venv/bin/python bench/insights.py --events 2000000 --data-dir /tmp/ins2m --repeats 3
    .venv/bin/python bench/insights.py --skip-queries --ingest --seconds 10
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
import logs_ingest as LI  # noqa: E402

sys.path.insert(0, str(C.ROOT))

GROUP = LI.GROUP

# (name, Logs Insights query, hand-written SQL over the materialized columns; {c[x]} is the
# column of field x; the time range and group are the first three parameters)
QUERIES = [
    ("filter like + stats count by bin(5m)",
     "filter @message like 'ERROR' | stats count(*) as n by bin(5m)",
     "SELECT ts // 300000 AS b, count(*) FROM log_events WHERE {where}"
     " AND contains(message, 'ERROR') GROUP BY b ORDER BY b DESC"),
    ("JSON field filter + stats avg by field",
     "filter status = 500 | stats avg(latency) as a by path",
     "SELECT {c[path]}, avg(TRY_CAST({c[latency]} AS DOUBLE)) FROM log_events WHERE {where}"
     " AND TRY_CAST({c[status]} AS DOUBLE) = 500 GROUP BY 1 ORDER BY 1"),
    ("parse + stats sum",
     "parse @message 'bytes=* ' as b | stats sum(b) as total",
     "SELECT sum(TRY_CAST(regexp_extract(message, 'bytes=(.*?) ', 1) AS DOUBLE))"
     " FROM log_events WHERE {where}"),
    ("fields + sort + limit 20",
     "fields @timestamp, level, latency, path | sort latency desc | limit 20",
     "SELECT ts, {c[level]}, {c[latency]}, {c[path]} FROM log_events WHERE {where}"
     " ORDER BY TRY_CAST({c[latency]} AS DOUBLE) DESC NULLS LAST, ts DESC LIMIT 20"),
    ("regex filter + count",
     r"filter @message like /ERROR.*\/api\/v2/ | stats count(*) as n",
     "SELECT count(*) FROM log_events WHERE {where} AND regexp_matches(message, 'ERROR.*/api/v2')"),
]


class HandSql:
    """The lower bound: each query hand-written over the materialized columns, on a copy of
    the store's file opened read-only in this process (the server holds the original)."""

    def __init__(self, db: Path, lo_ms: int, hi_ms: int):
        import duckdb
        self.con = duckdb.connect(str(db), read_only=True)
        self.con.execute("SET enable_progress_bar = false")
        cols = dict(self.con.execute("SELECT name, col FROM log_fields WHERE name <> ''"
                                     ).fetchall())
        gid = self.con.execute("SELECT id FROM log_groups WHERE name = ?", [GROUP]).fetchone()[0]
        self.cols, self.params = cols, [gid, lo_ms, hi_ms]

    def run(self, sql: str) -> float:
        text = sql.format(c={k: f'"{v}"' for k, v in self.cols.items()},
                          where="group_id = ? AND ts >= ? AND ts <= ?")
        t0 = time.perf_counter()
        self.con.execute(text, self.params).fetchall()
        return time.perf_counter() - t0

    def close(self) -> None:
        self.con.close()


def server_run(logs, q: str, lo_s: int, hi_s: int) -> dict:
    """One query through the API: StartQuery, then GetQueryResults polled every 10 ms until
    Complete (client wall time), and the server's own queryDuration (DescribeQueries)."""
    t0 = time.perf_counter()
    qid = logs.start_query(logGroupName=GROUP, startTime=lo_s, endTime=hi_s,
                           queryString=q)["queryId"]
    while True:
        r = logs.get_query_results(queryId=qid)
        if r["status"] not in ("Scheduled", "Running"):
            break
        time.sleep(0.01)
    wall = time.perf_counter() - t0
    if r["status"] != "Complete":
        raise RuntimeError(f"{q}: {r['status']}")
    d = [x for x in logs.describe_queries(logGroupName=GROUP)["queries"]
         if x["queryId"] == qid][0].get("queryDuration")
    return {"wall": wall, "server": (d or 0) / 1000, "rows": len(r["results"]),
            "matched": r["statistics"]["recordsMatched"],
            "scanned": r["statistics"]["recordsScanned"]}


def interleaved(url: str, hand: HandSql, lo_s: int, hi_s: int, repeats: int) -> list[dict]:
    """Each reference query, the hand-written SQL and the server alternately (one warm-up of
    each, then ``repeats`` pairs), so that both see the same machine; then a trivial query
    over one second (the fixed cost of StartQuery, the polling and the bookkeeping)."""
    logs = _client(url)
    out = []
    for name, q, sql in QUERIES + [("trivial (1 s range)", "fields @timestamp | limit 1", "")]:
        lo = lo_s if sql else hi_s
        walls, durs, base, last = [], [], [], {}
        for k in range(repeats + 1):                               # first pair warms
            h = hand.run(sql) if sql else 0.0
            last = server_run(logs, q, lo, hi_s)
            if k:
                base.append(h)
                walls.append(last["wall"])
                durs.append(last["server"])
        out.append({"name": name, "query": q, "wall": statistics.median(walls),
                    "server": statistics.median(durs), "median": statistics.median(base),
                    "ratios": [w / b for w, b in zip(walls, base)] if sql else [],
                    **{k: last[k] for k in ("rows", "matched", "scanned")}})
    return out


def _client(url: str):
    import boto3
    from botocore.config import Config
    return boto3.client("logs", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                        config=Config(retries={"max_attempts": 0}))


def demand_fields(store, logs, gid: int, log=print) -> dict:
    """Compile the reference queries against ``logs`` (which records the JSON fields they
    read), then run ``materialize_step`` until nothing is left; returns the step times."""
    from metricstore.operations.insights import events_source
    from query.insights_compile import compile_query
    from query.insights_parser import parse
    for _, q, _ in QUERIES:
        compile_query(parse(q), events_source(logs.field_sql, [gid], 0, 1), now_ms=0)
    wanted = sorted(logs.wanted)
    times = []
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        more = store.write_sync(logs.materialize_step)
        times.append(time.perf_counter() - t)
        if not more:
            break
        if len(times) % 50 == 0:
            log(f"  backfill: {len(times)} steps, watermarks {sorted(set(logs.filled.values()))}")
    total = time.perf_counter() - t0
    return {"fields": wanted, "steps": len(times), "total": total,
            "max": max(times), "median": statistics.median(times),
            "p99": sorted(times)[int(len(times) * .99)] if times else 0}


def bench_queries(args, report: list[str]) -> None:
    data = Path(args.data_dir)
    db = data / "metricstore.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        LI.build_store(data, args.events)
        report.append(f"- store built: {args.events:,} events in {time.perf_counter() - t0:.0f} s"
                      " (LogsStore.append, 200,000-event chunks over 10 streams, no field "
                      "queried yet: no column)")
    from metricstore.store.db import Store
    from metricstore.store.logs import BACKFILL_CHUNK, LogsStore
    store = Store(str(db))
    logs = LogsStore(store)
    gid = store.con.execute("SELECT id FROM log_groups WHERE name = ?", [GROUP]).fetchone()[0]
    d = demand_fields(store, logs, gid)
    store.close()
    report.append(f"- fields the reference queries read, given columns by demand: "
                  f"{', '.join(d['fields']) or 'none new'}; backfill {d['steps']} steps of "
                  f"{BACKFILL_CHUNK:,} events in {d['total']:.1f} s, writer pause per step "
                  f"median {d['median'] * 1000:.0f} ms, p99 {d['p99'] * 1000:.0f} ms, "
                  f"max {d['max'] * 1000:.0f} ms")
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    n, lo, hi = con.execute("SELECT count(*), min(ts), max(ts) FROM log_events").fetchone()
    ncol = con.execute("SELECT count(*) FROM log_fields WHERE name <> ''").fetchone()[0]
    con.close()
    size = db.stat().st_size / 2 ** 20
    report.append(f"- {n:,} events, {ncol} materialized field columns, file {size:,.0f} MiB; "
                  f"every query covers the whole range (10 days)")
    lo_s, hi_s = lo // 1000, hi // 1000 + 1
    lo_ms, hi_ms = lo_s * 1000, hi_s * 1000 + 999
    copy = data / "hand-copy.duckdb"                 # the lower bound's own file
    shutil.copyfile(db, copy)
    hand = HandSql(copy, lo_ms, hi_ms)
    srv = C.metricstore_server(data).start()
    try:
        got = interleaved(srv.url, hand, lo_s, hi_s, args.repeats)
    finally:
        srv.stop()
        hand.close()
        copy.unlink()
    report += ["", f"The hand-written SQL and the server alternate, query by query: one warm-up "
               f"pair, then {args.repeats} pairs; medians. The ratio is the median wall time "
               "over the median hand-written time (in brackets: the lowest and highest ratio "
               "of one pair).", "",
               "| query | Logs Insights | server wall (StartQuery → Complete) | "
               "server queryDuration | hand-written SQL | **ratio** (wall / SQL) |",
               "|---|---|---|---|---|---|"]
    for g in got[:-1]:
        q = g["query"].replace("|", "\\|")
        report.append(f"| {g['name']} | `{q}` | "
                      f"{g['wall'] * 1000:,.0f} ms | {g['server'] * 1000:,.0f} ms | "
                      f"{g['median'] * 1000:,.0f} ms | **{g['wall'] / g['median']:.1f}×** "
                      f"({min(g['ratios']):.1f}–{max(g['ratios']):.1f}) |")
    g = got[-1]
    report.append(f"| {g['name']} | `{g['query']}` | {g['wall'] * 1000:,.0f} ms | "
                  f"{g['server'] * 1000:,.0f} ms | | |")
    report += ["", "recordsMatched / recordsScanned of each query (same events in every run): "
               + "; ".join(f"{g['matched']:,.0f} / {g['scanned']:,.0f}" for g in got[:-1])]


def store_append(bodies: list[dict], seconds: float, workdir: Path, demand: bool) -> dict:
    """The server's write path without HTTP (``LogsStore.append`` through
    ``Store.write_sync``, one call's events per transaction), with or without the reference
    queries' fields demanded first; reports how many events each column holds."""
    from metricstore.store.db import quote_ident

    def filled(store, logs):
        return {"filled": {name: store.con.execute(
            f"SELECT count({quote_ident(c)}) FROM log_events").fetchone()[0]
            for name, c in logs.fields.items()}}

    return LI.store_append(bodies, seconds, workdir,
                           prepare=demand_fields if demand else None, report=filled)


def http_ingest(per_client: list[list[dict]], seconds: float, workdir: Path, demand: bool,
                connections: int = 2) -> dict:
    """PutLogEvents over HTTP on a fresh server (bench/logs_ingest.py's load generator); with
    ``demand``, the reference queries are started once first (on the empty group) and the
    server given a second to make their columns; afterwards the columns are checked."""
    data = workdir / ("http-demand" if demand else "http-none")
    C.rmtree(data)
    streams = [json.loads(b[0]["body"])["logStreamName"] for b in per_client]
    srv = C.metricstore_server(data).start()
    try:
        LI.setup_group(srv.url, streams)
        if demand:
            logs = _client(srv.url)
            now = int(time.time())
            for _, q, _ in QUERIES:
                logs.start_query(logGroupName=GROUP, startTime=now - 60, endTime=now,
                                 queryString=q)
            time.sleep(1.0)
        load = LI.run_load(srv, per_client, connections, seconds)
    finally:
        srv.stop()
    import duckdb
    con = duckdb.connect(str(data / "metricstore.duckdb"), read_only=True)
    stored = con.execute("SELECT count(*) FROM log_events").fetchone()[0]
    fields = con.execute("SELECT name, col, filled_from FROM log_fields").fetchall()
    filled = {n: con.execute(f'SELECT count("{c}") FROM log_events').fetchone()[0]
              for n, c, _ in fields}
    con.close()
    return dict(load, stored=stored, filled=filled)


def bench_ingest(args, report: list[str]) -> None:
    """Ingest with no field demanded and with the reference queries' fields demanded, in
    process and over HTTP, against a raw DuckDB insert of the same rows."""
    work = C.tmpdir("insights-ingest-")
    now_ms = int(time.time() * 1000)
    per_client = [LI.make_bodies(f"s{c}", 4, now_ms, seed=c + 1) for c in range(3)]
    bodies = per_client[0]
    try:
        raw = LI.raw_insert(bodies, 1_000_000, work)
        res = {}
        for demand in (False, True):
            res["app", demand] = store_append(bodies, args.seconds, work, demand)
            res["http", demand] = http_ingest(per_client, args.seconds, work, demand)
    finally:
        C.rmtree(work)
    r = raw["events_per_s"]
    report += ["", f"Ingest ({args.seconds:.0f} s each; raw DuckDB insert of the same rows via "
               f"Arrow, 10,000-row committed batches: {r / 1000:,.1f} k events/s):", "",
               "| path | no field demanded | reference queries' fields demanded |",
               "|---|---|---|"]
    for path, label in (("app", "in process (`LogsStore.append` via `Store.write_sync`, "
                                "one ~4,500-event call a transaction)"),
                        ("http", "PutLogEvents over HTTP (3 clients × 2 connections)")):
        cells = []
        for demand in (False, True):
            x = res[path, demand]
            cells.append(f"{x['events_per_s'] / 1000:,.1f} k events/s "
                         f"(**{x['events_per_s'] / r:.2f}× raw**)")
        report.append(f"| {label} | {cells[0]} | {cells[1]} |")
    h = res["http", True]
    report += ["", f"- HTTP, demanded: {h['events']:,} events acknowledged, {h['stored']:,} "
               f"stored, {h['errors']} errors; columns filled (non-NULL values): "
               + ", ".join(f"{n} {v:,}" for n, v in sorted(h["filled"].items())),
               f"- HTTP, none demanded: columns {res['http', False]['filled'] or 'none'}; "
               f"server cores {res['http', False]['server_cores']:.2f} / "
               f"{h['server_cores']:.2f} (none / demanded)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--data-dir", default="/tmp/metricstore-insights-bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ingest", action="store_true",
                    help="also measure ingest without / with the demanded fields")
    ap.add_argument("--skip-queries", action="store_true")
    ap.add_argument("--seconds", type=float, default=10.0, help="ingest duration per variant")
    ap.add_argument("--results", help="append the report to this markdown file")
    args = ap.parse_args()
    report = [f"## Logs Insights ({time.strftime('%Y-%m-%d %H:%M')}, bench/insights.py)", "",
              f"Machine: {C.machine()}; {C.busy_note()} at start.", ""]
    if not args.skip_queries:
        bench_queries(args, report)
    if args.ingest:
        bench_ingest(args, report)
    text = "\n".join(report)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
