"""Hostile bodies: every codec answers a 4xx ServiceError or succeeds, never anything else.

In-process (hypothesis, derandomized): mutated bodies of real requests (bit flips,
truncation, splices), random bytes, random JSON/CBOR structures, random form strings with
``.member.N`` keys, deep nesting, huge numbers, wrong types, NaN/Infinity, for random
CloudWatch operations.  Whatever ``decode`` + ``read_params`` raise must be a ServiceError
whose resolved status is 4xx, and its ``encode_error`` reply must be readable by botocore's
parser for the protocol (Code intact).  Params that decode are plain data.

Live: a few hundred random bodies per protocol over HTTP to the session server (seeded, so
stable); none may be answered with a 5xx.  These also reach the operations, with well-formed
requests in which one value was replaced by something odd.
"""
from __future__ import annotations

import http.client
import json
import math
import random
import string
import time
from functools import lru_cache
from urllib.parse import quote

import botocore.session
import cbor2
import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from hypothesis import HealthCheck, given, settings, strategies as st
from multidict import CIMultiDict

from metricstore import services
from metricstore.codecs import RequestInfo, pick_codec
from metricstore.codecs._wire import resolve_error
from metricstore.errors import ServiceError

SPEC = services.service("cloudwatch")
MODEL = botocore.session.get_session().get_service_model("cloudwatch")
OPS = sorted(MODEL.operation_names)
HOT_OPS = ["PutMetricData", "GetMetricData", "GetMetricStatistics", "PutMetricAlarm",
           "DescribeAlarms", "ListMetrics", "PutDashboard", "TagResource", "SetAlarmState",
           "DeleteDashboards", "PutCompositeAlarm", "ListTagsForResource", "GetDashboard",
           "ListDashboards", "UntagResource"]
PROTOCOLS = ["json", "query", "cbor"]
BOTOCORE = {"json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor"}
PARSERS = {p: create_parser(b) for p, b in BOTOCORE.items()}


def fuzz_settings(n: int):
    return settings(max_examples=n, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# -- building requests ---------------------------------------------------------------------

def request(protocol: str, op: str, body: bytes) -> RequestInfo:
    if protocol == "json":
        headers = {"X-Amz-Target": f"GraniteServiceVersion20100801.{op}",
                   "Content-Type": "application/x-amz-json-1.0", "x-amzn-query-mode": "true"}
        path = "/"
    elif protocol == "cbor":
        headers = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                   "x-amzn-query-mode": "true"}
        path = f"/service/GraniteServiceVersion20100801/operation/{op}"
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        path = "/"
    return RequestInfo("POST", path, CIMultiDict(headers), body)


def form(pairs) -> bytes:
    return "&".join(f"{quote(str(k), safe='.')}={quote(str(v), safe='')}"
                    for k, v in pairs).encode()


def flatten(value, prefix="") -> list[tuple[str, str]]:
    """A JSON-ish tree as awsQuery pairs (lists as .member.N)."""
    out = []
    if isinstance(value, dict):
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(value, list):
        if not value:
            out.append((prefix, ""))
        for i, v in enumerate(value, 1):
            out += flatten(v, f"{prefix}.member.{i}")
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif value is None:
        out.append((prefix, ""))
    else:
        out.append((prefix, value if isinstance(value, str) else repr(value)))
    return out


def encode_body(protocol: str, op: str, value) -> bytes:
    if protocol == "json":
        return json.dumps(value, allow_nan=True, default=repr).encode()
    if protocol == "cbor":
        return cbor2.dumps(value, default=lambda enc, v: enc.encode(repr(v)))
    head = [("Action", op), ("Version", "2010-08-01")]
    return form(head + flatten(value if isinstance(value, dict) else {"Value": value}))


# -- what must hold ------------------------------------------------------------------------

def check(req: RequestInfo, protocol: str) -> None:
    codec = pick_codec(req)
    assert codec is not None and codec.name == protocol
    call = None
    try:
        call = codec.decode(req)
        params = codec.read_params(call, req)
    except ServiceError as e:
        spec = call.service if call is not None else None
        _, qcode, status, _ = resolve_error(spec, e)
        assert 400 <= status < 500, (e.code, status, e.message)
        reply = codec.encode_error(spec, call, e)
        assert 400 <= reply.status < 500
        # the client can read the answer (e.g. no characters XML cannot carry)
        parsed = PARSERS[protocol].parse(
            {"status_code": reply.status, "headers": HeadersDict(reply.headers),
             "body": reply.body}, None)
        assert parsed["Error"]["Code"] == qcode, (parsed, reply.body[:500])
        return
    assert isinstance(params, dict)
    _plain(params, call.service.operation(call.operation).input_shape)


def _plain(value, shape, depth=0):
    """Decoded params are plain data of the shape's types that an operation (and DuckDB)
    can take."""
    assert depth < 64
    t = shape.type_name
    if t == "structure":
        assert isinstance(value, dict)
        for k, v in value.items():
            _plain(v, shape.members[k], depth + 1)
    elif t == "list":
        assert isinstance(value, list)
        for v in value:
            _plain(v, shape.member, depth + 1)
    elif t == "map":
        assert isinstance(value, dict)
        for k, v in value.items():
            assert isinstance(k, str)
            k.encode("utf-8")
            if v is not None:
                _plain(v, shape.value, depth + 1)
    elif t == "string":
        assert type(value) is str
        value.encode("utf-8")              # no lone surrogates reach the operations
    elif t in ("double", "float", "timestamp"):
        assert type(value) in (int, float), (t, type(value))
        float(value)                       # an operation can make a float of it
    elif t in ("integer", "long", "boolean", "blob"):
        assert type(value) is {"integer": int, "long": int, "boolean": bool,
                               "blob": bytes}[t], (t, type(value))


# -- strategies ------------------------------------------------------------------------------

@lru_cache(maxsize=None)
def member_names(op: str) -> list[str]:
    names = set()

    def walk(shape, depth=0):
        if shape is None or depth > 4:
            return
        if shape.type_name == "structure":
            for n, m in shape.members.items():
                names.add(n)
                walk(m, depth + 1)
        elif shape.type_name == "list":
            walk(shape.member, depth + 1)
        elif shape.type_name == "map":
            walk(shape.value, depth + 1)
    walk(MODEL.operation_model(op).input_shape)
    return sorted(names) or ["X"]


WEIRD_FLOATS = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 2.0 ** 360,
                                -(2.0 ** 361)])
HUGE_INTS = st.sampled_from([2 ** 63, -(2 ** 63) - 1, 2 ** 64, 10 ** 30, 10 ** 400, -(10 ** 400)])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
WEIRD_TEXT = st.sampled_from(["", " ", ":", "AWS/EC2", "NaN", "Infinity", "-Infinity", "1e999",
                              "2026-11-26T12:00:00Z", "2026-13-45T99:99:99Z", "T" * 300,
                              "\x00", "\x01ctl", "<&>\"'", "%", "+", "member", "0", "-1",
                              "1" * 400, "true", "FALSE", "null", "{}", "[]", "🚀" * 3])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), HUGE_INTS, st.floats(),
                    WEIRD_FLOATS, TEXT, WEIRD_TEXT)


def _containers(children, keys):
    return st.one_of(st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=5))


@lru_cache(maxsize=None)
def _keys(op: str):
    return st.one_of(st.sampled_from(member_names(op)), TEXT)


@lru_cache(maxsize=None)
def _tree(protocol: str, op: str):
    """Random trees whose keys are mostly the operation's member names."""
    keys = _keys(op)
    scalar = SCALARS
    if protocol == "cbor":
        scalar = st.one_of(
            SCALARS, st.binary(max_size=8), st.just(cbor2.undefined),
            st.builds(lambda v: cbor2.CBORTag(1, v),
                      st.one_of(st.integers(), st.floats(), HUGE_INTS, TEXT)),
            st.builds(cbor2.CBORTag, st.sampled_from([0, 2, 3, 4, 5, 24, 32, 55799, 12345]),
                      st.one_of(st.integers(), TEXT, st.binary(max_size=8))))
    values = st.recursive(scalar, lambda c: _containers(c, keys), max_leaves=15)
    return st.one_of(st.dictionaries(keys, values, max_size=8), values)


ANY_OP = st.one_of(st.sampled_from(HOT_OPS), st.sampled_from(OPS))


def mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        kind = rnd.randrange(5)
        if not b:
            b += bytes([rnd.randrange(256)])
        elif kind == 0:                                    # bit flip
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
        elif kind == 1:                                    # truncate
            del b[rnd.randrange(len(b)):]
        elif kind == 2:                                    # random bytes in
            i = rnd.randrange(len(b) + 1)
            b[i:i] = rnd.randbytes(rnd.randint(1, 8))
        elif kind == 3:                                    # duplicate a slice
            i = rnd.randrange(len(b))
            j = min(len(b), i + rnd.randint(1, 32))
            b[j:j] = b[i:j]
        else:                                              # an interesting byte
            b[rnd.randrange(len(b))] = rnd.choice(b'\x00\xff\x7f\x80\x9f\xbf\xfb\xf9\xc1"{}[]&=.%')
    return bytes(b)


_T = int(time.time()) // 60 * 60 - 600          # a valid PutMetricData timestamp
SEED_TREES = {
    "PutMetricData": {"Namespace": "Fuzz", "MetricData": [
        {"MetricName": "M", "Dimensions": [{"Name": "H", "Value": "a"}], "Timestamp": _T,
         "Value": 1.5, "Unit": "Count"},
        {"MetricName": "M", "Values": [1.0, 2.0], "Counts": [1.0, 1.0]},
        {"MetricName": "S", "StatisticValues": {"SampleCount": 2.0, "Sum": 3.0,
                                                "Minimum": 1.0, "Maximum": 2.0}}]},
    "GetMetricData": {"MetricDataQueries": [
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "Fuzz", "MetricName": "M",
                                               "Dimensions": [{"Name": "H", "Value": "a"}]},
                                    "Period": 60, "Stat": "Sum"}},
        {"Id": "e1", "Expression": "m1 * 2"}], "StartTime": _T - 3600, "EndTime": _T},
    "GetMetricStatistics": {"Namespace": "Fuzz", "MetricName": "M", "StartTime": _T - 3600,
                            "EndTime": _T, "Period": 60, "Statistics": ["Sum", "Average"]},
    "PutMetricAlarm": {"AlarmName": "a", "EvaluationPeriods": 1, "Threshold": 1.0,
                       "ComparisonOperator": "GreaterThanThreshold",
                       "Metrics": [{"Id": "m1", "MetricStat": {
                           "Metric": {"Namespace": "Fuzz", "MetricName": "M"},
                           "Period": 60, "Stat": "Sum"}}]},
    "ListMetrics": {"Namespace": "Fuzz", "Dimensions": [{"Name": "H"}], "NextToken": "x"},
    "PutDashboard": {"DashboardName": "fuzz", "DashboardBody": '{"widgets":[]}'},
    "ListDashboards": {"DashboardNamePrefix": "fuzz"},
    "TagResource": {"ResourceARN": "arn:aws:cloudwatch::000000000000:dashboard/fuzz",
                    "Tags": [{"Key": "k", "Value": "v"}]},
}


def _cbor_tree(value):
    """A JSON tree as a real CBOR client sends it: StartTime/EndTime as tag 1."""
    if isinstance(value, dict):
        value = dict(value)
        for q in ("StartTime", "EndTime"):
            if isinstance(value.get(q), (int, float)) and not isinstance(value.get(q), bool):
                value[q] = cbor2.CBORTag(1, value[q])
    return value


def seed_bodies(protocol: str):
    """Well-formed requests of a few operations, to mutate."""
    return [(op, encode_body(protocol, op, _cbor_tree(v) if protocol == "cbor" else v))
            for op, v in SEED_TREES.items()]


SEEDS = {p: seed_bodies(p) for p in PROTOCOLS}


# -- in-process properties ---------------------------------------------------------------------

@pytest.mark.parametrize("protocol", PROTOCOLS)
@fuzz_settings(50)
@given(data=st.data())
def test_structured_garbage(protocol, data):
    op = data.draw(ANY_OP)
    value = data.draw(_tree(protocol, op))
    check(request(protocol, op, encode_body(protocol, op, value)), protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fuzz_settings(100)
@given(data=st.data(), seed=st.integers(0, 2 ** 32 - 1))
def test_mutated_real_bodies(protocol, data, seed):
    op, body = data.draw(st.sampled_from(SEEDS[protocol]))
    check(request(protocol, op, mutate(body, random.Random(seed))), protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@fuzz_settings(100)
@given(op=st.sampled_from(OPS), body=st.binary(max_size=200))
def test_random_bytes(protocol, op, body):
    check(request(protocol, op, body), protocol)


@fuzz_settings(80)
@given(data=st.data())
def test_random_form_strings(data):
    """``.member.N`` keys over the operation's member names, with odd indexes and values."""
    op = data.draw(ANY_OP)
    names = member_names(op)
    part = st.one_of(st.sampled_from(names), st.sampled_from(["member", "entry", "key", "value"]),
                     st.sampled_from(["0", "1", "2", "01", "-1", "1_0", " 1",
                                      "99999999999999999999", "", "x"]))
    key = st.lists(part, min_size=1, max_size=7).map(".".join)
    value = st.one_of(WEIRD_TEXT, TEXT, st.integers().map(str), st.floats().map(repr))
    pairs = data.draw(st.lists(st.tuples(key, value), max_size=12))
    head = data.draw(st.sampled_from([[("Action", op), ("Version", "2010-08-01")],
                                      [("Action", op)], [("Version", "2010-08-01")],
                                      [("Action", ""), ("Version", "2010-08-01")],
                                      [("Action", op), ("Version", "2099-01-01")]]))
    raw = form(head + pairs)
    if data.draw(st.booleans()):          # sometimes break the encoding itself
        raw += data.draw(st.sampled_from([b"&%", b"&%zz=1", b"&a=%ff%fe", b"&=", b"&&&",
                                          b"&k=%C3%28", b"&\xff=\xfe", b"&k=%ED%A0%80"]))
    check(request("query", op, raw), "query")


DEPTHS = [500, 990, 20000]


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("op,member", [("PutMetricData", "Namespace"),
                                       ("PutMetricData", "MetricData"),
                                       ("GetMetricData", "MetricDataQueries")])
def test_deep_nesting(op, member, depth):
    """Deeply nested arrays/maps where the model wants a scalar or a shallow list."""
    key = json.dumps(member).encode()
    check(request("json", op, b"{" + key + b":" + b"[" * depth + b"]" * depth + b"}"), "json")
    check(request("json", op, b"{" + key + b":" + b'{"a":' * depth + b"1" + b"}" * depth + b"}"),
          "json")
    c = b"\xa1" + cbor2.dumps(member)
    check(request("cbor", op, c + b"\x81" * depth + b"\x01"), "cbor")
    check(request("cbor", op, c + b"\xa1\x61a" * depth + b"\x01"), "cbor")
    q = form([("Action", op), ("Version", "2010-08-01")]) + b"&" + member.encode()
    check(request("query", op, q + b".member.1" * depth + b"=x"), "query")
    check(request("query", op, q + b".a" * depth + b"=x"), "query")


HUGE = [b"1e999", b"-1e999", b"9" * 400, b"-" + b"9" * 400, b"9" * 5000, b"1" + b"0" * 4299,
        b"18446744073709551616", b"-9223372036854775809", b"NaN", b"Infinity", b"-Infinity",
        b'"NaN"', b'"Infinity"', b"1.7976931348623157e309", b"5e-325", b"true", b'"1"', b"[]",
        b"{}", b"null", b'"\\ud800"', b'"\\u0000"']


@pytest.mark.parametrize("number", HUGE, ids=[h[:12].decode() for h in HUGE])
@pytest.mark.parametrize("field", ["Value", "Timestamp", "StorageResolution", "Counts",
                                   "MetricName"])
def test_huge_and_odd_values(field, number):
    """Values no double/long can hold, wrong types and odd strings in double, timestamp,
    integer, list and string members; an unknown member forces the full (slow-path) reader
    too (the typed protocols first try a generated fast reader)."""
    for extra in (b"", b',"Unknown":1'):
        item = b'{"MetricName":"m"' if field != "MetricName" else b"{"
        item += extra
        if field == "Counts":
            item += b',"Values":[1],"Counts":[' + number + b"]}"
        elif field == "Value":
            item += b',"Value":' + number + b"}"
        elif field == "MetricName":
            item += (b"," if extra else b"") + b'"Value":1,"MetricName":' + number + b"}"
        else:
            item += b',"Value":1,"' + field.encode() + b'":' + number + b"}"
        body = b'{"Namespace":"N","MetricData":[' + item + b"]" + extra + b"}"
        check(request("json", "PutMetricData", body), "json")
    for op, key in (("GetMetricStatistics", "Period"), ("GetMetricStatistics", "StartTime"),
                    ("GetMetricData", "MaxDatapoints"), ("DescribeAlarms", "MaxRecords")):
        check(request("json", op, b'{"' + key.encode() + b'":' + number + b"}"), "json")
    q = form([("Action", "PutMetricData"), ("Version", "2010-08-01"), ("Namespace", "N"),
              ("MetricData.member.1.MetricName", "m"),
              (f"MetricData.member.1.{field}" + (".member.1" if field == "Counts" else ""),
               number.decode())])
    check(request("query", "PutMetricData", q), "query")


# -- live --------------------------------------------------------------------------------------

ODD_LEAVES = [None, True, 0, -1, 2 ** 63, -(2 ** 63) - 1, 10 ** 30, 10 ** 400, -(10 ** 400),
              math.nan, math.inf, -math.inf, -1e308, 5e-324, 2.0 ** 361, _T * 1000, -_T,
              "", " ", "\x01", "\x00ctl", "\ud800", "NaN", "Infinity", "1e999", "9" * 500,
              "a" * 3000, "<&>", "2026-11-26T12:00:00Z", "m1 * ", "SUM(", "[" * 50, {}, [],
              [[[[[[[[]]]]]]]], {"a": {"b": {"c": 1}}}]


def _copy(tree):
    if isinstance(tree, dict):
        return {k: _copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_copy(v) for v in tree]
    return tree


def _leaf_mutation(tree, rnd: random.Random):
    """A copy of ``tree`` with one node replaced by an odd value (or removed/multiplied)."""
    tree = _copy(tree)
    node, key, cur = None, None, tree
    for _ in range(rnd.randint(1, 6)):
        if isinstance(cur, dict) and cur:
            node, key = cur, rnd.choice(list(cur))
        elif isinstance(cur, list) and cur:
            node, key = cur, rnd.randrange(len(cur))
        else:
            break
        cur = node[key]
    if node is None:
        return rnd.choice(ODD_LEAVES)
    r = rnd.random()
    if r < 0.1:
        del node[key]
    elif r < 0.2 and isinstance(node, list):
        node.extend([node[key]] * rnd.choice([1, 200, 1200]))
    elif r < 0.3:
        deep = 1
        for _ in range(rnd.choice([30, 300, 900])):
            deep = [deep]
        node[key] = deep
    else:
        node[key] = rnd.choice(ODD_LEAVES)
    return tree


def _random_tree(rnd: random.Random, names, depth):
    r = rnd.random()
    if depth <= 0 or r < 0.45:
        return rnd.choice([None, True, False, 0, -1, 1.5, math.nan, math.inf, 10 ** 30, 2 ** 64,
                           10 ** 400, "", "x", "\x01", "NaN", "2026-11-26T12:00:00Z",
                           "".join(rnd.choices(string.printable, k=rnd.randint(0, 12))),
                           _T, -1e308])
    if r < 0.7:
        return [_random_tree(rnd, names, depth - 1) for _ in range(rnd.randint(0, 3))]
    return {rnd.choice(names): _random_tree(rnd, names, depth - 1)
            for _ in range(rnd.randint(0, 4))}


def _live_bodies(protocol: str, n: int, rnd: random.Random):
    """(operation, body) pairs: mutated seed bodies, seed trees with odd leaves, random trees,
    random bytes, deep nests."""
    out = []
    for i in range(n):
        kind = i % 6
        op = rnd.choice(HOT_OPS)
        try:
            if kind == 0:
                sop, body = rnd.choice(SEEDS[protocol])
                out.append((sop, mutate(body, rnd) if i % 36 else body))
            elif kind in (1, 2):
                sop = rnd.choice(list(SEED_TREES))
                tree = _leaf_mutation(SEED_TREES[sop], rnd)
                if kind == 2:
                    tree = _leaf_mutation(tree, rnd)
                if protocol == "cbor":
                    tree = _cbor_tree(tree)
                out.append((sop, encode_body(protocol, sop, tree)))
            elif kind == 3:
                names = member_names(op)
                tree = {rnd.choice(names): _random_tree(rnd, names, 4)
                        for _ in range(rnd.randint(1, 4))}
                out.append((op, encode_body(protocol, op, tree)))
            elif kind == 4:
                out.append((op, rnd.randbytes(rnd.randint(0, 64))))
            else:
                depth = rnd.choice([50, 500, 1000, 3000])
                member = rnd.choice(member_names(op))
                if protocol == "json":
                    body = (b'{"' + member.encode() + b'":' + b"[" * depth + b"]" * depth
                            + b"}")
                elif protocol == "cbor":
                    body = b"\xa1" + cbor2.dumps(member) + b"\x81" * depth + b"\x01"
                else:
                    body = form([("Action", op), ("Version", "2010-08-01")]) + b"&" \
                        + member.encode() + b".a" * depth + b"=x"
                out.append((op, body))
        except (ValueError, TypeError, RecursionError, cbor2.CBOREncodeError):
            continue          # e.g. a lone surrogate has no CBOR or UTF-8 form spelling
    return out


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_live_server_never_answers_5xx(server, protocol):
    rnd = random.Random(f"metricstore-fuzz-{protocol}")
    bodies = _live_bodies(protocol, 300, rnd)
    assert len(bodies) > 250
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    failures, statuses = [], {}
    try:
        for op, body in bodies:
            req = request(protocol, op, body)
            headers = dict(req.headers)
            headers["Content-Length"] = str(len(body))
            try:
                conn.request("POST", req.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError) as e:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                failures.append((op, body[:200], f"connection: {e!r}"))
                continue
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if resp.status >= 500:
                failures.append((op, body[:300], resp.status, data[:300]))
            if (resp.getheader("Connection") or "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    finally:
        conn.close()
    assert not failures, f"{len(failures)} of {len(bodies)} bodies failed: {failures[:5]}"
    # the bodies reach the operations too, not only the decoders
    assert statuses.get(200, 0) >= 5, statuses


def test_deeply_nested_dashboard_body_is_a_4xx():
    """Found by the live fuzz: PutDashboard with DashboardBody='[' * 5000 (valid as a string
    member, so it passes the codec) → 500."""
    from metricstore.operations.dashboards import validate_body
    with pytest.raises(ServiceError) as e:
        validate_body("[" * 5000 + "]" * 5000)
    assert 400 <= (resolve_error(SPEC, e.value)[2]) < 500
