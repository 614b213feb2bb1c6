"""200 means committed: SIGKILL during ingest loses no acknowledged datapoint or log event."""
from __future__ import annotations

import signal
import threading
import time
import uuid
from collections import Counter

import botocore.exceptions

from conftest import LiveServer, make_client


def _ingest_until_killed(srv: LiveServer, namespace: str, calls_before_kill: int):
    client = make_client("cloudwatch", srv.url)
    acked: list[int] = []
    stop = threading.Event()

    def worker(offset):
        i = offset
        while not stop.is_set():
            try:
                client.put_metric_data(Namespace=namespace, MetricData=[
                    {"MetricName": f"Call{i:05d}", "Values": [float(v) for v in range(50)]}])
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return
            acked.append(i)
            i += 2

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    while len(acked) < calls_before_kill:
        threads[0].join(0.01)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    return sorted(acked)


def _verify(srv: LiveServer, namespace: str, acked: list[int]):
    client = make_client("cloudwatch", srv.url)
    names = set()
    for page in client.get_paginator("list_metrics").paginate(Namespace=namespace):
        names.update(m["MetricName"] for m in page["Metrics"])
    missing = [i for i in acked if f"Call{i:05d}" not in names]
    assert not missing, f"{len(missing)} acknowledged calls lost, e.g. {missing[:5]}"
    import datetime as dt
    now = dt.datetime.now(dt.timezone.utc)
    for i in acked[:: max(1, len(acked) // 20)]:
        r = client.get_metric_statistics(Namespace=namespace, MetricName=f"Call{i:05d}",
                                         StartTime=now - dt.timedelta(hours=1), EndTime=now,
                                         Period=3600, Statistics=["SampleCount"])
        assert sum(p["SampleCount"] for p in r["Datapoints"]) == 50.0


def _kill_and_restart(tmp_path, ingest_until_killed, verify) -> None:
    """Ingest until SIGKILL (background rounds every second, so the kill can land in a
    compaction or retention pass too), restart on the same data, verify what was acked."""
    data = tmp_path / "data"
    data.mkdir()
    srv = LiveServer(data, extra_args=["--compact-interval", "1"]).start()
    try:
        acked = ingest_until_killed(srv)
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.kill()
    assert len(acked) >= 150
    srv2 = LiveServer(data).start()
    try:
        verify(srv2, acked)
        assert srv2.log().count("Traceback") == 0, srv2.log()[-3000:]
    finally:
        srv2.stop()


def test_sigkill_during_ingest_loses_nothing(tmp_path):
    namespace = f"Crash/{uuid.uuid4().hex[:8]}"
    _kill_and_restart(tmp_path, lambda srv: _ingest_until_killed(srv, namespace, 150),
                      lambda srv, acked: _verify(srv, namespace, acked))


def _log_ingest_until_killed(srv: LiveServer, group: str, calls_before_kill: int):
    """Two writers, one stream each, batches of 25 events; returns the acknowledged batches."""
    logs = make_client("logs", srv.url)
    logs.create_log_group(logGroupName=group)
    for k in range(2):
        logs.create_log_stream(logGroupName=group, logStreamName=f"w{k}")
    acked: list[tuple[int, int]] = []
    stop = threading.Event()

    def worker(k):
        client = make_client("logs", srv.url)
        i = 0
        while not stop.is_set():
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": f"w{k} call {i:05d} event {j:02d} " + "x" * 200}
                      for j in range(25)]
            try:
                client.put_log_events(logGroupName=group, logStreamName=f"w{k}",
                                      logEvents=events)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return
            acked.append((k, i))
            i += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    while len(acked) < calls_before_kill:
        threads[0].join(0.01)
    srv.proc.send_signal(signal.SIGKILL)
    srv.proc.wait()
    stop.set()
    for t in threads:
        t.join()
    return sorted(acked)


def _verify_logs(srv: LiveServer, group: str, acked) -> None:
    logs = make_client("logs", srv.url)
    stored: dict[str, list[str]] = {}
    for k in range(2):
        msgs = stored[f"w{k}"] = []
        token = None
        while True:
            kw = {"nextToken": token} if token else {}
            page = logs.get_log_events(logGroupName=group, logStreamName=f"w{k}",
                                       startFromHead=True, **kw)
            msgs.extend(e["message"] for e in page["events"])
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    present = {m.split(" event ")[0] for ms in stored.values() for m in ms}
    missing = [(k, i) for k, i in acked if f"w{k} call {i:05d}" not in present]
    assert not missing, f"{len(missing)} acknowledged calls lost, e.g. {missing[:5]}"
    # every acknowledged call is whole (one transaction), in order, once
    for k in range(2):
        calls = [m.split(" event ")[0] for m in stored[f"w{k}"]]
        sizes = Counter(calls)
        assert set(sizes.values()) == {25}, f"w{k}: a torn or doubled call: {sizes}"
        assert calls == sorted(calls), f"w{k}: events out of order"


def test_sigkill_during_log_ingest_loses_nothing(tmp_path):
    group = f"/crash/{uuid.uuid4().hex[:8]}"
    _kill_and_restart(tmp_path, lambda srv: _log_ingest_until_killed(srv, group, 150),
                      lambda srv, acked: _verify_logs(srv, group, acked))


def test_clean_shutdown_and_restart_keeps_everything(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    srv = LiveServer(data).start()
    client = make_client("cloudwatch", srv.url)
    client.put_metric_data(Namespace="Restart", MetricData=[{"MetricName": "M", "Value": 5.0}])
    client.put_dashboard(DashboardName="d1", DashboardBody='{"widgets":[]}')
    assert srv.stop() == 0   # SIGTERM: flush, checkpoint, exit 0
    srv2 = LiveServer(data).start()
    try:
        client = make_client("cloudwatch", srv2.url)
        assert [m["MetricName"] for m in client.list_metrics(Namespace="Restart")["Metrics"]] == ["M"]
        assert client.get_dashboard(DashboardName="d1")["DashboardBody"] == '{"widgets":[]}'
        # new series after restart get fresh ids and do not collide with old ones
        client.put_metric_data(Namespace="Restart", MetricData=[{"MetricName": "N", "Value": 1.0}])
        assert len(client.list_metrics(Namespace="Restart")["Metrics"]) == 2
    finally:
        srv2.stop()
