"""Metric query latency: GetMetricStatistics and GetMetricData over a 10 M-datapoint store.

The store: ``--series`` series (default 10,000) x ``--minutes`` 1-minute datapoints (default
1,440 = the last 24 h) = 14.4 M datapoints, written in arrival order (minute by minute, every
series) through ``MetricsStore.insert`` via ``Store.write_sync`` in big batches, then compacted
with ``MetricsStore.compact`` as the server's maintenance does; then ``python -m metricstore
serve`` runs on that data dir.  Queries (median of ``--runs`` runs, through boto3 over HTTP):

* ``gms``: GetMetricStatistics, one series x 24 h at a 1-minute period (5 basic statistics);
* ``p99``: GetMetricStatistics, ExtendedStatistics p99, one series x 24 h at 1 minute;
* ``gmd``: GetMetricData, 100 MetricStat queries (Average, 1 minute, ReturnData false) and
  ``SUM(METRICS())`` over 24 h.

Each is compared with the same hand-written DuckDB SQL on a copy of the data sorted by series
(the lower bound; the target is <= 2x it), on a copy in arrival order, and on the layout that
the server's 30-second compactions produce under a live feed (each 30 s chunk sorted by
series).  The same queries run against moto's server on a smaller data set (moto keeps every
datapoint as a Python object and scans them all per query), next to metricstore on that same
small data set.

    .venv/bin/python bench/metrics_query.py                 # ~4 minutes
    .venv/bin/python bench/metrics_query.py --series 2000 --no-moto   # quick
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

sys.path.insert(0, str(C.ROOT))

import numpy as np  # noqa: E402

NS = "Bench/Query"
METRIC = "Latency"
ACCOUNT, REGION = "000000000000", "us-east-1"
MIN_MS = 60_000


def dims_of(i: int) -> list[dict]:
    return [{"Name": "Host", "Value": f"host-{i:05d}"}]


def values_for(sids: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """Deterministic values: a per-series level plus a daily wave plus noise."""
    rng = np.random.default_rng(int(minute[0]) if len(minute) else 0)
    level = 50.0 + (sids % 97) * 3.0
    wave = 20.0 * np.sin(minute / 1440.0 * 2 * np.pi)
    return np.round(level + wave + rng.normal(0, 5, len(sids)), 3)


# ---------------------------------------------------------------------------------------------
# the store, written through metricstore.store
# ---------------------------------------------------------------------------------------------

def build_store(data_dir: Path, n_series: int, minutes: int, end_ms: int, batch_minutes: int,
                log, layout: str = "compacted") -> dict:
    from metricstore.store.db import Store
    from metricstore.store.metrics import MetricBatch, MetricsStore, dim_key
    data_dir.mkdir(parents=True, exist_ok=True)
    path = str(data_dir / "metricstore.duckdb")     # the server's Config.db_path
    timing = {}
    store = Store(path)
    keys = [(NS, METRIC, dim_key(dims_of(i))) for i in range(n_series)]
    now_ms = int(time.time() * 1000)

    # The series rows, as MetricsStore._resolve writes them (its executemany takes ~2.6 ms a
    # row on duckdb 1.5.5, 26 s for 10 k series: written here in one statement instead).
    t0 = time.perf_counter()

    def add_series(w):
        _bench_series = {  # noqa: F841 (replacement scan)
            "id": np.arange(1, n_series + 1, dtype=np.int32),
            "account": np.array([ACCOUNT] * n_series), "region": np.array([REGION] * n_series),
            "namespace": np.array([k[0] for k in keys]),
            "metric_name": np.array([k[1] for k in keys]),
            "dim_key": np.array([k[2] for k in keys]), "dimensions": np.array([k[2] for k in keys]),
            "last_put": np.full(n_series, now_ms, dtype=np.int64)}
        w.con.execute("INSERT INTO series SELECT * FROM _bench_series")
    store.write_sync(add_series)
    store.close()
    store = Store(path)
    ms = MetricsStore(store)            # loads the series dictionary like a server start
    assert ms.series_id(ACCOUNT, REGION, *keys[-1]) == n_series
    timing["series_s"] = time.perf_counter() - t0

    # samples in arrival order: minute after minute, every series
    start_ms = end_ms - minutes * MIN_MS
    sids = np.arange(n_series, dtype=np.int64)
    t0 = time.perf_counter()
    insert_calls = []
    for m0 in range(0, minutes, batch_minutes):
        m = np.arange(m0, min(minutes, m0 + batch_minutes), dtype=np.int64)
        minute = np.repeat(m, n_series)
        key = np.tile(sids, len(m))
        b = MetricBatch()
        b.keys = keys
        b.s_key = key.tolist()
        b.s_ts = (start_ms + minute * MIN_MS).tolist()
        b.s_value = values_for(key, minute).tolist()
        n = len(b.s_key)
        b.s_weight = [1.0] * n
        b.s_unit = [3] * n            # Milliseconds
        b.s_hires = [False] * n
        t1 = time.perf_counter()
        store.write_sync(lambda w, b=b: ms.insert(w, ACCOUNT, REGION, b, now_ms))
        insert_calls.append(time.perf_counter() - t1)
    timing["insert_s"] = time.perf_counter() - t0
    timing["insert_calls"] = len(insert_calls)
    timing["insert_rows_per_s"] = n_series * minutes / timing["insert_s"]
    log(f"  inserted {n_series * minutes / 1e6:.1f} M datapoints in {len(insert_calls)} "
        f"MetricsStore.insert calls: {timing['insert_s']:.1f} s "
        f"({C.fmt_rate(timing['insert_rows_per_s'])} rows/s)")

    t0 = time.perf_counter()
    moved = store.write_sync(ms.compact)
    timing["compact_s"] = time.perf_counter() - t0
    log(f"  MetricsStore.compact moved {moved / 1e6:.1f} M rows in {timing['compact_s']:.1f} s")
    if layout == "live30s":
        # A live server compacts every 30 s: `samples` is then a sequence of 30-second runs,
        # each sorted by series.  Rewrite the table in that order (direct SQL, same rows).
        store.write_sync(lambda w: w.con.execute(
            "CREATE OR REPLACE TABLE samples AS SELECT * FROM samples "
            "ORDER BY ts // 30000, series_id, ts"))
        log("  samples rewritten in the order 30-second compactions leave (--layout live30s)")
    t0 = time.perf_counter()
    store.write_sync(lambda w: ms.rollup(w, int(time.time() * 1000)))
    timing["rollup_idle_s"] = time.perf_counter() - t0
    log(f"  one maintenance round (MetricsStore.rollup, nothing to do) on this store: "
        f"{timing['rollup_idle_s'] * 1000:.0f} ms")
    t0 = time.perf_counter()
    store.close()
    timing["close_s"] = time.perf_counter() - t0
    return timing


def make_reference(store_path: Path, ref_path: Path, chunk_ms: int) -> dict:
    """Copies of the samples for the hand-written SQL: sorted by series (the lower bound),
    arrival order, and the layout of 30-second compactions under a live feed."""
    import duckdb
    t0 = time.perf_counter()
    con = duckdb.connect(str(ref_path))
    con.execute(f"ATTACH '{store_path}' AS s (READ_ONLY)")
    con.execute("CREATE TABLE sorted AS SELECT * FROM s.samples ORDER BY series_id, ts")
    con.execute("CREATE TABLE arrival AS SELECT * FROM s.samples ORDER BY ts, series_id")
    con.execute(f"CREATE TABLE incremental AS SELECT * FROM s.samples "
                f"ORDER BY ts // {chunk_ms}, series_id, ts")
    # what re-sorting each closed 3-hour span would give (a proposal, see RESULTS.md)
    con.execute(f"CREATE TABLE chunks3h AS SELECT * FROM s.samples "
                f"ORDER BY ts // {3 * 3600 * 1000}, series_id, ts")
    con.execute("DETACH s")
    con.close()
    return {"seconds": time.perf_counter() - t0}


# ---------------------------------------------------------------------------------------------
# the queries
# ---------------------------------------------------------------------------------------------

def sql_queries(table: str, sid: int, gmd_sids: list[int], start_ms: int, end_ms: int):
    w = f"ts >= {start_ms} AND ts < {end_ms}"
    b = f"(ts - {start_ms}) // {MIN_MS}"
    ids = ", ".join(str(s) for s in gmd_sids)
    return {
        "gms": (f"SELECT {b} AS b, sum(weight) AS n, sum(value * weight) AS s, min(value), "
                f"max(value) FROM {table} WHERE series_id = {sid} AND {w} GROUP BY b ORDER BY b"),
        "p99": (f"SELECT {b} AS b, quantile_disc(value, 0.99) FROM {table} "
                f"WHERE series_id = {sid} AND {w} GROUP BY b ORDER BY b"),
        "gmd": (f"SELECT b, sum(v) FROM (SELECT series_id, {b} AS b, sum(value * weight) / "
                f"sum(weight) AS v FROM {table} WHERE series_id IN ({ids}) AND {w} "
                f"GROUP BY ALL) GROUP BY b ORDER BY b"),
    }


def median_ms(fn, runs: int, warm: int = 2) -> dict:
    for _ in range(warm):
        fn(0)
    ts = []
    for i in range(runs):
        t0 = time.perf_counter()
        fn(i)
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return {"median_ms": statistics.median(ts) * 1000, "p90_ms": ts[int(len(ts) * 0.9)] * 1000,
            "min_ms": ts[0] * 1000, "runs": runs}


def time_sql(ref_path: Path, store_path: Path, probe_sids, gmd_sids, start_ms, end_ms,
             runs) -> dict:
    import duckdb
    con = duckdb.connect(str(ref_path), read_only=True)
    con.execute(f"ATTACH '{store_path}' AS s (READ_ONLY)")
    out = {}
    for table, label in (("sorted", "sorted"), ("arrival", "arrival"),
                         ("incremental", "incremental30s"), ("chunks3h", "chunks3h"),
                         ("s.samples", "server_table")):
        for q in ("gms", "p99", "gmd"):
            def run(i, q=q, table=table):
                sql = sql_queries(table, probe_sids[i % len(probe_sids)], gmd_sids, start_ms,
                                  end_ms)[q]
                return con.execute(sql).fetchall()
            out[(label, q)] = median_ms(run, runs)
    # reference answers (to check the server's)
    ref = {q: con.execute(sql_queries("sorted", probe_sids[0], gmd_sids, start_ms, end_ms)[q]
                          ).fetchall() for q in ("gms", "p99", "gmd")}
    con.close()
    return out, ref


def api_requests(probe_sid: int, gmd_sids: list[int], start_s: int, end_s: int) -> dict:
    """boto3 keyword arguments of the three calls."""
    return {
        "gms": ("get_metric_statistics", dict(
            Namespace=NS, MetricName=METRIC, Dimensions=dims_of(probe_sid - 1),
            StartTime=start_s, EndTime=end_s, Period=60,
            Statistics=["SampleCount", "Average", "Sum", "Minimum", "Maximum"])),
        "p99": ("get_metric_statistics", dict(
            Namespace=NS, MetricName=METRIC, Dimensions=dims_of(probe_sid - 1),
            StartTime=start_s, EndTime=end_s, Period=60, ExtendedStatistics=["p99"])),
        "gmd": ("get_metric_data", dict(
            StartTime=start_s, EndTime=end_s, ScanBy="TimestampAscending",
            MetricDataQueries=[
                {"Id": f"m{k}", "ReturnData": False, "MetricStat": {
                    "Metric": {"Namespace": NS, "MetricName": METRIC, "Dimensions": dims_of(s - 1)},
                    "Period": 60, "Stat": "Average"}} for k, s in enumerate(gmd_sids)]
            + [{"Id": "total", "Expression": "SUM(METRICS())", "Label": "total"}])),
    }


def check_answer(q: str, resp: dict, ref=None, expect_points: int | None = None) -> str | None:
    """None when the API answer is complete (and matches the SQL reference), else why not."""
    if q in ("gms", "p99"):
        dps = sorted(resp.get("Datapoints", []), key=lambda d: d["Timestamp"])
        if expect_points is not None and len(dps) != expect_points:
            return f"{len(dps)} datapoints, expected {expect_points}"
        if q == "p99":
            if not dps or "ExtendedStatistics" not in dps[0] or "p99" not in dps[0]["ExtendedStatistics"]:
                return "no p99 in the datapoints"
            if ref is not None:
                got = [d["ExtendedStatistics"]["p99"] for d in dps]
                want = [r[1] for r in ref]
                if not np.allclose(got, want):
                    return "p99 values differ from SQL"
        elif ref is not None:
            got = [d["Sum"] for d in dps]
            want = [r[2] for r in ref]
            if not np.allclose(got, want):
                return "Sum values differ from SQL"
        return None
    res = [r for r in resp.get("MetricDataResults", []) if r["Id"] == "total"]
    if not res or not res[0].get("Values"):
        return "SUM(METRICS()) returned no values"
    if expect_points is not None and len(res[0]["Values"]) != expect_points:
        return f"{len(res[0]['Values'])} values, expected {expect_points}"
    if ref is not None and not np.allclose(res[0]["Values"], [r[1] for r in ref]):
        return "values differ from SQL"
    return None


def time_api(url: str, dirs, probe_sids, gmd_sids, start_s, end_s, runs, ref=None,
             expect_points=None, only=("gms", "p99", "gmd"), raw_http: bool = True) -> dict:
    client = C.make_client(url, "json", dirs)
    rec = C.Recorder("json", dirs)
    out = {}
    for q in only:
        op, _ = api_requests(probe_sids[0], gmd_sids, start_s, end_s)[q]
        kw = [api_requests(s, gmd_sids, start_s, end_s)[q][1] for s in probe_sids]
        resp = getattr(client, op)(**kw[0])
        problem = check_answer(q, resp, ref.get(q) if ref else None, expect_points)
        if problem:
            out[q] = {"cannot": problem}
            continue
        out[q] = median_ms(lambda i: getattr(client, op)(**kw[i % len(kw)]), runs)
        if raw_http:
            reqs = [rec.request(op, **k) for k in kw]
            conn = http.client.HTTPConnection(url.split("//")[1], timeout=300)

            def send(i):
                status, body = C.send(conn, reqs[i % len(reqs)])
                assert status == 200, (status, body[:300])
            out[q]["raw_http"] = median_ms(send, runs)
            body = C.send(conn, reqs[0])[1]
            out[q]["response_bytes"] = len(body)
            conn.close()
            out[q]["boto3_parse"] = parse_cost(client, op, body, runs)
    return out


def parse_cost(client, op: str, body: bytes, runs: int) -> dict:
    """What botocore spends turning the response body into Python (client side)."""
    from botocore.parsers import create_parser
    model = client.meta.service_model
    op_model = model.operation_model(client.meta.method_to_api_mapping[op])
    parser = create_parser(model.resolved_protocol)
    resp = {"status_code": 200, "headers": {"x-amzn-requestid": "x"}, "body": body}
    return median_ms(lambda i: parser.parse(resp, op_model.output_shape), runs)


def time_in_process(store_path: Path, probe_sids, gmd_sids, start_s, end_s, runs) -> dict:
    """The server's own query functions on its store, without HTTP (where the time goes)."""
    from metricstore.clock import Clock
    from metricstore.config import Config
    from metricstore.operations import Context, load_all
    from metricstore.operations import metric_data
    from metricstore.operations.metrics import StatSpec, compute_series
    from metricstore.store.db import Store
    from metricstore.store.metrics import MetricsStore, dim_key
    load_all()
    store = Store(str(store_path))
    ms = MetricsStore(store)
    cur = store.cursor()
    out = {}
    try:
        basic = [StatSpec.parse(s) for s in ("SampleCount", "Average", "Sum", "Minimum", "Maximum")]
        p99 = [StatSpec.parse("p99")]
        sid_of = {s: ms.series_id(ACCOUNT, REGION, NS, METRIC, dim_key(dims_of(s - 1)))
                  for s in probe_sids}
        for q, specs in (("gms", basic), ("p99", p99)):
            out[q] = median_ms(lambda i, specs=specs: compute_series(
                cur, ms, [sid_of[probe_sids[i % len(probe_sids)]]], start_s * 1000, end_s * 1000,
                60, specs, None), runs)
        server = SimpleNamespace(store=store, metrics=ms, clock=Clock(), config=Config())
        ctx = Context(ACCOUNT, REGION, server)
        queries = api_requests(probe_sids[0], gmd_sids, start_s, end_s)["gmd"][1]["MetricDataQueries"]
        out["gmd"] = median_ms(lambda i: metric_data._run(cur, ctx, queries, start_s, end_s,
                                                          time.time()), runs)
        # the pieces of GetMetricData: the grouped aggregate over 100 ids alone
        sids = sorted(ms.series_id(ACCOUNT, REGION, NS, METRIC, dim_key(dims_of(s - 1)))
                      for s in gmd_sids)
        out["gmd_aggregate_only"] = median_ms(lambda i: ms.aggregate(
            cur, sids, start_s * 1000, end_s * 1000, 60_000, None, True, True), runs)
        # binding 100 ids as one list parameter, as MetricsStore._where does
        out["bind_100_id_list"] = median_ms(lambda i: cur.execute(
            "SELECT count(*) FROM (SELECT unnest($ids))", {"ids": sids}).fetchall(), runs)
    except Exception as e:  # noqa: BLE001 - internals move; report instead of failing
        out["error"] = repr(e)[:300]
    finally:
        store.close()
    return out


# ---------------------------------------------------------------------------------------------
# moto
# ---------------------------------------------------------------------------------------------

def load_small(url: str, dirs, n_series: int, minutes: int, end_ms: int) -> dict:
    """The small data set through PutMetricData (JSON, 1,000 datums a call)."""
    client = C.make_client(url, "json", dirs)
    start_ms = end_ms - minutes * MIN_MS
    data = []
    calls = 0
    t0 = time.perf_counter()
    sids = np.arange(n_series, dtype=np.int64)
    for m in range(minutes):
        vals = values_for(sids, np.full(n_series, m, dtype=np.int64))
        for i in range(n_series):
            data.append({"MetricName": METRIC, "Dimensions": dims_of(i),
                         "Timestamp": (start_ms + m * MIN_MS) / 1000, "Value": float(vals[i]),
                         "Unit": "Milliseconds"})
            if len(data) == 1000:
                client.put_metric_data(Namespace=NS, MetricData=data)
                calls += 1
                data = []
    if data:
        client.put_metric_data(Namespace=NS, MetricData=data)
        calls += 1
    el = time.perf_counter() - t0
    return {"datapoints": n_series * minutes, "calls": calls, "seconds": el}


def moto_gmd_check(url: str, dirs, end_s: int) -> str | None:
    """Whether moto answers SUM(METRICS()) at all (on 2 series x 10 minutes: moto's
    GetMetricData loops queries x periods x all datapoints, too slow for 100 x 1,440)."""
    client = C.make_client(url, "json", dirs)
    resp = client.get_metric_data(
        StartTime=end_s - 600, EndTime=end_s, MetricDataQueries=[
            {"Id": f"m{k}", "ReturnData": False, "MetricStat": {
                "Metric": {"Namespace": NS, "MetricName": METRIC, "Dimensions": dims_of(k)},
                "Period": 60, "Stat": "Average"}} for k in range(2)]
        + [{"Id": "total", "Expression": "SUM(METRICS())"}])
    return check_answer("gmd", resp)


# ---------------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--minutes", type=int, default=1440, help="1-minute datapoints per series")
    ap.add_argument("--batch-minutes", type=int, default=120,
                    help="minutes of data per MetricsStore.insert call while building")
    ap.add_argument("--layout", choices=("compacted", "live30s"), default="compacted",
                    help="compacted: one MetricsStore.compact after the load (sorted by series); "
                         "live30s: the order 30-second compactions of a live feed leave")
    ap.add_argument("--gmd-series", type=int, default=100)
    ap.add_argument("--runs", type=int, default=20, help="runs per query (median)")
    ap.add_argument("--no-moto", action="store_true")
    ap.add_argument("--moto-series", type=int, default=50)
    ap.add_argument("--moto-runs", type=int, default=5)
    ap.add_argument("--server-args", default="",
                    help="extra flags for metricstore serve, e.g. '--compact-interval 5'")
    ap.add_argument("--keep", help="build the store here and keep it (default: a temp dir)")
    ap.add_argument("--json-out")
    args = ap.parse_args()

    def log(msg):
        print(msg, flush=True)

    base = Path(args.keep) if args.keep else C.tmpdir("ms-bench-query-")
    base.mkdir(parents=True, exist_ok=True)
    res: dict = {"machine": C.machine(), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                 "argv": sys.argv}
    log(f"# metric query benchmark  {res['date']}\n# {res['machine']}\n# {C.busy_note()}")
    end_ms = (int(time.time()) // 60 - 1) * MIN_MS      # last full minute
    start_ms = end_ms - args.minutes * MIN_MS
    start_s, end_s = start_ms // 1000, end_ms // 1000
    rng = random.Random(7)
    probe_sids = [rng.randrange(1, args.series + 1) for _ in range(5)]    # series ids are 1-based
    gmd_sids = sorted(rng.sample(range(1, args.series + 1), min(args.gmd_series, args.series)))
    n_points = args.series * args.minutes
    other = C.OtherCPU()
    try:
        dirs = C.model_dirs(base)
        data = base / "data"
        store_path = data / "metricstore.duckdb"
        log(f"building {args.series} series x {args.minutes} minutes = {n_points / 1e6:.1f} M "
            f"datapoints in {data}")
        t0 = time.perf_counter()
        res["build"] = build_store(data, args.series, args.minutes, end_ms, args.batch_minutes, log,
                                   args.layout)
        res["build"]["total_s"] = time.perf_counter() - t0
        res["store_mib"] = store_path.stat().st_size / 2 ** 20
        ref_path = base / "reference.duckdb"
        r = make_reference(store_path, ref_path, 30_000)
        log(f"  reference copies (sorted / arrival / 30-s runs / 3-h runs) in {r['seconds']:.1f} s; "
            f"store {res['store_mib']:.0f} MiB")

        sql, ref = time_sql(ref_path, store_path, probe_sids, gmd_sids, start_ms, end_ms, args.runs)
        res["sql"] = {f"{k[0]}/{k[1]}": v for k, v in sql.items()}
        for q in ("gms", "p99", "gmd"):
            log(f"  SQL {q}: " + ", ".join(f"{lab} {sql[(lab, q)]['median_ms']:.1f} ms" for lab in
                                           ("sorted", "arrival", "incremental30s", "chunks3h",
                                            "server_table")))
        res["in_process"] = time_in_process(store_path, probe_sids, gmd_sids, start_s, end_s,
                                            args.runs)
        log("  server functions in-process: " + ", ".join(
            f"{k} {v['median_ms']:.1f} ms" if isinstance(v, dict) else f"{k} {v}"
            for k, v in res["in_process"].items()))

        srv = C.metricstore_server(data, extra=args.server_args.split()).start(timeout=120)
        try:
            api = time_api(srv.url, dirs, probe_sids, gmd_sids, start_s, end_s, args.runs,
                           ref=ref, expect_points=args.minutes)
            res["server_rss_mib"] = srv.rss_mib()
        finally:
            srv.stop()
        res["api"] = api
        for q, v in api.items():
            if "cannot" in v:
                log(f"  metricstore {q}: WRONG ANSWER: {v['cannot']}")
                continue
            low = sql[("sorted", q)]["median_ms"]
            v["ratio_to_sorted_sql"] = v["median_ms"] / low
            log(f"  metricstore {q}: boto3 {v['median_ms']:.1f} ms (p90 {v['p90_ms']:.1f}), raw "
                f"HTTP {v['raw_http']['median_ms']:.1f} ms, botocore parse of the "
                f"{v['response_bytes'] / 1024:.0f} KiB answer {v['boto3_parse']['median_ms']:.1f} ms;"
                f" x{v['ratio_to_sorted_sql']:.1f} of the sorted SQL ({low:.1f} ms)")

        if not args.no_moto:
            if not C.have_moto():
                log("moto[server] not installed: .venv/bin/pip install 'moto[server]'")
            else:
                res["moto"] = run_moto(args, base, dirs, end_ms, log)

        res["other_processes_cores"] = other.cores()
        print_summary(res, args)
        print(f"# other processes on the machine used {res['other_processes_cores']:.2f} cores "
              f"on average during this run")
        if args.json_out:
            Path(args.json_out).write_text(json.dumps(res, indent=1, default=str))
    finally:
        if not args.keep:
            C.rmtree(base)
    return 0


def run_moto(args, base: Path, dirs, end_ms: int, log) -> dict:
    """moto and metricstore on the same small data set."""
    out: dict = {"series": args.moto_series, "minutes": args.minutes}
    n = args.moto_series
    rng = random.Random(11)
    probe = [rng.randrange(1, n + 1) for _ in range(5)]
    gmd = sorted(rng.sample(range(1, n + 1), min(args.gmd_series, n)))
    start_s, end_s = (end_ms - args.minutes * MIN_MS) // 1000, end_ms // 1000
    log(f"moto vs metricstore, {n} series x {args.minutes} minutes = "
        f"{n * args.minutes / 1e3:.0f} k datapoints through PutMetricData")
    for name in ("moto", "metricstore"):
        srv = (C.moto_server(base) if name == "moto"
               else C.metricstore_server(base / "small-data", extra=args.server_args.split())).start()
        try:
            ld = load_small(srv.url, dirs, n, args.minutes, end_ms)
            log(f"  {name}: loaded in {ld['seconds']:.1f} s ({ld['calls']} calls)")
            only = ("gms", "p99") if name == "moto" else ("gms", "p99", "gmd")
            r = time_api(srv.url, dirs, probe, gmd, start_s, end_s,
                         args.moto_runs if name == "moto" else args.runs,
                         expect_points=args.minutes, only=only, raw_http=False)
            if name == "moto":
                problem = moto_gmd_check(srv.url, dirs, end_s)
                r["gmd"] = ({"cannot": problem} if problem else
                            {"cannot": "answers SUM(METRICS()) on 2 x 10 min only; 100 x 24 h "
                                       "loops queries x periods x datapoints"})
            r["load"] = ld
            out[name] = r
            for q, v in r.items():
                if q == "load":
                    continue
                log(f"  {name} {q}: " + (f"cannot ({v['cannot']})" if "cannot" in v
                                         else f"{v['median_ms']:.1f} ms"))
        finally:
            srv.stop()
    return out


def print_summary(res: dict, args) -> None:
    sql, api = res["sql"], res["api"]
    print(f"\n{args.series} series x {args.minutes} min = {args.series * args.minutes / 1e6:.1f} M "
          f"datapoints; median of {args.runs} runs")
    print("| query | metricstore (boto3) | raw HTTP | botocore parse | in-process | SQL sorted "
          "| SQL server table | SQL arrival | SQL 30-s runs | SQL 3-h runs "
          "| metricstore / sorted SQL |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for q in ("gms", "p99", "gmd"):
        a = api.get(q, {})
        ip = res.get("in_process", {}).get(q)
        cells = [q, f"{a['median_ms']:.1f} ms" if "median_ms" in a else a.get("cannot", "-"),
                 f"{a['raw_http']['median_ms']:.1f} ms" if "raw_http" in a else "-",
                 f"{a['boto3_parse']['median_ms']:.1f} ms" if "boto3_parse" in a else "-",
                 f"{ip['median_ms']:.1f} ms" if isinstance(ip, dict) else "-"]
        for lab in ("sorted", "server_table", "arrival", "incremental30s", "chunks3h"):
            cells.append(f"{sql[f'{lab}/{q}']['median_ms']:.1f} ms")
        cells.append(f"{a['ratio_to_sorted_sql']:.1f}x" if "ratio_to_sorted_sql" in a else "-")
        print("| " + " | ".join(cells) + " |")
    m = res.get("moto")
    if m:
        print(f"\nmoto vs metricstore on {m['series']} series x {m['minutes']} min")
        print("| query | moto | metricstore | moto / metricstore |")
        print("|---|---|---|---|")
        for q in ("gms", "p99", "gmd"):
            mo, ms = m["moto"].get(q, {}), m["metricstore"].get(q, {})
            a = f"{mo['median_ms']:.1f} ms" if "median_ms" in mo else f"cannot: {mo.get('cannot')}"
            b = f"{ms['median_ms']:.1f} ms" if "median_ms" in ms else f"cannot: {ms.get('cannot')}"
            r = (C.fmt_ratio(mo['median_ms'] / ms['median_ms'])
                 if "median_ms" in mo and "median_ms" in ms else "-")
            print(f"| {q} | {a} | {b} | {r} |")


if __name__ == "__main__":
    sys.exit(main())
