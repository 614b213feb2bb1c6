"""200 means committed: SIGKILL during ingest loses no acknowledged datapoint."""
from __future__ import annotations

import signal
import threading
import uuid

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


def test_sigkill_during_ingest_loses_nothing(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    namespace = f"Crash/{uuid.uuid4().hex[:8]}"
    # compaction every second, so a kill can land during a compaction as well
    srv = LiveServer(data, extra_args=["--compact-interval", "1"]).start()
    try:
        acked = _ingest_until_killed(srv, namespace, 150)
    finally:
        if srv.proc and srv.proc.poll() is None:
            srv.kill()
    assert len(acked) >= 150
    srv2 = LiveServer(data).start()
    try:
        _verify(srv2, namespace, acked)
    finally:
        srv2.stop()


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
