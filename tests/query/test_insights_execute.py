"""Logs Insights end to end on DuckDB: parse → compile → run → format, compared with results
worked out here in plain Python over the same events (never with the module under test).

The events are a fixed, seeded mix of JSON and text messages (missing fields, nested objects,
arrays, numbers as JSON numbers and as text), in a table with the store's columns.
"""
from __future__ import annotations

import functools
import json
import math
import random
import re
import statistics
from datetime import datetime, timedelta, timezone

import duckdb
import pytest

from query.errors import QueryError, QuerySyntaxError, UnknownFieldError, UnsupportedError
from query.insights_compile import Source, compile_query
from query.insights_format import format_rows
from query.insights_parser import parse

BASE_MS = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
NOW_MS = BASE_MS + 3 * 3_600_000


def _events():
    rng = random.Random(20240101)
    events = []
    ts = BASE_MS
    for i in range(52):
        ts += rng.choice([0, 1_000, 37_000, 97_000, 240_000])
        kind = i % 5
        if kind in (0, 1, 2):
            doc = {"level": rng.choice(["INFO", "WARN", "ERROR"]),
                   "latency": rng.choice([5, 50, 99, 100, 250, 400, 401, 999, 1200]),
                   "status": rng.choice([200, 200, 404, 500]),
                   "service": rng.choice(["api", "web", "db", "api2", "api10"]),
                   "user": {"id": f"u{rng.randint(1, 12)}", "region": rng.choice(["eu", "us"])},
                   "items": [{"id": rng.randint(1, 4)} for _ in range(rng.randint(0, 3))],
                   "path": f"/api/users/{rng.randint(1, 25)}"}
            if i % 7 == 0:
                del doc["level"]
            if i % 11 == 0:
                doc["latency"] = str(doc["latency"])      # a number written as text
            if i % 13 == 0:
                del doc["service"]
            message = json.dumps(doc)
        elif kind == 3:
            level = rng.choice(["INFO", "ERROR"])
            message = (f"{level} user=u{rng.randint(1, 12)}, method:{rng.choice(['GET', 'PUT'])}, "
                       f"latency := {rng.randint(1, 500)} ip=192.168.{rng.randint(0, 2)}."
                       f"{rng.randint(1, 254)}")
        else:
            message = rng.choice(["healthcheck ok", "Exception in thread main java.lang.Error",
                                  'CSV,"quoted, part",3', "error: disk 91% full",
                                  "level=warn msg=\"slow query\" ms=812"])
        events.append({"ts": ts, "ingest": ts + 150 + i, "seq": i, "message": message,
                       "log_stream": f"stream-{i % 3}", "log_group": "123456789012:/app/orders",
                       "ptr": f"ptr-{i}"})
    return events


EVENTS = _events()


@pytest.fixture(scope="module")
def con():
    c = duckdb.connect()
    c.execute("CREATE TABLE events (ts BIGINT, ingest BIGINT, seq BIGINT, message VARCHAR, "
              "log_stream VARCHAR, log_group VARCHAR, ptr VARCHAR)")
    c.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [tuple(e[k] for k in ("ts", "ingest", "seq", "message", "log_stream",
                                        "log_group", "ptr")) for e in EVENTS])
    yield c
    c.close()


SOURCE = Source("SELECT * FROM events")


def run(con, text, **kw):
    compiled = compile_query(parse(text), SOURCE, now_ms=NOW_MS, **kw)
    rows = con.execute(compiled.sql, compiled.params).fetchall()
    return compiled, format_rows(compiled, rows)


def as_dicts(results):
    return [{d["field"]: d["value"] for d in row} for row in results]


# ------------------------------------------------------------------------------------------
# The oracle: plain Python over EVENTS
# ------------------------------------------------------------------------------------------

def doc(e):
    try:
        value = json.loads(e["message"])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def field(e, path):
    """A discovered field as text: JSON scalars only (objects and arrays are not fields)."""
    node = doc(e)
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if node is None or isinstance(node, (dict, list)):
        return None
    if isinstance(node, bool):
        return "true" if node else "false"
    return node if isinstance(node, str) else json.dumps(node)


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def newest_first(events):
    return sorted(events, key=lambda e: (e["ts"], e["seq"]), reverse=True)


def fmt_ts(ms):
    dt = datetime(1970, 1, 1) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%d %H:%M:%S.") + f"{ms % 1000:03d}"


def fmt_num(x):
    if x is None:
        return None
    x = float(x)
    return str(int(x)) if x == int(x) else repr(x)


def row(**fields):
    return {k: v for k, v in fields.items() if v is not None}


_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")


def natural_cmp(a, b):
    """AWS's documented natural sort, compared chunk by chunk (reference §3.5)."""
    an, bn = bool(_NUMBER.match(a)), bool(_NUMBER.match(b))
    if an != bn:
        return -1 if bn else 1
    if an:
        return (float(a) > float(b)) - (float(a) < float(b))
    ra, rb = re.findall(r"\d+|\D+", a), re.findall(r"\d+|\D+", b)
    for x, y in zip(ra, rb):
        if x.isdigit() and y.isdigit():
            kx, ky = (len(x), int(x)), (len(y), int(y))
        elif not x.isdigit() and not y.isdigit():
            kx, ky = x, y
        else:
            kx, ky = x[0], y[0]
        if kx != ky:
            return -1 if kx < ky else 1
    return (len(ra) > len(rb)) - (len(ra) < len(rb))


natural_key = functools.cmp_to_key(natural_cmp)


def assert_rows(actual, expected):
    """Compare formatted rows; numbers with a decimal point are compared approximately."""
    assert len(actual) == len(expected), (actual, expected)
    for a, e in zip(actual, expected):
        assert a.keys() == e.keys(), (a, e)
        for k in e:
            if isinstance(e[k], float):
                assert float(a[k]) == pytest.approx(e[k], rel=1e-12), (k, a, e)
            else:
                assert a[k] == e[k], (k, a, e)


# ------------------------------------------------------------------------------------------
# Event rows
# ------------------------------------------------------------------------------------------

def test_default_fields_and_order(con):
    compiled, results = run(con, "limit 5")
    assert compiled.columns == ["@timestamp", "@message"] and compiled.has_ptr
    expected = [row(**{"@timestamp": fmt_ts(e["ts"]), "@message": e["message"], "@ptr": e["ptr"]})
                for e in newest_first(EVENTS)[:5]]
    assert as_dicts(results) == expected


def test_limit_default_applies(con):
    compiled, results = run(con, "fields @timestamp", limit_default=7)
    assert compiled.limit == 7 and len(results) == 7


def test_numeric_filter_on_discovered_field(con):
    # latency is a JSON number in most events and text in a few: both compare numerically
    _, results = run(con, "filter latency > 400 | fields latency, service, user.id")
    expected = [row(latency=field(e, "latency"), service=field(e, "service"),
                    **{"user.id": field(e, "user.id"), "@ptr": e["ptr"]})
                for e in newest_first(EVENTS)
                if number(field(e, "latency")) is not None and number(field(e, "latency")) > 400]
    assert expected and as_dicts(results) == expected


def test_like_substring_and_regex(con):
    _, results = run(con, 'filter @message like "ERROR" | fields @message')
    assert [r["@message"] for r in as_dicts(results)] == \
        [e["message"] for e in newest_first(EVENTS) if "ERROR" in e["message"]]
    _, results = run(con, "filter @message like /(?i)error/ and @message not like /disk/ "
                          "| stats count(*) as c")
    n = sum(1 for e in EVENTS if re.search("(?i)error", e["message"])
            and not re.search("disk", e["message"]))
    assert as_dicts(results) == [{"c": str(n)}]


def test_regex_match_operator(con):
    _, results = run(con, r"filter path =~ /\/users\/1\d$/ | fields path")
    assert [r["path"] for r in as_dicts(results)] == \
        [field(e, "path") for e in newest_first(EVENTS)
         if field(e, "path") and re.search(r"/users/1\d$", field(e, "path"))]


def test_in_and_not_equal_skip_missing_fields(con):
    _, results = run(con, "filter status in [404, 500] and level != 'ERROR' | fields status, level")
    expected = [row(status=field(e, "status"), level=field(e, "level"), **{"@ptr": e["ptr"]})
                for e in newest_first(EVENTS)
                if field(e, "status") in ("404", "500") and field(e, "level") is not None
                and field(e, "level") != "ERROR"]
    assert as_dicts(results) == expected
    _, results = run(con, "filter level not in ['INFO', 'WARN'] | stats count(*) as c")
    n = sum(1 for e in EVENTS if field(e, "level") not in (None, "INFO", "WARN"))
    assert as_dicts(results) == [{"c": str(n)}]


def test_ispresent_and_system_fields(con):
    _, results = run(con, "filter not ispresent(level) | fields @logStream, @log, "
                          "@ingestionTime, ispresent(service) as hasService | limit 4")
    chosen = [e for e in newest_first(EVENTS) if field(e, "level") is None][:4]
    assert as_dicts(results) == [
        {"@logStream": e["log_stream"], "@log": e["log_group"],
         "@ingestionTime": fmt_ts(e["ingest"]),
         "hasService": "1" if field(e, "service") is not None else "0", "@ptr": e["ptr"]}
        for e in chosen]


def test_string_functions(con):
    _, results = run(con, 'fields strlen(@message) as len, toupper(service) as up, '
                          'concat(service, ":", level) as sl, substr(@message, 2, 5) as sub, '
                          'replace(service, "api", "API") as rep | filter len > 60 | limit 6')
    chosen = [e for e in newest_first(EVENTS) if len(e["message"]) > 60][:6]
    expected = []
    for e in chosen:
        s, lv = field(e, "service"), field(e, "level")
        expected.append(row(len=str(len(e["message"])), up=s.upper() if s else None,
                            sl=f"{s or ''}:{lv or ''}", sub=e["message"][2:7],
                            rep=s.replace("api", "API") if s else None, **{"@ptr": e["ptr"]}))
    assert as_dicts(results) == expected


def test_arithmetic_and_numbers(con):
    _, results = run(con, "filter ispresent(latency) | fields latency * 2 + 1 as a, "
                          "latency / 8 as b, latency % 7 as c, 2 ^ 10 as d, abs(-latency) as e, "
                          "floor(latency / 3) as fl, greatest(latency, 300) as g | limit 5")
    chosen = [e for e in newest_first(EVENTS) if field(e, "latency") is not None][:5]
    expected = []
    for e in chosen:
        x = number(field(e, "latency"))
        expected.append(row(a=fmt_num(x * 2 + 1), b=x / 8 if x % 8 else fmt_num(x / 8),
                            c=fmt_num(math.fmod(x, 7)), d="1024", e=fmt_num(x),
                            fl=fmt_num(math.floor(x / 3)), g=fmt_num(max(x, 300)),
                            **{"@ptr": e["ptr"]}))
    assert_rows(as_dicts(results), expected)


def test_sort_is_natural_and_multi_key(con):
    _, results = run(con, "filter ispresent(user.id) | sort user.id asc, @timestamp desc "
                          "| limit 12 | display user.id, @timestamp")
    chosen = [e for e in EVENTS if field(e, "user.id") is not None]
    chosen.sort(key=lambda e: (-e["ts"], -e["seq"]))
    chosen.sort(key=lambda e: natural_key(field(e, "user.id")))
    assert as_dicts(results) == [
        {"user.id": field(e, "user.id"), "@timestamp": fmt_ts(e["ts"]), "@ptr": e["ptr"]}
        for e in chosen[:12]]


def test_sort_descending_numbers_after_text(con):
    # service values api, api2, api10, web, db: u2 < u10 style ordering, reversed
    _, results = run(con, "stats count(*) as c by service | sort service desc")
    services = sorted({field(e, "service") for e in EVENTS} - {None}, key=natural_key,
                      reverse=True)
    got = [r.get("service") for r in as_dicts(results)]
    assert got == services + [None]  # missing values last


def test_dedup_keeps_first_in_order_and_null_rows(con):
    _, results = run(con, "fields service, @timestamp | dedup service")
    seen, expected = set(), []
    for e in newest_first(EVENTS):
        s = field(e, "service")
        if s is None or s not in seen:
            expected.append(row(service=s, **{"@timestamp": fmt_ts(e["ts"]), "@ptr": e["ptr"]}))
            if s is not None:
                seen.add(s)
    assert as_dicts(results) == expected


# ------------------------------------------------------------------------------------------
# Parse
# ------------------------------------------------------------------------------------------

GLOB = re.compile(r"user=(.*?), method:(.*?), latency := (.*)", re.S)


def test_parse_glob_then_stats(con):
    _, results = run(con, 'parse @message "user=*, method:*, latency := *" as user, method, lat'
                          ' | filter ispresent(user) | stats count(*) as c, sum(lat) as total '
                          'by method | sort method')
    groups = {}
    for e in EVENTS:
        m = GLOB.search(e["message"])
        if m:
            lat = number(m.group(3))  # "123 ip=…" is not a number: sum skips it
            c, t = groups.get(m.group(2), (0, None))
            groups[m.group(2)] = (c + 1, t if lat is None else (t or 0) + lat)
    assert groups
    assert as_dicts(results) == [row(method=k, c=str(c), total=fmt_num(t))
                                 for k, (c, t) in sorted(groups.items())]


def test_parse_regex_named_groups_and_subnet(con):
    _, results = run(con, r"parse @message /ip=(?<ip>\d+\.\d+\.\d+\.\d+)/ "
                          r'| filter isIpv4InSubnet(ip, "192.168.1.0/24") | fields ip, '
                          r'isValidIpV6(ip) as v6, isIpInSubnet(ip, "192.168.0.0/16") as wide')
    expected = []
    for e in newest_first(EVENTS):
        m = re.search(r"ip=(\d+\.\d+\.\d+\.\d+)", e["message"])
        if m and m.group(1).startswith("192.168.1."):
            expected.append({"ip": m.group(1), "v6": "0", "wide": "1", "@ptr": e["ptr"]})
    assert expected and as_dicts(results) == expected


def test_parse_multi_one_row_per_match(con):
    _, results = run(con, r"filter @message like 'user=' | parse @message /(\d+)/ as n multi "
                          r"| stats count(*) as c")
    n = sum(len(re.findall(r"\d+", e["message"])) or 1 for e in EVENTS
            if "user=" in e["message"])
    assert as_dicts(results) == [{"c": str(n)}]


def test_parse_csv_and_logfmt(con):
    _, results = run(con, 'filter @message like "CSV," | parse @message csv as a, b, c '
                          '| fields a, b, c | limit 1')
    assert any(e["message"].startswith("CSV,") for e in EVENTS)
    assert as_dicts(results)[0] == {"a": "CSV", "b": "quoted, part", "c": "3",
                                    "@ptr": as_dicts(results)[0]["@ptr"]}
    _, results = run(con, 'filter @message like "level=warn" | parse @message logfmt as lf '
                          '| fields lf.level, lf.msg, lf.ms + 1 as ms1 | limit 1')
    assert any(e["message"].startswith("level=warn") for e in EVENTS)
    r = as_dicts(results)[0]
    assert (r["lf.level"], r["lf.msg"], r["ms1"]) == ("warn", "slow query", "813")


def test_parse_unmatched_event_keeps_row_without_fields(con):
    _, results = run(con, 'parse @message "user=*," as user | fields user, @message | limit 50')
    for r, e in zip(as_dicts(results), newest_first(EVENTS)):
        m = re.search(r"user=(.*?),", e["message"], re.S)
        assert r.get("user") == (m.group(1) if m else None)


# ------------------------------------------------------------------------------------------
# JSON
# ------------------------------------------------------------------------------------------

def test_jsonparse_unnest_and_group_by_member(con):
    _, results = run(con, "fields jsonParse(@message) as j | unnest j.items into it "
                          "| stats count(*) as c by it.id | sort c desc, it.id")
    counts = {}
    for e in EVENTS:
        d = doc(e)
        for it in (d or {}).get("items", []):
            counts[str(it["id"])] = counts.get(str(it["id"]), 0) + 1
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], natural_key(kv[0])))
    assert as_dicts(results) == [{"it.id": k, "c": str(v)} for k, v in expected]


def test_array_index_paths_and_json_functions(con):
    _, results = run(con, "filter ispresent(items.0.id) | fields items.0.id as first, "
                          "jsonStringify(jsonParse(@message).user) as u, "
                          "jsonParse(@message).items[1].id as second | limit 5")
    chosen = [e for e in newest_first(EVENTS) if field(e, "items.0.id") is not None][:5]
    expected = []
    for e in chosen:
        d = doc(e)
        second = str(d["items"][1]["id"]) if len(d["items"]) > 1 else None
        expected.append(row(first=field(e, "items.0.id"),
                            u=json.dumps(d["user"], separators=(",", ":")), second=second,
                            **{"@ptr": e["ptr"]}))
    assert as_dicts(results) == expected


# ------------------------------------------------------------------------------------------
# Stats
# ------------------------------------------------------------------------------------------

def test_stats_aggregations_by_field(con):
    _, results = run(con, "stats count(*) as n, count(latency) as nl, avg(latency) as avg, "
                          "sum(latency) as s, min(latency) as mn, max(latency) as mx, "
                          "stddev(latency) as sd by service")
    groups = {}
    for e in EVENTS:
        groups.setdefault(field(e, "service"), []).append(e)
    expected = []
    for key in sorted(groups, key=lambda k: (k is None, natural_key(k or ""))):
        lats = [number(field(e, "latency")) for e in groups[key]]
        lats = [x for x in lats if x is not None]
        texts = [field(e, "latency") for e in groups[key] if field(e, "latency") is not None]
        avg = sum(lats) / len(lats) if lats else None
        expected.append(row(
            service=key, n=str(len(groups[key])), nl=str(len(texts)),
            avg=None if avg is None else (fmt_num(avg) if avg == int(avg) else avg),
            s=fmt_num(sum(lats)) if lats else None,
            mn=min(texts, key=float) if texts else None,
            mx=max(texts, key=float) if texts else None,
            sd=statistics.stdev(lats) if len(lats) > 1 else None))
    assert_rows(as_dicts(results), expected)


def test_stats_bin_groups_newest_first(con):
    compiled, results = run(con, "filter @message like 'e' | stats count(*) by bin(10m)")
    assert compiled.columns == ["bin(10m)", "count(*)"] and not compiled.has_ptr
    counts = {}
    for e in EVENTS:
        if "e" in e["message"]:
            b = e["ts"] - e["ts"] % 600_000
            counts[b] = counts.get(b, 0) + 1
    assert as_dicts(results) == [{"bin(10m)": fmt_ts(b), "count(*)": str(c)}
                                 for b, c in sorted(counts.items(), reverse=True)]


def test_stats_bin_alias_sorted_ascending(con):
    _, results = run(con, "stats count() as c by bin(1h) as hour | sort hour asc")
    counts = {}
    for e in EVENTS:
        b = e["ts"] - e["ts"] % 3_600_000
        counts[b] = counts.get(b, 0) + 1
    assert as_dicts(results) == [{"hour": fmt_ts(b), "c": str(c)}
                                 for b, c in sorted(counts.items())]


def test_stats_percentile_distinct_earliest_latest(con):
    _, results = run(con, "stats pct(latency, 90) as p90, count_distinct(user.id) as users, "
                          "earliest(level) as first, latest(level) as last, "
                          "sortsFirst(user.id) as sf, sortsLast(user.id) as sl")
    lats = sorted(x for x in (number(field(e, "latency")) for e in EVENTS) if x is not None)
    p90 = lats[max(0, math.ceil(0.9 * len(lats)) - 1)]          # nearest rank
    users = {field(e, "user.id") for e in EVENTS} - {None}
    with_level = [e for e in EVENTS if field(e, "level") is not None]
    first = min(with_level, key=lambda e: (e["ts"], e["seq"]))
    last = max(with_level, key=lambda e: (e["ts"], e["seq"]))
    assert as_dicts(results) == [{
        "p90": fmt_num(p90), "users": str(len(users)), "first": field(first, "level"),
        "last": field(last, "level"), "sf": min(users, key=natural_key),
        "sl": max(users, key=natural_key)}]


def test_two_stats_commands(con):
    _, results = run(con, "stats count(*) as c by service, level "
                          "| stats max(c) as m, count(*) as groups, sum(c) as total by service "
                          "| sort service")
    pairs = {}
    for e in EVENTS:
        key = (field(e, "service"), field(e, "level"))
        pairs[key] = pairs.get(key, 0) + 1
    per = {}
    for (s, _), c in pairs.items():
        per.setdefault(s, []).append(c)
    order = sorted(per, key=lambda k: (k is None, natural_key(k or "")))
    assert as_dicts(results) == [row(service=s, m=str(max(per[s])), groups=str(len(per[s])),
                                     total=str(sum(per[s]))) for s in order]


def test_stats_alias_arithmetic_and_filter_after_stats(con):
    _, results = run(con, "stats sum(latency) as s, count(*) as n, s / n as mean by level "
                          "| filter n > 3 | sort mean desc")
    groups = {}
    for e in EVENTS:
        groups.setdefault(field(e, "level"), []).append(e)
    expected = []
    for k, es in groups.items():
        s = sum(x for x in (number(field(e, "latency")) for e in es) if x is not None)
        if len(es) > 3:
            expected.append((s / len(es), row(level=k, s=fmt_num(s), n=str(len(es)),
                                              mean=s / len(es))))
    expected.sort(key=lambda t: -t[0])
    assert_rows(as_dicts(results), [r for _, r in expected])


def test_stats_sort_by_unaliased_aggregate(con):
    _, results = run(con, "stats count(*) by service | sort count(*) desc, service | limit 3")
    counts = {}
    for e in EVENTS:
        counts[field(e, "service")] = counts.get(field(e, "service"), 0) + 1
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is None,
                                                 natural_key(kv[0] or "")))[:3]
    assert as_dicts(results) == [row(service=k, **{"count(*)": str(v)}) for k, v in top]


def test_records_matched_counts_events_before_stats_and_limit(con):
    compiled, _ = run(con, "filter status = 200 | stats count(*) by service")
    matched = con.execute(compiled.count_sql, compiled.count_params).fetchone()[0]
    assert matched == sum(1 for e in EVENTS if field(e, "status") == "200")
    compiled, _ = run(con, "filter @message like 'a' | limit 3")
    matched = con.execute(compiled.count_sql, compiled.count_params).fetchone()[0]
    assert matched == sum(1 for e in EVENTS if "a" in e["message"])


# ------------------------------------------------------------------------------------------
# Datetime
# ------------------------------------------------------------------------------------------

def test_datetime_functions(con):
    _, results = run(con, "fields datefloor(@timestamp, 1h) as h, dateceil(@timestamp, 15m) as c,"
                          " toMillis(@timestamp) as ms, fromMillis(toMillis(@timestamp) + 1) as p,"
                          " bin(1d) as d, bin(300s) as capped, now() as n | limit 4")
    expected = []
    for e in newest_first(EVENTS)[:4]:
        t = e["ts"]
        ceil = t if t % 900_000 == 0 else t - t % 900_000 + 900_000
        expected.append({"h": fmt_ts(t - t % 3_600_000), "c": fmt_ts(ceil), "ms": str(t),
                         "p": fmt_ts(t + 1), "d": fmt_ts(t - t % 86_400_000),
                         # bin(300s) is capped to 60 seconds, as AWS documents
                         "capped": fmt_ts(t - t % 60_000), "n": str(NOW_MS // 1000),
                         "@ptr": e["ptr"]})
    assert as_dicts(results) == expected


def test_calendar_bins(con):
    _, results = run(con, "fields bin(1mo) as m, bin(1q) as q, bin(1y) as y, bin(1w) as w "
                          "| limit 1")
    e = newest_first(EVENTS)[0]
    dt = datetime(1970, 1, 1) + timedelta(milliseconds=e["ts"])
    monday = (dt - timedelta(days=dt.weekday())).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)
    r = as_dicts(results)[0]
    assert r["m"] == f"{dt.year:04d}-{dt.month:02d}-01 00:00:00.000"
    assert r["q"] == f"{dt.year:04d}-{(dt.month - 1) // 3 * 3 + 1:02d}-01 00:00:00.000"
    assert r["y"] == f"{dt.year:04d}-01-01 00:00:00.000"
    assert r["w"] == monday.strftime("%Y-%m-%d %H:%M:%S.000")


# ------------------------------------------------------------------------------------------
# Compile-time errors point at their node
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,cls,column,fragment", [
    ("stats count(*) by service | filter latency > 1", UnknownFieldError, 36, "after stats"),
    ("fields sum(latency)", QuerySyntaxError, 8, "is an aggregation"),
    ("stats latency by service", QuerySyntaxError, 7, "is not an aggregation"),
    ("stats max(count(*))", QuerySyntaxError, 11, "cannot be nested"),
    ("fields @message | pattern @message", UnsupportedError, 19, "pattern"),
    ("SOURCE logGroups() | fields a", UnsupportedError, 1, "logGroupNames"),
    ("stats count(*) by bin(5m) offset 1h", UnsupportedError, 34, "offset"),
    ("stats rate(x, 5m)", UnsupportedError, 7, "rate() is not supported"),
    ("stats count(*) | stats count(*) | stats count(*)", QuerySyntaxError, 35, "at most two"),
    ("stats count(*) as c by x | sort c | stats sum(c)", QuerySyntaxError, 28,
     "after the second stats"),
    ("dedup a | sort a", QuerySyntaxError, 11, "only limit can follow dedup"),
    ("limit 10001", QuerySyntaxError, 1, "between 1 and 10000"),
    ("fields bin(5m) + 1 as x | fields 5m", QuerySyntaxError, 34, "time period"),
    ("fields datefloor(@timestamp, 5)", QuerySyntaxError, 30, "expects a time period"),
    ("fields isIpInSubnet(ip, subnet)", UnsupportedError, 25, "literal"),
    ("fields isIpv4InSubnet(ip, '2001:db8::/32')", QuerySyntaxError, 27, "not an IPv4 subnet"),
    ("fields isIpInSubnet(ip, 'nonsense')", QuerySyntaxError, 25, "not a CIDR"),
    ("stats pct(latency, 101)", QuerySyntaxError, 20, "0 to 100"),
    ("stats count(*) as c | stats earliest(c)", QuerySyntaxError, 29, "needs @timestamp"),
    ("stats count(*) as c | fields @message", UnknownFieldError, 30, "unknown field `@message`"),
])
def test_compile_errors(text, cls, column, fragment):
    with pytest.raises(QueryError) as info:
        compile_query(parse(text), SOURCE)
    err = info.value
    assert type(err) is cls, err.render()
    assert err.column == column, err.render()
    assert fragment in err.message, err.render()
    assert err.render().startswith(f"line 1, column {column}:")


# ------------------------------------------------------------------------------------------
# IP functions agree with Python's ipaddress
# ------------------------------------------------------------------------------------------

ADDRESSES = ["10.1.2.3", "10.255.255.255", "11.0.0.1", "192.168.1.7", "192.168.2.1", "0.0.0.0",
             "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "a.b.c.d",
             "2001:db8::1", "2001:db8:8000::1", "2001:db9::",
             "2001:0db8:0000:0000:0000:0000:0000:0001",
             "::", "::1", "fe80::1:2", "::ffff:10.1.2.3", "::ffff:192.168.1.7", "1::2:3:4:5:6:7",
             "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:::2", "2001:db8::g", "2001:DB8::ABCD",
             "", "not an ip", "1.2.3.4 "]
SUBNETS = ["10.0.0.0/8", "192.168.1.0/24", "0.0.0.0/0", "192.168.1.7/32", "10.1.2.0/23",
           "2001:db8::/32", "2001:db8:8000::/33", "::/0", "::ffff:0:0/96", "fe80::/10",
           "2001:db8::1/128", "2001:db8::/31"]


def _py_ip(text):
    import ipaddress
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def test_ip_functions_agree_with_ipaddress(con):
    import ipaddress
    con.execute("CREATE OR REPLACE TEMP TABLE ips AS SELECT i AS seq, i AS ts, i AS ingest, "
                "to_json({'a': a})::VARCHAR AS message, 's' AS log_stream, 'g' AS log_group, "
                "'p' AS ptr FROM (SELECT unnest(?) AS a, unnest(range(?)) AS i)",
                [ADDRESSES, len(ADDRESSES)])
    source = Source("SELECT * FROM ips")
    fields = ", ".join(f'isIpInSubnet(a, "{n}") as s{i}' for i, n in enumerate(SUBNETS))
    compiled = compile_query(parse(f"fields a, isValidIp(a) as v, isValidIpV4(a) as v4, "
                                   f"isValidIpV6(a) as v6, {fields} | sort @timestamp asc"),
                             source)
    rows = as_dicts(format_rows(compiled, con.execute(compiled.sql, compiled.params).fetchall()))
    for address, r in zip(ADDRESSES, rows):
        ip = _py_ip(address)
        expected = {"v": ip is not None, "v4": ip is not None and ip.version == 4,
                    "v6": ip is not None and ip.version == 6}
        for i, n in enumerate(SUBNETS):
            net = ipaddress.ip_network(n)
            expected[f"s{i}"] = ip is not None and ip.version == net.version and ip in net
        got = {k: r.get(k) == "1" for k in expected}
        assert got == expected, address
    # the v4 and v6 forms refuse a subnet of the other family
    counted = run(con, 'filter isIpv4InSubnet(ip, "192.168.0.0/16") | stats count(*) as c')[1]
    assert as_dicts(counted) == [{"c": "0"}]  # the JSON events' ip field is absent
    with pytest.raises(QuerySyntaxError):
        compile_query(parse('fields isIpv6InSubnet(a, "10.0.0.0/8")'), source)


def test_nested_date_functions(con):
    _, results = run(con, "fields dateceil(dateceil(fromMillis(toMillis(@timestamp) + 1), 1q), 1y)"
                          " as y, datefloor(datefloor(@timestamp, 1mo), 1y) as f | limit 1")
    e = newest_first(EVENTS)[0]
    dt = datetime(1970, 1, 1) + timedelta(milliseconds=e["ts"] + 1)
    quarter_end = datetime(dt.year + (dt.month > 9), (dt.month - 1) // 3 * 3 % 12 + 4
                           if dt.month <= 9 else 1, 1)
    year_ceil = quarter_end if (quarter_end.month, quarter_end.day) == (1, 1) \
        else datetime(quarter_end.year + 1, 1, 1)
    assert as_dicts(results)[0]["y"] == year_ceil.strftime("%Y-%m-%d %H:%M:%S.000")
    assert as_dicts(results)[0]["f"] == f"{dt.year:04d}-01-01 00:00:00.000"
