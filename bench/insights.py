"""Logs Insights benchmark: five reference queries over a store of mixed JSON/text events.

The store (``--events``, default 10 M; one group, 10 streams, ~200-byte lines, half JSON
objects with 9 keys, half text; the lines of ``bench/logs_ingest.py``) is built directly with
``LogsStore.append`` through ``Store.write_sync``, so the JSON keys are materialized as columns
exactly as PutLogEvents does.  Then, in the same run:

* the lower bound: hand-written DuckDB SQL answering each query over the materialized
  columns (``log_fields`` gives their names), on the same file, in this process;
* the server: ``python -m metricstore serve`` on the data dir; each query is StartQuery, then
  GetQueryResults polled every 10 ms until Complete (client wall time), and the server's own
  ``queryDuration`` (DescribeQueries).

The ratio is server wall time / hand-written SQL (target ≤ 3×).  ``--ingest`` adds PutLogEvents
ingest with materialization on and off (``bench/logs_ingest.py --skip-filter``, whose server is
started with ``METRICSTORE_LOG_FIELD_COLUMNS=500`` / ``0``), and the in-process write path.
The server reads the columns the store already has whatever that variable says.

    .venv/bin/python bench/insights.py --events 2000000 --data-dir /tmp/ins --results bench/RESULTS.md
    .venv/bin/python bench/insights.py --skip-queries --ingest --seconds 10
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
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


def hand_sql(db: Path, lo_ms: int, hi_ms: int, repeats: int) -> list[dict]:
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET enable_progress_bar = false")
    cols = dict(con.execute("SELECT name, col FROM log_fields WHERE name <> ''").fetchall())
    gid = con.execute("SELECT id FROM log_groups WHERE name = ?", [GROUP]).fetchone()[0]
    out = []
    for name, _, sql in QUERIES:
        text = sql.format(c={k: f'"{v}"' for k, v in cols.items()},
                          where="group_id = ? AND ts >= ? AND ts <= ?")
        con.execute(text, [gid, lo_ms, hi_ms]).fetchall()            # warm
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rows = con.execute(text, [gid, lo_ms, hi_ms]).fetchall()
            times.append(time.perf_counter() - t0)
        out.append({"name": name, "median": statistics.median(times), "rows": len(rows)})
    con.close()
    return out


def server_times(url: str, lo_s: int, hi_s: int, repeats: int) -> list[dict]:
    """Each reference query, then a trivial one over one second (the fixed cost of StartQuery,
    the polling and the query's bookkeeping writes)."""
    logs = _client(url)
    out = []
    for name, q, hand in QUERIES + [("trivial (1 s range)", "fields @timestamp | limit 1", "")]:
        if not hand:
            lo_s = hi_s
        walls, durs, rows, matched = [], [], 0, 0
        for k in range(repeats + 1):                               # first run warms
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
            if k:
                walls.append(wall)
                durs.append((d or 0) / 1000)
            rows, matched = len(r["results"]), r["statistics"]["recordsMatched"]
            scanned = r["statistics"]["recordsScanned"]
        out.append({"name": name, "query": q, "wall": statistics.median(walls),
                    "server": statistics.median(durs), "rows": rows, "matched": matched,
                    "scanned": scanned})
    return out


def _client(url: str):
    import boto3
    from botocore.config import Config
    return boto3.client("logs", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="AKIDBENCH", aws_secret_access_key="secret",
                        config=Config(retries={"max_attempts": 0}))


def bench_queries(args, report: list[str]) -> None:
    data = Path(args.data_dir)
    db = data / "metricstore.duckdb"
    if not db.exists():
        t0 = time.perf_counter()
        LI.build_store(data, args.events)
        report.append(f"- store built: {args.events:,} events in {time.perf_counter() - t0:.0f} s"
                      " (LogsStore.append, 200,000-event chunks over 10 streams, fields "
                      "materialized)")
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
    base = hand_sql(db, lo_ms, hi_ms, args.repeats)
    srv = C.metricstore_server(data).start()
    try:
        got = server_times(srv.url, lo_s, hi_s, args.repeats)
    finally:
        srv.stop()
    report += ["", f"Median of {args.repeats} runs after one warm-up each.", "",
               "| query | Logs Insights | server wall (StartQuery → Complete) | "
               "server queryDuration | hand-written SQL | **ratio** (wall / SQL) |",
               "|---|---|---|---|---|---|"]
    for b, g in zip(base, got):
        q = g["query"].replace("|", "\\|")
        report.append(f"| {g['name']} | `{q}` | "
                      f"{g['wall'] * 1000:,.0f} ms | {g['server'] * 1000:,.0f} ms | "
                      f"{b['median'] * 1000:,.0f} ms | **{g['wall'] / b['median']:.1f}×** |")
    g = got[-1]
    report.append(f"| {g['name']} | `{g['query']}` | {g['wall'] * 1000:,.0f} ms | "
                  f"{g['server'] * 1000:,.0f} ms | | |")
    report += ["", "recordsMatched / recordsScanned of each query (same events in every run): "
               + "; ".join(f"{g['matched']:,.0f} / {g['scanned']:,.0f}" for g in got[:-1])]


def bench_ingest(args, report: list[str]) -> None:
    """PutLogEvents over HTTP with materialization on and off (bench/logs_ingest.py), and the
    in-process write path both ways against a raw DuckDB insert."""
    import tempfile
    work = Path(tempfile.mkdtemp(prefix="insights-ingest-"))
    bodies = LI.make_bodies("s", 20, int(time.time() * 1000), seed=1)
    raw = LI.raw_insert(bodies, 200_000, work)
    on = LI.store_append(bodies, args.seconds, work, max_fields=500)
    off = LI.store_append(bodies, args.seconds, work, max_fields=0)
    report += ["", "Ingest, in process (LogsStore.append via Store.write_sync, one ~4,500-event "
               f"call per transaction, {args.seconds:.0f} s each):", "",
               f"- raw DuckDB insert (Arrow, 10,000-row committed batches): "
               f"{raw['events_per_s'] / 1000:,.1f} k events/s",
               f"- materialization off: {off['events_per_s'] / 1000:,.1f} k events/s "
               f"({off['events_per_s'] / raw['events_per_s']:.2f}× raw)",
               f"- materialization on (9 columns): {on['events_per_s'] / 1000:,.1f} k events/s "
               f"({on['events_per_s'] / raw['events_per_s']:.2f}× raw)"]
    for label, env in (("off", {"METRICSTORE_LOG_FIELD_COLUMNS": "0"}),
                       ("on", {"METRICSTORE_LOG_FIELD_COLUMNS": "500"})):
        r = subprocess.run([sys.executable, str(C.ROOT / "bench" / "logs_ingest.py"),
                            "--skip-filter", "--seconds", str(args.seconds)],
                           env=dict(os.environ, **env), capture_output=True, text=True,
                           cwd=C.ROOT, timeout=900)
        lines = [ln for ln in r.stdout.splitlines()
                 if "events/s" in ln and ("**" in ln or "raw DuckDB" in ln)]
        report.append(f"- PutLogEvents over HTTP, materialization {label} "
                      f"(bench/logs_ingest.py --skip-filter --seconds {args.seconds:.0f}):")
        report += ["  " + ln for ln in lines] or [f"  (failed: {r.stderr[-500:]})"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--data-dir", default="/tmp/metricstore-insights-bench")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--ingest", action="store_true", help="also measure ingest on/off")
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
