"""Limits and back-pressure: request body sizes (on the wire and decompressed), the bound on
queued writes, and the query slots and deadline of GetMetricData / GetMetricStatistics.

Each answer is AWS's, in the request's protocol: 413 ``RequestEntityTooLarge`` (CloudWatch,
SNS; ``RequestEntityTooLargeException`` for CloudWatch Logs), ``Throttling`` (CloudWatch, 400),
``ThrottlingException`` (CloudWatch Logs, 400), ``Throttled`` (SNS, 429).

The back-pressure tests run the server in this process (so they can hold its writer or its
query slot on a gate) and wait for the queue to fill by polling its counters: no sleeps, no
timing assertions.
"""
from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import socket
import threading
import time

import botocore.exceptions
import pytest

from conftest import free_port, make_client
from metricstore.app import make_app
from metricstore.config import Config
from metricstore.dispatch import SERVER, body_limits
from metricstore.store.db import (ADMISSION, Admission, QueryTimeout, Store, WriteQueueFull)

MB = 1_048_576
JSON_CT = "application/x-amz-json-1.0"
CW_TARGET = "GraniteServiceVersion20100801."


class InProcessServer:
    """``make_app(config)`` served on a loop of its own thread, so that tests can reach the
    store (hold the writer, fill the query slots) while real clients talk to it."""

    def __init__(self, tmp_path, **limits):
        self.port = free_port()
        # no background writes of its own during a test: maintenance and alarm ticks wait
        self.config = Config(port=self.port, data_dir=str(tmp_path / "data"), ingest_workers=0,
                             enable_reset=True, compact_interval=3600, alarm_interval=3600,
                             **limits)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "InProcessServer":
        from aiohttp import web
        self._thread.start()

        async def up():
            self.app = make_app(self.config)
            self.runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.call(up())
        self.store = self.app[SERVER].store
        return self

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.runner is not None:
            self.call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)


@pytest.fixture
def start_server(tmp_path):
    servers = []

    def start(**limits):
        srv = InProcessServer(tmp_path / f"s{len(servers)}", **limits).start()
        servers.append(srv)
        return srv
    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A server with default limits, for the body size tests."""
    srv = InProcessServer(tmp_path_factory.mktemp("limits")).start()
    yield srv
    srv.stop()


def wait_until(predicate, what: str, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def post(url: str, body: bytes, headers: dict, path: str = "/") -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def big_put_metric_data(n_bytes: int) -> list[dict]:
    """At most 1000 datums whose JSON is over ``n_bytes``."""
    per = n_bytes // 1000 + 1
    return [{"MetricName": f"M{i:04d}" + "x" * 200,
             "Values": [float(v) + 0.123456789 for v in range(min(150, per // 18 + 1))]}
            for i in range(1000)]


def assert_error(exc_info, code: str, status: int):
    err = exc_info.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, status), err
    return err


# -- request bodies ----------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["json", "query", "cbor"])
def test_put_metric_data_over_1_mb_is_413_in_every_protocol(small, model_dirs, monkeypatch,
                                                            protocol):
    monkeypatch.setenv("AWS_DISABLE_REQUEST_COMPRESSION", "true")   # 1 MB as sent
    cw = make_client("cloudwatch", small.url, protocol, model_dirs)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_data(Namespace="Limits/Big", MetricData=big_put_metric_data(3 * MB))
    err = assert_error(e, "RequestEntityTooLarge", 413)
    assert err["Error"]["Message"].startswith("Request size ")
    assert err["Error"]["Message"].endswith(" exceeded 1048576 bytes")
    assert cw.list_metrics(Namespace="Limits/Big")["Metrics"] == []


def test_gzip_put_metric_data_under_1_mb_compressed_is_accepted(small):
    """The 1 MB counts the body as sent: boto3 gzips PutMetricData, and a batch of several
    MB of JSON that compresses under 1 MB goes in."""
    cw = make_client("cloudwatch", small.url)
    data = [dict(d, MetricName=d["MetricName"][:5]) for d in big_put_metric_data(3 * MB)]
    assert len(json.dumps(data)) > 2 * MB
    cw.put_metric_data(Namespace="Limits/Gzip", MetricData=data)
    pages = cw.get_paginator("list_metrics").paginate(Namespace="Limits/Gzip")
    assert sum(len(p["Metrics"]) for p in pages) == 1000


@pytest.mark.parametrize("protocol", ["json", "query", "cbor", "logs"])
def test_gzip_bomb_is_refused_once_its_decompressed_size_passes_the_limit(small, protocol):
    path = "/"
    if protocol == "json":
        head = b'{"Namespace": "Limits/Bomb", "MetricData": [{"MetricName": "'
        headers = {"Content-Type": JSON_CT, "X-Amz-Target": CW_TARGET + "PutMetricData"}
    elif protocol == "query":
        head = b"Action=PutMetricData&Version=2010-08-01&Namespace=Limits%2FBomb&" \
               b"MetricData.member.1.MetricName="
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
    elif protocol == "cbor":
        head = b"\xbf"
        path = "/service/GraniteServiceVersion20100801/operation/PutMetricData"
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}
    else:
        head = b'{"logGroupName": "/bomb", "logStreamName": "s", "logEvents": [{"message": "'
        headers = {"Content-Type": "application/x-amz-json-1.1",
                   "X-Amz-Target": "Logs_20140328.PutLogEvents"}
    # 48 MB once inflated (over the 40 MB bound); about 50 KB as sent
    c = gzip.compress(head + b"a" * (48 * MB), compresslevel=9)
    assert len(c) < MB
    status, h, body = post(small.url, c, dict(headers, **{"Content-Encoding": "gzip"}), path)
    assert status == 413, body
    if protocol == "query":
        assert b"<Code>RequestEntityTooLarge</Code>" in body
        assert b"Decompressed request size exceeded 41943040 bytes" in body
        return
    if protocol == "cbor":
        import cbor2
        message = cbor2.loads(body)["message"]
    else:
        message = json.loads(body)["message"]
    if protocol == "logs":
        assert "x-amzn-query-error" not in h
        assert json.loads(body)["__type"] == "RequestEntityTooLargeException"
        wire, decoded = body_limits("logs", "PutLogEvents")
        assert message == f"Decompressed request size exceeded {decoded} bytes"
    else:
        assert h["x-amzn-query-error"] == "RequestEntityTooLarge;Sender"
        assert message == "Decompressed request size exceeded 41943040 bytes"


def test_other_cloudwatch_operations_are_bounded_by_their_own_limits(small):
    cw = make_client("cloudwatch", small.url)
    queries = [{"Id": f"e{i}", "Expression": "SUM(METRICS())" + " " * 2000,
                "ReturnData": False} for i in range(400)]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.get_metric_data(MetricDataQueries=queries, StartTime=0, EndTime=3600)
    assert assert_error(e, "RequestEntityTooLarge", 413)["Error"]["Message"].endswith(
        " exceeded 614400 bytes")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        cw.put_metric_alarm(AlarmName="big", AlarmDescription="d", MetricName="M",
                            Namespace="N", Statistic="Sum", Period=60, EvaluationPeriods=1,
                            Threshold=1, ComparisonOperator="GreaterThanThreshold",
                            Dimensions=[{"Name": f"D{i}", "Value": "v" * 1024}
                                        for i in range(30)],
                            AlarmActions=["arn:aws:sns:us-east-1:000000000000:" + "t" * 250] * 5,
                            Tags=[{"Key": f"k{i}", "Value": "v" * 256} for i in range(400)])
    assert assert_error(e, "RequestEntityTooLarge", 413)["Error"]["Message"].endswith(
        " exceeded 122880 bytes")


def test_content_length_over_the_limit_is_answered_before_the_body_is_read(small):
    """A client announcing 100 MB gets its 413 without sending a byte of the body."""
    with socket.create_connection(("127.0.0.1", small.port), timeout=60) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: " + JSON_CT.encode() +
                  b"\r\nX-Amz-Target: " + CW_TARGET.encode() + b"PutMetricData\r\n"
                  b"Content-Length: 104857600\r\n\r\n")
        raw = b""
        while b"\r\n\r\n" not in raw:
            chunk = s.recv(65536)
            assert chunk, raw
            raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        length = int(next(ln.split(b":", 1)[1] for ln in head.split(b"\r\n")
                          if ln.lower().startswith(b"content-length:")))
        while len(body) < length:
            chunk = s.recv(65536)
            assert chunk, raw
            body += chunk
    assert head.startswith(b"HTTP/1.1 413 "), head
    assert b"x-amzn-query-error: requestentitytoolarge;sender" in head.lower()
    assert json.loads(body)["message"] == "Request size 104857600 exceeded 1048576 bytes"


def test_chunked_body_is_cut_off_at_the_limit(small):
    def chunks():
        piece = b" " * 65536
        for _ in range(64):         # 4 MB, never announced
            yield piece
    conn = http.client.HTTPConnection(f"127.0.0.1:{small.port}", timeout=60)
    try:
        conn.request("POST", "/", body=chunks(), encode_chunked=True,
                     headers={"Content-Type": JSON_CT,
                              "X-Amz-Target": CW_TARGET + "GetMetricData"})
        r = conn.getresponse()
        status, body = r.status, r.read()
    except (BrokenPipeError, ConnectionResetError):
        pytest.skip("the server closed the connection before the client read the answer")
    finally:
        conn.close()
    assert status == 413, body
    assert json.loads(body)["message"] == "Request size exceeded 614400 bytes"


def test_put_log_events_wire_bound_admits_every_valid_batch_and_refuses_beyond(small):
    logs = make_client("logs", small.url)
    logs.create_log_group(logGroupName="/limits")
    logs.create_log_stream(logGroupName="/limits", logStreamName="s")
    now = int(time.time() * 1000)
    # 1,000,260 counted bytes (under AWS's 1,048,576) but 6 MB of JSON: control characters
    # travel as \u0001 escapes
    events = [{"timestamp": now, "message": "\x01" * 100_000} for _ in range(10)]
    logs.put_log_events(logGroupName="/limits", logStreamName="s", logEvents=events)
    got = logs.get_log_events(logGroupName="/limits", logStreamName="s", startFromHead=True)
    assert [len(e["message"]) for e in got["events"]] == [100_000] * 10
    # over AWS's counted limit: the operation's own error
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/limits", logStreamName="s",
                            logEvents=[{"timestamp": now, "message": "x" * 600_000}] * 2)
    assert_error(e, "InvalidParameterException", 400)
    # over the wire bound: 413 as CloudWatch Logs spells it
    with pytest.raises(botocore.exceptions.ClientError) as e:
        logs.put_log_events(logGroupName="/limits", logStreamName="s",
                            logEvents=[{"timestamp": now, "message": "\x01" * 1_000_000}] * 2)
    err = assert_error(e, "RequestEntityTooLargeException", 413)
    wire, _ = body_limits("logs", "PutLogEvents")
    assert err["Error"]["Message"].endswith(f" exceeded {wire} bytes")


def test_sns_request_over_1_mb_is_413(small):
    sns = make_client("sns", small.url)
    arn = sns.create_topic(Name="limits")["TopicArn"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sns.publish(TopicArn=arn, Message="x" * (MB + 1))
    assert_error(e, "RequestEntityTooLarge", 413)


# -- the write queue -----------------------------------------------------------------------

def test_full_write_queue_throttles_requests_in_every_protocol_and_loses_nothing(
        start_server, model_dirs):
    srv = start_server(max_queued_writes=4)
    cw = {p: make_client("cloudwatch", srv.url, p, model_dirs) for p in ("json", "query", "cbor")}
    logs = make_client("logs", srv.url)
    sns = make_client("sns", srv.url)
    logs.create_log_group(logGroupName="/q")
    logs.create_log_stream(logGroupName="/q", logStreamName="s")

    gate = threading.Event()
    blocker = threading.Thread(target=srv.store.write_sync, args=(lambda w: gate.wait(),))
    blocker.start()
    wait_until(lambda: srv.store.pending_writes == 1, "the writer to hold the gate")

    results: dict[int, object] = {}

    def put(i):
        try:
            results[i] = cw["json"].put_metric_data(
                Namespace="Queue/Ok", MetricData=[{"MetricName": f"M{i}", "Value": i}])
        except Exception as e:   # noqa: BLE001 - reported below
            results[i] = e
    waiting = [threading.Thread(target=put, args=(i,)) for i in range(3)]
    try:
        for t in waiting:
            t.start()
        wait_until(lambda: srv.store.pending_writes == 4, "three writes to queue")

        for protocol, client in cw.items():
            with pytest.raises(botocore.exceptions.ClientError) as e:
                client.put_metric_data(Namespace="Queue/Refused",
                                       MetricData=[{"MetricName": protocol, "Value": 1.0}])
            err = assert_error(e, "Throttling", 400)
            assert err["Error"]["Message"] == "Rate exceeded"
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw["json"].put_dashboard(DashboardName="d", DashboardBody='{"widgets": []}')
        assert_error(e, "Throttling", 400)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            logs.put_log_events(logGroupName="/q", logStreamName="s",
                                logEvents=[{"timestamp": int(time.time() * 1000),
                                            "message": "refused"}])
        assert_error(e, "ThrottlingException", 400)
        with pytest.raises(botocore.exceptions.ClientError) as e:
            sns.create_topic(Name="refused")
        assert_error(e, "Throttled", 429)
        # reads are not writes: they still answer
        assert cw["json"].list_metrics(Namespace="Queue/Ok")["Metrics"] == []
        assert srv.store.pending_writes == 4
    finally:
        gate.set()
        blocker.join(60)
        for t in waiting:
            t.join(60)
    assert [type(results[i]).__name__ for i in range(3)] == ["dict"] * 3, results
    assert sorted(m["MetricName"] for m in cw["json"].list_metrics(
        Namespace="Queue/Ok")["Metrics"]) == ["M0", "M1", "M2"]
    assert cw["json"].list_metrics(Namespace="Queue/Refused")["Metrics"] == []
    assert logs.get_log_events(logGroupName="/q", logStreamName="s")["events"] == []
    assert srv.store.pending_writes == 0
    # and the queue takes writes again
    cw["json"].put_metric_data(Namespace="Queue/Ok", MetricData=[{"MetricName": "M3",
                                                                   "Value": 3.0}])
    assert len(cw["json"].list_metrics(Namespace="Queue/Ok")["Metrics"]) == 4


def test_write_queue_bound_by_bytes():
    """Store level: a request's writes weigh its body; background writes are never refused."""
    store = Store(":memory:", max_queued_write_bytes=1000)
    gate = threading.Event()
    blocker = threading.Thread(target=store.write_sync, args=(lambda w: gate.wait(),))
    blocker.start()

    async def scenario():
        wait_until(lambda: store.pending_writes == 1, "the writer to hold the gate")
        ADMISSION.set(Admission(600))
        first = asyncio.ensure_future(store.write(lambda w: "first"))
        await asyncio.sleep(0)
        assert store.pending_write_bytes == 600
        with pytest.raises(WriteQueueFull):
            await store.write(lambda w: "second")
        ADMISSION.set(Admission(300))
        third = asyncio.ensure_future(store.write(lambda w: "third"))   # 900 <= 1000
        await asyncio.sleep(0)
        ADMISSION.set(None)                                             # background work
        fourth = asyncio.ensure_future(store.write(lambda w: "fourth"))
        await asyncio.sleep(0)
        ended = Admission(10_000)
        ended.active = False                                            # its request ended
        ADMISSION.set(ended)
        fifth = asyncio.ensure_future(store.write(lambda w: "fifth"))
        await asyncio.sleep(0)
        gate.set()
        return await asyncio.gather(first, third, fourth, fifth)
    try:
        assert asyncio.run(scenario()) == ["first", "third", "fourth", "fifth"]
    finally:
        gate.set()
        blocker.join(60)
        store.close()
    assert (store.pending_writes, store.pending_write_bytes) == (0, 0)


# -- metric queries ------------------------------------------------------------------------

def _stats_request(now):
    return dict(Namespace="Q", MetricName="M", StartTime=now - 600, EndTime=now + 60,
                Period=60, Statistics=["Sum"])


def _hold_the_query_slot(srv):
    gate = threading.Event()
    holder = asyncio.run_coroutine_threadsafe(srv.store.query(lambda cur: gate.wait(120)),
                                              srv.loop)
    wait_until(lambda: srv.store._query_slots is not None and srv.store._query_slots.locked(),
               "the slot to be taken")
    return gate, holder


def _in_thread(fn, results, key):
    def run():
        try:
            results[key] = fn()
        except Exception as e:  # noqa: BLE001 - checked by the test
            results[key] = e
    t = threading.Thread(target=run)
    t.start()
    return t


def test_query_slots_throttle_beyond_the_wait_line(start_server, model_dirs):
    srv = start_server(max_concurrent_queries=1, max_queued_queries=1, query_timeout=120)
    cw = {p: make_client("cloudwatch", srv.url, p, model_dirs) for p in ("json", "query", "cbor")}
    cw["json"].put_metric_data(Namespace="Q", MetricData=[{"MetricName": "M", "Value": 1.0}])
    now = time.time()
    gate, holder = _hold_the_query_slot(srv)
    results: dict = {}
    try:
        t = _in_thread(lambda: cw["json"].get_metric_statistics(**_stats_request(now)),
                       results, "queued")
        wait_until(lambda: srv.store.queries_waiting == 1, "a query to wait for the slot")
        for protocol, client in cw.items():
            with pytest.raises(botocore.exceptions.ClientError) as e:
                client.get_metric_data(MetricDataQueries=[{"Id": "m", "MetricStat": {
                    "Metric": {"Namespace": "Q", "MetricName": "M"}, "Period": 60,
                    "Stat": "Sum"}}], StartTime=now - 600, EndTime=now + 60)
            assert assert_error(e, "Throttling", 400)["Error"]["Message"] == "Rate exceeded"
            with pytest.raises(botocore.exceptions.ClientError) as e:
                client.get_metric_statistics(**_stats_request(now))
            assert_error(e, "Throttling", 400)
        assert "queued" not in results
    finally:
        gate.set()
        t.join(120)
    assert holder.result(60) is True
    # the waiting query ran once the slot was free
    assert [p["Sum"] for p in results["queued"]["Datapoints"]] == [1.0]


def test_query_deadline_covers_the_wait_for_a_slot(start_server):
    srv = start_server(max_concurrent_queries=1, max_queued_queries=4, query_timeout=1)
    cw = make_client("cloudwatch", srv.url)
    cw.put_metric_data(Namespace="Q", MetricData=[{"MetricName": "M", "Value": 1.0}])
    now = time.time()
    gate, holder = _hold_the_query_slot(srv)
    try:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            cw.get_metric_statistics(**_stats_request(now))
    finally:
        gate.set()
    err = assert_error(e, "LimitExceeded", 400)
    assert err["Error"]["Message"].startswith("The query did not finish within 1 seconds")
    with pytest.raises(QueryTimeout):       # the holder ran past its own deadline too
        holder.result(60)
    # its thread ended when the gate opened, freeing the slot
    assert [p["Sum"] for p in cw.get_metric_statistics(**_stats_request(now))["Datapoints"]] \
        == [1.0]


def test_deadline_interrupts_a_running_duckdb_query():
    store = Store(":memory:", max_concurrent_queries=1, query_timeout=1)

    async def scenario():
        with pytest.raises(QueryTimeout):
            await store.query(lambda cur: cur.execute(
                "SELECT count(*) FROM range(1000000000000) t(x) WHERE x % 7 = 3").fetchall())
        # the interrupted statement released its slot: the next query runs
        return await store.query(lambda cur: cur.execute("SELECT 42").fetchall())
    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 120)) == [(42,)]
    finally:
        store.close()


def test_query_refused_between_statements_once_cancelled():
    """An interrupt between two statements is not lost: the next statement is refused."""
    store = Store(":memory:", max_concurrent_queries=1, query_timeout=0.5)
    second_ran = threading.Event()

    def two_steps(cur):
        cur.execute("SELECT 1").fetchall()
        while not store._stop_sleeping.wait(0.01):
            pass
        cur.execute("SELECT 2").fetchall()
        second_ran.set()
    store._stop_sleeping = threading.Event()

    async def scenario():
        with pytest.raises(QueryTimeout):
            await store.query(two_steps)
        store._stop_sleeping.set()
        return await store.query(lambda cur: cur.execute("SELECT 7").fetchall())
    try:
        assert asyncio.run(asyncio.wait_for(scenario(), 120)) == [(7,)]
    finally:
        store._stop_sleeping.set()
        store.close()
    assert not second_ran.is_set()


def test_limits_flags_and_environment(monkeypatch):
    from metricstore.config import from_args
    monkeypatch.setenv("METRICSTORE_MAX_QUEUED_WRITES", "7")
    monkeypatch.setenv("METRICSTORE_QUERY_TIMEOUT", "2.5")
    _, cfg = from_args(["serve", "--max-queued-write-bytes", "1000",
                        "--max-concurrent-queries", "3", "--max-queued-queries", "9"])
    assert (cfg.max_queued_writes, cfg.max_queued_write_bytes, cfg.max_concurrent_queries,
            cfg.max_queued_queries, cfg.query_timeout) == (7, 1000, 3, 9, 2.5)


def test_memory_limit_reaches_duckdb(tmp_path):
    """--memory-limit bounds DuckDB's buffer pool; a malformed size is a ValueError (the CLI
    refuses it before start-up, see metricstore/config.py)."""
    store = Store(str(tmp_path / "m.db"), memory_limit="300MB")
    try:
        limit = store.read_sync(lambda cur: cur.execute(
            "SELECT current_setting('memory_limit')").fetchone()[0])
        assert limit.endswith("MiB") and 250 < float(limit.split()[0]) < 300, limit
    finally:
        store.close()
    with pytest.raises(ValueError):
        Store(str(tmp_path / "n.db"), memory_limit="lots")
    from metricstore.config import from_args
    assert from_args(["serve", "--memory-limit", "2GiB"])[1].memory_limit == "2GiB"
    with pytest.raises(SystemExit):
        from_args(["serve", "--memory-limit", "lots"])
