"""Replay of the fuzz corpora in ``tests/corpus/`` over every grammar and codec.

``tests/corpus/<grammar>/<name>.txt`` holds one input per file, exact UTF-8 bytes (hostile and
edge inputs: quotes, NUL, deep nesting, huge numbers, catastrophic regexes, very long
inputs …; ``ok-*`` files are inputs that must parse).  Codec corpora hold request bodies
(``<Operation>.<name>.txt``; CBOR bodies as hex in ``.hex`` files).  Add a file to add a case.

In-process, with a per-input deadline (a worker thread, so a hang in C code — a regex
engine backtracking — is caught as well as one in Python):

* grammars (Logs Insights, filter patterns, metric math, composite AlarmRule): each input
  parses (and compiles to SQL, for Insights and filter patterns) or raises a positioned
  ``QueryError`` (line and column ≥ 1); never another exception;
* codecs (CloudWatch json/query/cbor, Logs JSON 1.1, SNS query): decoding either yields plain
  parameters or a 4xx ``ServiceError`` whose encoded error botocore can read.

Over HTTP (the session server): every corpus input goes through its API (StartQuery and
GetQueryResults, FilterLogEvents, TestMetricFilter, GetMetricData, PutCompositeAlarm, raw
bodies to the endpoint) and is answered with a success or a 4xx, never a 5xx; an accepted
Insights query completes.

Hypothesis adds what tests/codecs/test_fuzz.py lacks: random and mutated bodies for the Logs
JSON 1.1 and SNS query codecs (the grammars have their own hypothesis tests beside their
table tests in tests/query/ and tests/alarms/test_rule.py).
"""
from __future__ import annotations

import http.client
import json
import random
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import quote

import botocore.session
import duckdb
import pytest
from botocore.awsrequest import HeadersDict
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from alarms.rule import parse_rule, referenced_alarms, render as render_rule
from conftest import LiveServer, make_client
from metricstore.codecs import RequestInfo, pick_codec
from metricstore.codecs._wire import resolve_error
from metricstore.errors import ServiceError
from query import filter_pattern, insights_parser, metric_math
from query.errors import QueryError
from query.insights_compile import Source, compile_query

CORPUS = Path(__file__).resolve().parent / "corpus"
DEADLINE = 5.0          # seconds per input: generous; a hang or a backtracking regex blows it
GRAMMARS = ["insights", "filter_pattern", "metric_math", "alarm_rule"]
CODECS = {"codec_cloudwatch_json": "json", "codec_cloudwatch_query": "query",
          "codec_cloudwatch_cbor": "cbor", "codec_logs_json": "logs", "codec_sns_query": "sns"}


def corpus(kind: str) -> list[tuple[str, bytes]]:
    files = sorted(p for p in (CORPUS / kind).iterdir() if p.suffix in (".txt", ".hex"))
    assert files, kind
    return [(p.stem, bytes.fromhex(p.read_text()) if p.suffix == ".hex" else p.read_bytes())
            for p in files]


def within_deadline(fn, *args):
    """``fn(*args)`` on a worker thread: ('ok', result) or ('raised', exception)."""
    box: dict = {}

    def run():
        try:
            box["ok"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 - judged by the caller
            box["exc"] = e
    t = threading.Thread(target=run, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(DEADLINE)
    assert not t.is_alive(), f"still running after {DEADLINE} s (hang or runaway backtracking)"
    assert time.monotonic() - t0 < DEADLINE + 1
    if "exc" in box:
        return "raised", box["exc"]
    return "ok", box.get("ok")


# -- grammars, in process ------------------------------------------------------------------------

SOURCE = Source("SELECT * FROM events")
MESSAGES = ['{"a": 1, "level": "ERROR", "latency": 1e308, "items": [{"id": 1}], "s": "x y"}',
            "ERROR x=1 user=u 10.0.0.1 [a b] \"q r\"", "'; DROP TABLE events; --", "",
            "plain ü 😀", "9" * 400, '{"a": {"b": [1, 2, {"c": null}]}}', "a" * 300]
_DB = duckdb.connect()
_DB.execute("CREATE TABLE events (ts BIGINT, ingest BIGINT, seq BIGINT, message VARCHAR, "
            "log_stream VARCHAR, log_group VARCHAR, ptr VARCHAR)")
_DB.executemany("INSERT INTO events VALUES (?, ?, ?, ?, 's', 'g', ?)",
                [(1_700_000_000_000 + i * 1000, 1_700_000_000_000 + i * 1000, i, m, f"p{i}")
                 for i, m in enumerate(MESSAGES)])


def run_insights(text: str):
    """Parse, compile and run in DuckDB over a few events."""
    c = compile_query(insights_parser.parse(text), SOURCE, now_ms=1_700_000_000_000)
    cur = _DB.cursor()
    cur.execute(c.sql, c.params).fetchall()
    return cur.execute(c.count_sql, c.count_params).fetchall()


def run_filter_pattern(text: str):
    """Parse, and run as TestMetricFilter does (predicate and extracted values, in DuckDB)."""
    return filter_pattern.test_metric_filter(filter_pattern.parse(text), MESSAGES)


def run_metric_math(text: str):
    expr = metric_math.parse(text)
    return metric_math.referenced_ids(expr), metric_math.render(expr)


def run_alarm_rule(text: str):
    rule = parse_rule(text)
    return referenced_alarms(rule), render_rule(rule)


def _params(kinds):
    return [pytest.param(k, name, data, id=f"{k}/{name}")
            for k in kinds for name, data in corpus(k)]


RUNNERS = {"insights": run_insights, "filter_pattern": run_filter_pattern,
           "metric_math": run_metric_math, "alarm_rule": run_alarm_rule}


@pytest.mark.parametrize("grammar,name,data", _params(GRAMMARS))
def test_grammar_corpus(grammar, name, data):
    text = data.decode("utf-8")
    outcome, value = within_deadline(RUNNERS[grammar], text)
    if outcome == "raised":
        assert isinstance(value, QueryError), "".join(
            traceback.format_exception(type(value), value, value.__traceback__))
        assert value.span is not None, f"unpositioned {type(value).__name__}: {value.message}"
        value.with_text(text)
        assert value.line >= 1 and value.column >= 1, value.render()
        assert value.message
        value.render()                       # the caret excerpt renders
    assert not name.startswith("ok-") or outcome == "ok", value.render()


# -- codecs, in process --------------------------------------------------------------------------

BOTOCORE_PARSER = {"json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor",
                   "logs": "json", "sns": "query"}
PARSERS = {k: create_parser(v) for k, v in BOTOCORE_PARSER.items()}
CODEC_NAME = {"json": "json", "query": "query", "cbor": "cbor", "logs": "json", "sns": "query"}


def codec_request(protocol: str, op: str, body: bytes) -> RequestInfo:
    if protocol == "json":
        h = {"X-Amz-Target": f"GraniteServiceVersion20100801.{op}",
             "Content-Type": "application/x-amz-json-1.0", "x-amzn-query-mode": "true"}
        path = "/"
    elif protocol == "logs":
        h = {"X-Amz-Target": f"Logs_20140328.{op}", "Content-Type": "application/x-amz-json-1.1"}
        path = "/"
    elif protocol == "cbor":
        h = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
             "x-amzn-query-mode": "true"}
        path = f"/service/GraniteServiceVersion20100801/operation/{op}"
    else:
        h = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        path = "/"
    return RequestInfo("POST", path, CIMultiDict(h), body)


def check_codec(protocol: str, req: RequestInfo) -> str:
    codec = pick_codec(req)
    assert codec is not None and codec.name == CODEC_NAME[protocol]
    call = None
    try:
        call = codec.decode(req)
        params = codec.read_params(call, req)
    except ServiceError as e:
        spec = call.service if call is not None else None
        code, qcode, status, _ = resolve_error(spec, e)
        assert 400 <= status < 500, (e.code, status, e.message)
        reply = codec.encode_error(spec, call, e)
        assert 400 <= reply.status < 500
        parsed = PARSERS[protocol].parse(
            {"status_code": reply.status, "headers": HeadersDict(reply.headers),
             "body": reply.body}, None)
        # Logs is not query-compatible: its JSON errors carry the shape name
        wire = code if protocol == "logs" else qcode
        assert parsed["Error"]["Code"] == wire, (parsed, reply.body[:300])
        return "refused"
    assert isinstance(params, dict)
    json.dumps(params, default=lambda v: repr(v))     # plain data
    return "decoded"


@pytest.mark.parametrize("kind,name,data", _params(CODECS))
def test_codec_corpus(kind, name, data):
    protocol = CODECS[kind]
    op = name.split(".")[0]
    outcome, value = within_deadline(check_codec, protocol, codec_request(protocol, op, data))
    if outcome == "raised":
        raise value
    assert not name.endswith(".ok") or value == "decoded", value


# -- hypothesis: the Logs JSON 1.1 and SNS query codecs -----------------------------------------

def fuzz_settings(n: int):
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


_MODELS = {"logs": botocore.session.get_session().get_service_model("logs"),
           "sns": botocore.session.get_session().get_service_model("sns")}
LOGS_OPS = sorted(_MODELS["logs"].operation_names)
SNS_OPS = sorted(_MODELS["sns"].operation_names)
SEEDS = {"logs": [(n.split(".")[0], d) for n, d in corpus("codec_logs_json")],
         "sns": [(n.split(".")[0], d) for n, d in corpus("codec_sns_query")]}
ODD = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                st.sampled_from([2 ** 63, -(2 ** 63) - 1, 10 ** 30, "", "\x00", "'; --", "$1",
                                 "9" * 400, "1e999", "\ud800"]),
                st.text(max_size=20))


def _members(model, op: str) -> list[str]:
    shape = model.operation_model(op).input_shape
    return (list(shape.members) if shape is not None else []) or ["x"]


def mutate(body: bytes, rnd: random.Random) -> bytes:
    b = bytearray(body)
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.randrange(4)
        if not b:
            b += rnd.randbytes(3)
        elif kind == 0:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif kind == 1:
            del b[rnd.randrange(len(b)):]
        elif kind == 2:
            i = rnd.randrange(len(b) + 1)
            b[i:i] = rnd.choice([b"\x00", b"%", b"%zz", b"\xff", b'"', b"{", b"]", b"&", b"=",
                                 b".member.0", b".entry.1.key", rnd.randbytes(4)])
        else:
            i = rnd.randrange(len(b))
            j = min(len(b), i + rnd.randint(1, 16))
            b[j:j] = b[i:j]
    return bytes(b)


@fuzz_settings(120)
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_logs_json_codec_fuzz(data, seed):
    if data.draw(st.booleans()):
        op, body = data.draw(st.sampled_from(SEEDS["logs"]))
        body = mutate(body, random.Random(seed))
    else:
        op = data.draw(st.sampled_from(LOGS_OPS))
        keys = st.one_of(st.sampled_from(_members(_MODELS["logs"], op)), st.text(max_size=8))
        tree = data.draw(st.dictionaries(keys, st.recursive(
            ODD, lambda c: st.one_of(st.lists(c, max_size=3),
                                     st.dictionaries(keys, c, max_size=3)), max_leaves=10),
            max_size=6))
        body = json.dumps(tree, default=repr).encode("utf-8", "surrogatepass")
    check_codec("logs", codec_request("logs", op, body))


@fuzz_settings(120)
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_sns_query_codec_fuzz(data, seed):
    if data.draw(st.booleans()):
        op, body = data.draw(st.sampled_from(SEEDS["sns"]))
        body = mutate(body, random.Random(seed))
    else:
        op = data.draw(st.sampled_from(SNS_OPS))
        part = st.one_of(st.sampled_from(_members(_MODELS["sns"], op)),
                         st.sampled_from(["member", "entry", "key", "value", "0", "1", "-1",
                                          "99999999999999999999", ""]))
        key = st.lists(part, min_size=1, max_size=5).map(".".join)
        pairs = data.draw(st.lists(st.tuples(key, ODD.map(str)), max_size=8))
        body = "&".join(f"{quote(k, safe='.')}={quote(v, safe='', errors='surrogatepass')}"
                        for k, v in [("Action", op), ("Version", "2010-03-31"), *pairs]).encode()
    check_codec("sns", codec_request("sns", op, body))


# -- over HTTP ------------------------------------------------------------------------------------

GROUP = "/fuzz/corpus"
NOW = int(time.time())


@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of this module's own: the known-bug replays leave tracebacks in its log,
    which the shared session server's teardown would (rightly) refuse."""
    srv = LiveServer(tmp_path_factory.mktemp("fuzzdata")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def live(own_server):
    server = own_server
    logs = make_client("logs", server.url, validate=False)
    cw = make_client("cloudwatch", server.url, validate=False)
    try:
        logs.create_log_group(logGroupName=GROUP)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceAlreadyExistsException"
    else:
        logs.create_log_stream(logGroupName=GROUP, logStreamName="s")
        logs.put_log_events(logGroupName=GROUP, logStreamName="s", logEvents=[
            {"timestamp": NOW * 1000 + i, "message": m} for i, m in enumerate(
                ['{"a": 1, "level": "ERROR", "items": [{"id": 1}]}', "ERROR x=1 user=u",
                 "'; DROP TABLE log_events; --", "plain ü 😀", "a" * 300])])
    return {"logs": logs, "cw": cw}


def _answer(fn, **kw):
    """The response, or None for an AWS 4xx; a 5xx (or an unreadable answer) fails."""
    try:
        return fn(**kw)
    except ClientError as e:
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        assert 400 <= status < 500, (status, e.response["Error"])
        return None


def http_insights(c, name, text):
    r = _answer(c["logs"].start_query, logGroupName=GROUP, startTime=NOW - 3600,
                endTime=NOW + 3600, queryString=text)
    if r is None:
        return
    for _ in range(1000):
        res = _answer(c["logs"].get_query_results, queryId=r["queryId"])
        assert res is not None
        if res["status"] not in ("Scheduled", "Running"):
            assert res["status"] == "Complete", (text[:200], res["status"])
            return
        time.sleep(0.02)
    raise AssertionError("query did not finish")


def http_filter_pattern(c, name, text):
    _answer(c["logs"].filter_log_events, logGroupName=GROUP, filterPattern=text, limit=10)
    _answer(c["logs"].test_metric_filter, filterPattern=text,
            logEventMessages=['{"a": 1}', "ERROR x", "'; DROP"])


def http_metric_math(c, name, text):
    stat = {"Metric": {"Namespace": "Fuzz", "MetricName": "m"}, "Period": 60, "Stat": "Sum"}
    _answer(c["cw"].get_metric_data, StartTime=NOW - 3600, EndTime=NOW, MetricDataQueries=[
        {"Id": "m1", "MetricStat": stat, "ReturnData": False},
        {"Id": "e1", "Expression": text}])


def http_alarm_rule(c, name, text):
    _answer(c["cw"].put_composite_alarm, AlarmName=f"fuzz-{name}", AlarmRule=text)


HTTP = {"insights": http_insights, "filter_pattern": http_filter_pattern,
        "metric_math": http_metric_math, "alarm_rule": http_alarm_rule}


@pytest.mark.parametrize("grammar", GRAMMARS)
def test_grammar_corpus_over_http(live, grammar):
    for name, data in corpus(grammar):
        HTTP[grammar](live, name, data.decode("utf-8"))


@pytest.mark.parametrize("kind", list(CODECS))
def test_codec_corpus_over_http(own_server, kind):
    post_corpus(own_server, kind, corpus(kind))


def post_corpus(server, kind: str, items) -> None:
    protocol = CODECS[kind]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        for name, data in items:
            op = name.split(".")[0]
            req = codec_request(protocol, op, data)
            headers = dict(req.headers)
            if protocol == "sns":   # the credential scope names the service, as SigV4 does
                headers["Authorization"] = ("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/"
                                            "us-east-1/sns/aws4_request, SignedHeaders=host, "
                                            "Signature=0")
            conn.request("POST", req.path, body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status < 500, (name, resp.status, body[:300])
            if name.endswith(".ok"):
                assert resp.status in (200, 400, 404), (name, resp.status, body[:300])
    finally:
        conn.close()
