"""Soak: a bounded mixed load against one server, watching latency, errors and memory.

``python -m metricstore serve`` runs on loopback on a fresh data directory with
``--alarm-interval 10``.  Setup creates a log group with streams, an SNS topic, ``--alarms``
metric alarms (default 200: one per host series, Average / Maximum / p90 over 60 s periods,
1 to 3 evaluation periods, one in ten through a metric-math ``Metrics`` list) and a few
composite alarms over them, all with the topic as their action.  Then, for ``--seconds``
(default 600), separate client processes (boto3, one per workload, so client CPU does not
share one GIL):

* ``PutMetricData``: 20 datums a call over the alarms' 200 host series, values drifting
  across the thresholds so that alarms change state (history rows, outbox rows);
* ``PutLogEvents``: 500 events (~150 bytes, half JSON) a call, round-robin over the streams;
* ``Insights``: StartQuery of one of five queries over the last 15 minutes, GetQueryResults
  polled every 50 ms until Complete (the latency is start to Complete);
* ``DescribeAlarms``: all alarms, paged (100 a page), once a second: the read side of the
  alarm tick, which the server runs every 10 s over every alarm.

Reported per operation: calls, calls/s, p50/p99 latency, errors (non-2xx or exceptions).
The server's resident memory (its process tree: the server and its ingest worker processes)
is sampled every second; the report gives it at 25/50/75/100 % of the run and its peak, so a
leak shows as a rising column.  After the run: state transitions in the alarm history, the
events and datapoints the server holds, and whether the server log has a traceback.

    .venv/bin/python bench/soak.py --seconds 60          # development
    .venv/bin/python bench/soak.py                       # the 10-minute soak
    .venv/bin/python bench/soak.py --results bench/RESULTS.md   # append the report
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

GROUP = "/soak/app"
STREAMS = [f"stream-{i}" for i in range(8)]
NAMESPACE = "Soak"
TOPIC = "soak-alarms"
QUERIES = [
    "stats count(*) by bin(1m)",
    "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 50",
    "filter latency > 500 | stats avg(latency), max(latency) by path",
    "parse @message 'status=* ' as status | stats count(*) by status",
    "fields @timestamp, path, latency | sort latency desc | limit 20",
]
PATHS = ["/api/items", "/api/users", "/api/orders", "/health", "/login"]


def clients(url: str):
    import boto3
    from botocore.config import Config
    cfg = Config(retries={"max_attempts": 1}, read_timeout=120, connect_timeout=10)
    s = boto3.Session(region_name="us-east-1")
    return {name: s.client(name, endpoint_url=url, config=cfg)
            for name in ("cloudwatch", "logs", "sns")}


# ---------------------------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------------------------

def setup(url: str, n_alarms: int) -> dict:
    c = clients(url)
    logs, cw, sns = c["logs"], c["cloudwatch"], c["sns"]
    logs.create_log_group(logGroupName=GROUP)
    for s in STREAMS:
        logs.create_log_stream(logGroupName=GROUP, logStreamName=s)
    topic = sns.create_topic(Name=TOPIC)["TopicArn"]
    stats = ["Average", "Maximum", None]
    for i in range(n_alarms):
        host = f"h{i % 200:03d}"
        common = dict(AlarmName=f"soak-{i:04d}", EvaluationPeriods=1 + i % 3,
                      DatapointsToAlarm=1, Threshold=50.0,
                      ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                      OKActions=[topic], TreatMissingData=["missing", "notBreaching"][i % 2])
        if i % 10 == 9:
            cw.put_metric_alarm(**common, Metrics=[
                {"Id": "m1", "ReturnData": False, "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": "Load",
                               "Dimensions": [{"Name": "Host", "Value": host}]},
                    "Period": 60, "Stat": "Average"}},
                {"Id": "e1", "Expression": "m1 * 1.1", "ReturnData": True}])
            continue
        metric = dict(Namespace=NAMESPACE, MetricName="Load",
                      Dimensions=[{"Name": "Host", "Value": host}], Period=60)
        stat = stats[i % 3]
        if stat is None:
            cw.put_metric_alarm(**common, **metric, ExtendedStatistic="p90")
        else:
            cw.put_metric_alarm(**common, **metric, Statistic=stat)
    composites = 0
    for k in range(0, min(n_alarms, 100), 10):
        rule = " OR ".join(f'ALARM("soak-{j:04d}")' for j in range(k, min(k + 5, n_alarms)))
        cw.put_composite_alarm(AlarmName=f"soak-composite-{k:04d}", AlarmRule=rule,
                               AlarmActions=[topic])
        composites += 1
    return {"topic": topic, "composites": composites}


# ---------------------------------------------------------------------------------------------
# workloads (each in its own process)
# ---------------------------------------------------------------------------------------------

def _metric_call(c, rnd: random.Random, k: int) -> None:
    now = time.time()
    phase = (now % 180) / 180                  # every 3 minutes across the threshold and back
    data = []
    for j in range(20):
        h = (k * 20 + j) % 200
        level = 20 + 70 * phase if h % 2 else 80 - 60 * phase
        data.append({"MetricName": "Load", "Dimensions": [{"Name": "Host", "Value": f"h{h:03d}"}],
                     "Value": max(0.0, level + rnd.gauss(0, 5)), "Unit": "Percent"})
    c["cloudwatch"].put_metric_data(Namespace=NAMESPACE, MetricData=data)


def _log_call(c, rnd: random.Random, k: int) -> None:
    now_ms = int(time.time() * 1000)
    events = []
    for i in range(500):
        path = PATHS[rnd.randrange(len(PATHS))]
        lat = int(rnd.expovariate(1 / 120))
        status = 500 if rnd.random() < 0.02 else 200
        if i % 2:
            msg = json.dumps({"level": "ERROR" if status == 500 else "INFO", "path": path,
                              "latency": lat, "status": status, "req": f"{k:08d}-{i:04d}"})
        else:
            msg = (f"{'ERROR' if status == 500 else 'INFO'} path={path} latency={lat} "
                   f"status={status} req={k:08d}-{i:04d} user=u{rnd.randrange(1000)}")
        events.append({"timestamp": now_ms - (499 - i), "message": msg})
    c["logs"].put_log_events(logGroupName=GROUP, logStreamName=STREAMS[k % len(STREAMS)],
                             logEvents=events)


def _insights_call(c, rnd: random.Random, k: int) -> None:
    now = int(time.time())
    qid = c["logs"].start_query(logGroupName=GROUP, startTime=now - 900, endTime=now + 60,
                                queryString=QUERIES[k % len(QUERIES)])["queryId"]
    deadline = time.time() + 120
    while time.time() < deadline:
        r = c["logs"].get_query_results(queryId=qid)
        if r["status"] == "Complete":
            return
        if r["status"] in ("Failed", "Cancelled", "Timeout"):
            raise RuntimeError(f"query {r['status']}")
        time.sleep(0.05)
    raise RuntimeError("query did not complete in 120 s")


def _alarms_call(c, rnd: random.Random, k: int) -> None:
    n = 0
    for page in c["cloudwatch"].get_paginator("describe_alarms").paginate(
            AlarmNamePrefix="soak-", PaginationConfig={"PageSize": 100}):
        n += len(page["MetricAlarms"]) + len(page["CompositeAlarms"])
    if n == 0:
        raise RuntimeError("no alarms")
    time.sleep(1.0)                            # a dashboard-like poll, not a hammer


WORKLOADS = {"PutMetricData": _metric_call, "PutLogEvents": _log_call,
             "Insights": _insights_call, "DescribeAlarms": _alarms_call}


def _worker(name: str, url: str, start_at: float, seconds: float, out_q) -> None:
    c = clients(url)
    fn = WORKLOADS[name]
    rnd = random.Random(hash(name) & 0xffff)
    lat: list[tuple[float, float]] = []        # (start offset, seconds)
    errors: dict[str, int] = {}
    while time.time() < start_at:
        time.sleep(0.01)
    end = start_at + seconds
    k = 0
    while time.time() < end:
        t0 = time.perf_counter()
        started = time.time() - start_at
        try:
            fn(c, rnd, k)
        except Exception as e:  # noqa: BLE001 - counted
            key = type(e).__name__ + ": " + str(e)[:120]
            errors[key] = errors.get(key, 0) + 1
        else:
            dt = time.perf_counter() - t0
            if name == "DescribeAlarms":
                dt -= 1.0
            lat.append((started, dt))
        k += 1
    out_q.put((name, lat, errors))


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def sample_rss(srv: C.Proc, stop: threading.Event, out: list) -> None:
    t0 = time.time()
    while not stop.wait(1.0):
        out.append((time.time() - t0, srv.rss_mib(), _main_rss(srv.proc.pid)))


def _main_rss(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def server_counts(url: str) -> dict:
    c = clients(url)
    now = time.time()
    transitions = 0
    for page in c["cloudwatch"].get_paginator("describe_alarm_history").paginate(
            HistoryItemType="StateUpdate", PaginationConfig={"PageSize": 100}):
        transitions += len(page["AlarmHistoryItems"])
    states: dict[str, int] = {}
    for page in c["cloudwatch"].get_paginator("describe_alarms").paginate(
            AlarmNamePrefix="soak-"):
        for a in page["MetricAlarms"] + page["CompositeAlarms"]:
            states[a["StateValue"]] = states.get(a["StateValue"], 0) + 1
    qid = c["logs"].start_query(logGroupName=GROUP, startTime=0, endTime=int(now) + 60,
                                queryString="stats count(*) as n")["queryId"]
    events = None
    for _ in range(1200):
        r = c["logs"].get_query_results(queryId=qid)
        if r["status"] == "Complete":
            events = int(r["results"][0][0]["value"]) if r["results"] else 0
            break
        time.sleep(0.1)
    return {"transitions": transitions, "states": states, "events": events}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--alarms", type=int, default=200)
    ap.add_argument("--metric-clients", type=int, default=2)
    ap.add_argument("--log-clients", type=int, default=2)
    ap.add_argument("--insights-clients", type=int, default=1)
    ap.add_argument("--results", help="append the report to this markdown file")
    args = ap.parse_args()

    tmp = C.tmpdir("metricstore-soak-")
    data = tmp / "data"
    srv = C.metricstore_server(data, extra=["--alarm-interval", "10"])
    report: list[str] = []
    other = None
    try:
        srv.start()
        t0 = time.time()
        info = setup(srv.url, args.alarms)
        setup_s = time.time() - t0
        rss0 = srv.rss_mib()
        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        plan = (["PutMetricData"] * args.metric_clients + ["PutLogEvents"] * args.log_clients +
                ["Insights"] * args.insights_clients + ["DescribeAlarms"])
        start_at = time.time() + 5.0           # spawned interpreters import boto3 first
        procs = [ctx.Process(target=_worker, args=(n, srv.url, start_at, args.seconds, q))
                 for n in plan]
        for p in procs:
            p.start()
        rss: list[tuple[float, float, float]] = []
        stop = threading.Event()
        while time.time() < start_at:
            time.sleep(0.05)
        other = C.OtherCPU()
        cpu0 = srv.cpu_seconds()
        load_before = os.getloadavg()
        sampler = threading.Thread(target=sample_rss, args=(srv, stop, rss), daemon=True)
        sampler.start()
        results = [q.get(timeout=args.seconds + 600) for _ in procs]
        stop.set()
        sampler.join()
        wall = time.time() - start_at
        cpu = srv.cpu_seconds() - cpu0
        other_cores = other.cores()
        load_after = os.getloadavg()
        for p in procs:
            p.join(timeout=30)
        counts = server_counts(srv.url)
        rss_end = srv.rss_mib()
    finally:
        rc = srv.stop()
    log_text = srv.log_path.read_text(errors="replace") if srv.log_path.exists() else ""
    tracebacks = log_text.count("Traceback")

    merged: dict[str, tuple[list, dict]] = {}
    for name, lat, errs in results:
        lats, e = merged.setdefault(name, ([], {}))
        lats.extend(lat)
        for k, v in errs.items():
            e[k] = e.get(k, 0) + v
    clients_of = {n: plan.count(n) for n in set(plan)}

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start_at))
    report.append(f"Run {stamp}: `{' '.join([Path(sys.executable).name, *sys.argv])}`; "
                  f"{wall:.0f} s of load after {setup_s:.1f} s of setup ({args.alarms} metric "
                  f"alarms, {info['composites']} composite, `--alarm-interval 10`).")
    report.append(f"Machine: {C.machine()}.")
    report.append(f"Load: `uptime` load average {load_before[0]:.2f} at the start, "
                  f"{load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} (1/5/15 min) "
                  f"at the end; other processes used {other_cores:.2f} cores on average "
                  f"during the run; the server used {cpu / wall:.2f} cores.")
    report.append("")
    report.append("| operation | clients | calls | calls/s | p50 ms | p99 ms | max ms | errors |")
    report.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in WORKLOADS:
        if name not in merged:
            continue
        lats, errs = merged[name]
        vals = [d for _, d in lats]
        n_err = sum(errs.values())
        report.append(f"| {name} | {clients_of[name]} | {len(vals)} | {len(vals) / wall:.1f} | "
                      f"{pct(vals, 0.5) * 1e3:.1f} | {pct(vals, 0.99) * 1e3:.1f} | "
                      f"{max(vals, default=float('nan')) * 1e3:.1f} | {n_err} |")
    extra = {"PutMetricData": 20, "PutLogEvents": 500}
    for name, per in extra.items():
        if name in merged:
            n = len(merged[name][0])
            unit = "datums" if per == 20 else "events"
            report.append(f"\n{name}: {n * per / wall:,.0f} {unit}/s.")
    report.append("")
    # latency drift: p50 / p99 per quarter of the run, per operation
    report.append("Latency by quarter of the run (p50 / p99 ms):")
    report.append("")
    report.append("| operation | 0-25 % | 25-50 % | 50-75 % | 75-100 % |")
    report.append("|---|---|---|---|---|")
    for name in WORKLOADS:
        if name not in merged:
            continue
        cells = []
        for qi in range(4):
            lo, hi = wall * qi / 4, wall * (qi + 1) / 4
            v = [d for t, d in merged[name][0] if lo <= t < hi]
            cells.append(f"{pct(v, 0.5) * 1e3:.0f} / {pct(v, 0.99) * 1e3:.0f}" if v else "-")
        report.append(f"| {name} | " + " | ".join(cells) + " |")
    report.append("")
    report.append("Server RSS (MiB; process tree = server + ingest workers; main = the server "
                  "process):")
    report.append("")
    report.append("| | after setup | 25 % | 50 % | 75 % | 100 % | peak |")
    report.append("|---|---:|---:|---:|---:|---:|---:|")
    if rss:
        def at(frac, col):
            target = wall * frac
            return min(rss, key=lambda r: abs(r[0] - target))[col]
        report.append(f"| tree | {rss0:.0f} | " + " | ".join(
            f"{at(f, 1):.0f}" for f in (0.25, 0.5, 0.75, 1.0)) +
            f" | {max(r[1] for r in rss):.0f} |")
        report.append("| main | | " + " | ".join(
            f"{at(f, 2):.0f}" for f in (0.25, 0.5, 0.75, 1.0)) +
            f" | {max(r[2] for r in rss):.0f} |")
    report.append("")
    report.append(f"After the run: {counts['transitions']} alarm state transitions in the "
                  f"history, alarm states {counts['states']}, {counts['events']} log events "
                  f"stored (Insights count), server exit code {rc}, "
                  f"{tracebacks} traceback(s) in the server log, tree RSS {rss_end:.0f} MiB "
                  f"before shutdown.")
    errs_all = {f"{n}: {k}": v for n, (_, e) in merged.items() for k, v in e.items()}
    if errs_all:
        report.append("")
        report.append("Errors: " + "; ".join(f"{k} x{v}" for k, v in sorted(errs_all.items())))
    if tracebacks:
        idx = log_text.find("Traceback")
        report.append("")
        report.append("First traceback:\n\n```\n" + log_text[max(0, idx - 200): idx + 2500] +
                      "\n```")
    text = "\n".join(report)
    print(text)
    if args.results:
        with open(args.results, "a") as f:
            f.write("\n## Soak: `bench/soak.py`\n\n" + text + "\n")
    C.rmtree(tmp)


if __name__ == "__main__":
    main()
