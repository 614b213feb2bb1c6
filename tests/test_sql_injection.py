"""SQL injection through every user-text path of the API, against a live server.

Hostile values (quotes, ``; DROP TABLE``, comments, ``$1`` / ``?`` placeholders, ``%s``,
``{}``, NUL, bidi and astral unicode, LIKE wildcards, newlines, very long strings) go through
every member that carries user text: metric namespaces/names/dimensions/units, ListMetrics
filters, GetMetricData expressions/SEARCH/labels, dashboards, tags, alarms (names,
descriptions, prefixes, composite rules), log groups/streams/prefixes, filter patterns,
metric filters, Logs Insights (back-ticked fields, regexes, strings), query definitions, SNS
topics and attributes.  For each request:

* the answer is a normal result or an AWS 4xx error, never a 5xx;
* a value the server accepted comes back verbatim (ListMetrics, DescribeAlarms,
  GetLogEvents, an Insights ``filter @message = "…"`` that finds it, tags, attributes …);
* LIKE wildcards in prefixes are literal (``a%`` does not match ``abc``).

By default the run is sampled to stay fast: the 16 marked payloads and 8 of the bare ones,
every round trip, half of the other requests (chosen by a hash of the request, so each
request shape meets about half of the payloads) and a sixth of the Insights query
templates per payload.  ``METRICSTORE_FULL_FUZZ=1`` runs the whole product (~5 minutes).

And for the whole run, two independent checks that no statement other than ours ran:

1. **DuckDB's own query log.**  The server runs under a tiny launcher (below) that wraps
   ``duckdb.connect`` to switch on DuckDB's ``QueryLog`` (``CALL enable_logging``, file
   storage) on every connection the server opens; the engine then writes the text of every
   statement it executes, from any cursor or thread, without bound parameter values.  Every
   hostile payload carries a marker (``zqinjNN``); no logged statement may contain a marker
   or the sentinel table's name, and the log must hold the server's ordinary statements
   (so the check is not vacuous).  No production code is changed for this.
2. **The database file.**  Before the server first opens it, the data directory's DuckDB file
   gets a sentinel table with three rows.  After the server stops, the file is opened
   directly: the sentinel is intact, the catalog (tables, views, sequences, macros, indexes,
   schemas) is exactly the one the server created on a clean start, and the row counts of
   log groups, alarms, dashboards and topics match what the API listed just before stopping.
"""
from __future__ import annotations

import json
import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from botocore.exceptions import ClientError

from conftest import LiveServer, make_client

# -- payloads ----------------------------------------------------------------------------------

MARKED = [
    "zqinj01'; DROP TABLE zz_sentinel; --",
    'zqinj02"; DROP TABLE zz_sentinel; --',
    "zqinj03` ; DELETE FROM series; --",
    "zqinj04 /* c */ OR 1=1 --",
    "zqinj05') OR ('1'='1",
    "$1 zqinj06 $name $2",
    "? zqinj07 ?",
    "zqinj08 %s %d {} {0} %(x)s",
    "zqinj09\x00nul",
    "zqinj10 ü 😀 \u202eRTL ﷽ \u0301",
    "zqinj11" + "'" * 300,
    "zqinj12\\'; SELECT 1; --",
    "zqinj13'||(SELECT current_database())||'",
    "zqinj14\n;\r\nCOPY series TO '/tmp/zqinj_pwn.csv'; --",
    "zqinj15 %' OR name LIKE '%_",
    "zqinj16 \\x27 \\u0027 \\\\ \\",
]
FULL = os.environ.get("METRICSTORE_FULL_FUZZ") == "1"
ROTATE = 1 if FULL else 6
BARE = ["'", '"', "`", "?", "$1", "\\", "%", "_", ";", "--", "/*", "{}", "%s", "''", "*", ":"]
PAYLOADS = MARKED + (BARE if FULL else BARE[:8])
MARKERS = [p[:7] for p in MARKED]


def _clean_for_xml(p: str) -> bool:
    return "\x00" not in p


# -- a server whose DuckDB connections log every statement ------------------------------------

LAUNCHER = r"""
import os, sys, runpy, itertools, duckdb
_connect, _n = duckdb.connect, itertools.count()
def connect(database=":memory:", *a, **kw):
    con = _connect(database, *a, **kw)
    path = os.path.join(os.environ["MS_TEST_SQL_TRACE"], "c%d" % next(_n))
    con.execute("CALL enable_logging('QueryLog', storage='file', storage_path='%s')"
                % path.replace("'", "''"))
    return con
duckdb.connect = connect
sys.argv = ["metricstore", *sys.argv[1:]]
runpy.run_module("metricstore", run_name="__main__", alter_sys=True)
"""


class TracedServer(LiveServer):
    launcher = ("-c", LAUNCHER)


CATALOG = """
SELECT 'table', schema_name || '.' || table_name FROM duckdb_tables() WHERE NOT temporary
UNION ALL SELECT 'view', schema_name || '.' || view_name FROM duckdb_views() WHERE NOT internal
UNION ALL SELECT 'sequence', schema_name || '.' || sequence_name FROM duckdb_sequences()
UNION ALL SELECT 'macro', schema_name || '.' || function_name FROM duckdb_functions()
          WHERE NOT internal AND function_type LIKE '%macro%'
UNION ALL SELECT 'index', schema_name || '.' || index_name FROM duckdb_indexes()
UNION ALL SELECT 'schema', database_name || '.' || schema_name FROM duckdb_schemas()
          WHERE NOT internal AND database_name = current_database()
"""


def catalog(db: Path) -> set[tuple[str, str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return set(con.execute(CATALOG).fetchall())
    finally:
        con.close()


@pytest.fixture(scope="module")
def traced(tmp_path_factory):
    base = tmp_path_factory.mktemp("inject")
    data, trace = base / "data", base / "trace"
    data.mkdir()
    trace.mkdir()
    db = data / "metricstore.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE zz_sentinel (id INTEGER, note VARCHAR)")
    con.execute("INSERT INTO zz_sentinel VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    con.close()
    srv = TracedServer(data, env={"MS_TEST_SQL_TRACE": str(trace)})
    # a clean start and stop: the catalog the server makes by itself
    srv.start()
    srv.stop()
    srv.baseline = catalog(db)
    srv.trace, srv.db = trace, db
    srv.start()
    yield srv
    if srv.proc is not None:
        srv.stop()


@pytest.fixture(scope="module")
def clients(traced, model_dirs):
    c = {name: make_client(name, traced.url, validate=False) for name in ("logs", "sns")}
    c["cw"] = make_client("cloudwatch", traced.url, validate=False)
    c["cwq"] = make_client("cloudwatch", traced.url, "query", model_dirs, validate=False)
    return c


# -- calling -----------------------------------------------------------------------------------

class Calls:
    """Runs requests, collecting every answer that is neither a success nor an AWS 4xx."""

    def __init__(self):
        self.bad: list[str] = []
        self.ok = self.refused = 0

    def __call__(self, fn, **kw):
        try:
            r = fn(**kw)
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            if not 400 <= status < 500:
                self.bad.append(f"{fn.__name__}({_short(kw)}) -> {status} "
                                f"{e.response['Error'].get('Code')}: "
                                f"{e.response['Error'].get('Message', '')[:200]}")
            self.refused += 1
            return None
        except Exception as e:  # noqa: BLE001 - a client that cannot read the answer
            self.bad.append(f"{fn.__name__}({_short(kw)}) -> {type(e).__name__}: {str(e)[:200]}")
            return None
        self.ok += 1
        return r

    def probe(self, fn, **kw):
        """A request whose answer is only checked for being a success or a 4xx.  Unless
        METRICSTORE_FULL_FUZZ=1, half of them run (chosen by a hash of the call, so each
        request shape still meets about half of the payloads); the round trips always run."""
        if not FULL and zlib.crc32(repr((fn.__name__, sorted(kw.items()))).encode()) % 2:
            return None
        return self(fn, **kw)

    def expect(self, cond: bool, what: str):
        if not cond:
            self.bad.append(what)

    def check(self):
        assert not self.bad, f"{len(self.bad)} problem(s):\n" + "\n".join(self.bad[:60])


def _short(kw) -> str:
    return ", ".join(f"{k}={v!r}"[:90] for k, v in kw.items())


NOW = int(time.time())


def each_payload(fn, payloads=PAYLOADS, workers: int = 4) -> None:
    """``fn(index, payload)`` for every payload, a few at a time (the requests of one payload
    touch only names of their own)."""
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(fn, i, p) for i, p in enumerate(payloads)]:
            f.result()


# -- CloudWatch --------------------------------------------------------------------------------

def _cw_paths(cw, call: Calls, p: str, i: int, tag: str) -> None:
    dims = [{"Name": p, "Value": p}]
    # the same series for both protocols: each its own time window
    t = NOW - (120 if tag == "json" else 2400)
    lo, hi = t - 600, t + 60
    ok = call(cw.put_metric_data, Namespace=p, MetricData=[
        {"MetricName": p, "Dimensions": dims, "Value": 1.0, "Unit": "Count", "Timestamp": t}])
    if ok is not None:
        r = call(cw.list_metrics, Namespace=p, MetricName=p, Dimensions=[{"Name": p, "Value": p}])
        call.expect(r is not None and [(m["Namespace"], m["MetricName"], m["Dimensions"])
                                      for m in r["Metrics"]] == [(p, p, dims)],
                    f"{tag} ListMetrics round trip of {p!r}: {r and r['Metrics']}")
        r = call(cw.get_metric_statistics, Namespace=p, MetricName=p, Dimensions=dims,
                 StartTime=lo, EndTime=hi, Period=60, Statistics=["Sum"])
        call.expect(r is not None and sum(d["Sum"] for d in r["Datapoints"]) == 1.0,
                    f"{tag} GetMetricStatistics of {p!r}: {r and r['Datapoints']}")
    # units, filters, tokens
    call.probe(cw.put_metric_data, Namespace="ZqInj", MetricData=[
        {"MetricName": "m", "Value": 1.0, "Unit": p}])
    call.probe(cw.get_metric_statistics, Namespace="ZqInj", MetricName="m", StartTime=NOW - 600,
         EndTime=NOW, Period=60, Statistics=["Sum"], Unit=p)
    call.probe(cw.get_metric_statistics, Namespace="ZqInj", MetricName="m", StartTime=NOW - 600,
         EndTime=NOW, Period=60, ExtendedStatistics=[p])
    call.probe(cw.list_metrics, Namespace=p)
    call.probe(cw.list_metrics, MetricName=p)
    call.probe(cw.list_metrics, Dimensions=[{"Name": p}])
    call.probe(cw.list_metrics, Dimensions=[{"Name": "n", "Value": p}])
    call.probe(cw.list_metrics, NextToken=p)
    call.probe(cw.list_metrics, OwningAccount=p, IncludeLinkedAccounts=True)
    # GetMetricData: expressions, SEARCH strings, labels, ids, tokens
    esc = p.replace("\\", "\\\\").replace('"', '\\"')
    stat = {"Metric": {"Namespace": p, "MetricName": p, "Dimensions": dims}, "Period": 60,
            "Stat": "Sum"}
    for q in (
        [{"Id": "m1", "MetricStat": stat, "Label": p}],
        [{"Id": "m1", "MetricStat": dict(stat, Stat=p)}],
        [{"Id": "m1", "MetricStat": dict(stat, Unit=p)}],
        [{"Id": "e1", "Expression": p}],
        [{"Id": "m1", "MetricStat": stat, "ReturnData": False},
         {"Id": "e1", "Expression": f"m1 * 2 + {p}", "Label": p}],
        [{"Id": "e1", "Expression": f"SEARCH('{p}', 'Sum', 60)"}],
        [{"Id": "e1", "Expression": f"SEARCH('\"{esc}\"', 'Sum', 60)"}],
        [{"Id": "e1", "Expression": f"SEARCH('{{\"{esc}\",\"{esc}\"}} MetricName=\"{esc}\"', "
                                    f"'Sum', 60)", "Label": p}],
        [{"Id": "e1", "Expression": f"SEARCH('Namespace=\"{esc}\"', '{p}', 60)"}],
        [{"Id": p, "MetricStat": stat}],
        [{"Id": "e1", "Expression": f"SELECT SUM(\"{esc}\") FROM \"{esc}\" WHERE \"{esc}\" = "
                                    f"'{p.replace(chr(39), '')}' GROUP BY \"{esc}\""}],
    ):
        send = call if q[0].get("Label") == p else call.probe
        r = send(cw.get_metric_data, MetricDataQueries=q, StartTime=lo, EndTime=hi)
        if r is not None and q[0].get("Label") == p and "MetricStat" in q[0] and ok is not None:
            got = [(x["Label"], sum(x["Values"])) for x in r["MetricDataResults"]]
            call.expect(got == [(p, 1.0)], f"{tag} GetMetricData label/value of {p!r}: {got}")
    call.probe(cw.get_metric_data, MetricDataQueries=[{"Id": "m1", "MetricStat": stat}],
         StartTime=NOW - 3600, EndTime=NOW, NextToken=p)
    # dashboards
    call.probe(cw.put_dashboard, DashboardName=p, DashboardBody='{"widgets":[]}')
    call.probe(cw.put_dashboard, DashboardName=f"zq-{i}", DashboardBody=p)
    body = json.dumps({"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 3,
                                    "properties": {"markdown": p}}]})
    if call(cw.put_dashboard, DashboardName=f"zq-{tag}-{i}", DashboardBody=body) is not None:
        r = call(cw.get_dashboard, DashboardName=f"zq-{tag}-{i}")
        call.expect(r is not None and json.loads(r["DashboardBody"]) == json.loads(body),
                    f"{tag} dashboard body round trip of {p!r}")
    call.probe(cw.get_dashboard, DashboardName=p)
    call.probe(cw.list_dashboards, DashboardNamePrefix=p)
    call.probe(cw.delete_dashboards, DashboardNames=[p])
    # alarms: names, descriptions, prefixes, tags, composite rules, state reasons
    name = f"{p}-{tag}"
    ok = call(cw.put_metric_alarm, AlarmName=name, AlarmDescription=p, Namespace=p,
              MetricName=p, Dimensions=dims, Statistic="Sum", Period=60, EvaluationPeriods=1,
              Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
              Tags=[{"Key": p, "Value": p}])
    if ok is not None:
        r = call(cw.describe_alarms, AlarmNames=[name])
        got = r and [(a["AlarmName"], a.get("AlarmDescription"), a["Namespace"], a["MetricName"],
                      a["Dimensions"]) for a in r["MetricAlarms"]]
        call.expect(got == [(name, p, p, p, dims)], f"{tag} DescribeAlarms round trip {got}")
        arn = r["MetricAlarms"][0]["AlarmArn"] if r and r["MetricAlarms"] else None
        if arn:
            t = call(cw.list_tags_for_resource, ResourceARN=arn)
            call.expect(t is not None and t["Tags"] == [{"Key": p, "Value": p}],
                        f"{tag} alarm tags round trip {t and t['Tags']}")
            call.probe(cw.tag_resource, ResourceARN=arn, Tags=[{"Key": "k", "Value": p}])
            call.probe(cw.untag_resource, ResourceARN=arn, TagKeys=[p])
        r = call(cw.describe_alarms, AlarmNamePrefix=name)
        call.expect(r is not None and [a["AlarmName"] for a in r["MetricAlarms"]] == [name],
                    f"{tag} DescribeAlarms prefix {name!r}: {r and r['MetricAlarms']}")
        call.probe(cw.set_alarm_state, AlarmName=name, StateValue="ALARM", StateReason=p)
        call.probe(cw.set_alarm_state, AlarmName=name, StateValue="OK", StateReason="x",
             StateReasonData=p)
        r = call(cw.describe_alarm_history, AlarmName=name)
        call.expect(r is not None and all(h["AlarmName"] == name for h in r["AlarmHistoryItems"])
                    and r["AlarmHistoryItems"], f"{tag} history of {name!r}")
        rule = 'ALARM("' + name.replace("\\", "\\\\").replace('"', '\\"') + '")'
        if call(cw.put_composite_alarm, AlarmName=f"c-{name}", AlarmRule=rule,
                AlarmDescription=p) is not None:
            r = call(cw.describe_alarms, AlarmNames=[f"c-{name}"], AlarmTypes=["CompositeAlarm"])
            call.expect(r is not None and [a["AlarmRule"] for a in r["CompositeAlarms"]]
                        == [rule],
                        f"{tag} composite rule round trip {r and r['CompositeAlarms']}")
        call.probe(cw.describe_alarms_for_metric, Namespace=p, MetricName=p, Dimensions=dims)
        call.probe(cw.disable_alarm_actions, AlarmNames=[name])
        call.probe(cw.enable_alarm_actions, AlarmNames=[name])
    call.probe(cw.put_composite_alarm, AlarmName=f"zqc-{tag}-{i}", AlarmRule=p)
    call.probe(cw.put_composite_alarm, AlarmName=f"zqc2-{tag}-{i}", AlarmRule=f"ALARM({p}) OR TRUE")
    call.probe(cw.put_metric_alarm, AlarmName=f"zqm-{tag}-{i}", EvaluationPeriods=1, Threshold=1.0,
         ComparisonOperator="GreaterThanThreshold", Metrics=[
             {"Id": "m1", "ReturnData": False, "MetricStat": stat},
             {"Id": "e1", "Expression": f"m1 + {p}", "Label": p}])
    call.probe(cw.put_metric_alarm, AlarmName=f"zqa-{tag}-{i}", Namespace="ZqInj", MetricName="m",
         Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1.0,
         ComparisonOperator="GreaterThanThreshold", AlarmActions=[p])
    call.probe(cw.describe_alarms, AlarmNamePrefix=p)
    call.probe(cw.describe_alarms, AlarmNames=[p], ActionPrefix=p, StateValue="ALARM")
    call.probe(cw.describe_alarms, ChildrenOfAlarmName=p)
    call.probe(cw.describe_alarms, ParentsOfAlarmName=p)
    call.probe(cw.describe_alarms, NextToken=p)
    call.probe(cw.describe_alarm_history, AlarmName=p, HistoryItemType="StateUpdate")
    call.probe(cw.describe_alarm_history, AlarmName="x", NextToken=p)
    call.probe(cw.set_alarm_state, AlarmName=p, StateValue="ALARM", StateReason="r")
    call.probe(cw.tag_resource, ResourceARN=p, Tags=[{"Key": "k", "Value": "v"}])
    call.probe(cw.list_tags_for_resource, ResourceARN=p)
    call.probe(cw.list_tags_for_resource,
         ResourceARN=f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{p}")
    call.probe(cw.delete_alarms, AlarmNames=[p])


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_cloudwatch_paths(clients, protocol):
    cw = clients["cw" if protocol == "json" else "cwq"]
    call = Calls()
    payloads = PAYLOADS if protocol == "json" or FULL else MARKED   # the codec is what differs
    each_payload(lambda i, p: _cw_paths(cw, call, p, i, protocol)
                 if protocol == "json" or _clean_for_xml(p) else None, payloads)
    call.check()
    assert call.ok > 300 and call.refused > 50, (call.ok, call.refused)


def test_query_protocol_keeps_carriage_returns(clients):
    cw, sns = clients["cwq"], clients["sns"]
    value = "zqcr\r\nline\rend"
    cw.put_metric_data(Namespace="ZqCr", MetricData=[
        {"MetricName": value, "Value": 1.0, "Timestamp": NOW - 60}])
    got = [m["MetricName"] for m in cw.list_metrics(Namespace="ZqCr")["Metrics"]]
    arn = sns.create_topic(Name="zq-cr", Attributes={"DisplayName": value})["TopicArn"]
    shown = sns.get_topic_attributes(TopicArn=arn)["Attributes"]["DisplayName"]
    assert (got, shown) == ([value], value)


def test_like_wildcards_in_prefixes_are_literal(clients):
    """``%`` and ``_`` in a prefix filter match only themselves."""
    cw, logs = clients["cw"], clients["logs"]
    for n in ("zqwild-abc", "zqwild-a_c", "zqwild-a%c"):
        cw.put_metric_alarm(AlarmName=n, Namespace="ZqInj", MetricName="m", Statistic="Sum",
                            Period=60, EvaluationPeriods=1, Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold")
    names = lambda prefix: sorted(a["AlarmName"] for a in  # noqa: E731
                                  cw.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"])
    assert names("zqwild-a%") == ["zqwild-a%c"]
    assert names("zqwild-a_") == ["zqwild-a_c"]
    assert names("zqwild-%") == []
    logs.create_log_group(logGroupName="/zqwild/a_c")
    logs.create_log_group(logGroupName="/zqwild/abc")
    groups = logs.describe_log_groups(logGroupNamePrefix="/zqwild/a_")["logGroups"]
    assert [g["logGroupName"] for g in groups] == ["/zqwild/a_c"]
    for s in ("a_c", "abc", "a%c"):
        logs.create_log_stream(logGroupName="/zqwild/abc", logStreamName=s)
    streams = logs.describe_log_streams(logGroupName="/zqwild/abc",
                                        logStreamNamePrefix="a%")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a%c"]
    streams = logs.describe_log_streams(logGroupName="/zqwild/abc",
                                        logStreamNamePrefix="a_")["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["a_c"]
    for n in ("dash-abc", "dash-a_c"):
        cw.put_dashboard(DashboardName=f"zqwild-{n}", DashboardBody='{"widgets":[]}')
    got = [d["DashboardName"] for d in
           cw.list_dashboards(DashboardNamePrefix="zqwild-dash-a_")["DashboardEntries"]]
    assert got == ["zqwild-dash-a_c"]


# -- CloudWatch Logs ---------------------------------------------------------------------------

GROUP = "/zq/inject"


def _insights(logs, call: Calls, query: str, group: str = GROUP):
    r = call(logs.start_query, logGroupName=group, startTime=NOW - 3600, endTime=NOW + 3600,
             queryString=query)
    if r is None:
        return None
    for _ in range(600):
        res = call(logs.get_query_results, queryId=r["queryId"])
        if res is None:
            return None
        if res["status"] == "Complete":
            return res["results"]
        if res["status"] in ("Failed", "Cancelled", "Timeout"):
            call.expect(False, f"Insights {query!r} ended {res['status']}")
            return None
        time.sleep(0.02)
    call.expect(False, f"Insights {query!r} did not complete")
    return None


def _insights_string(p: str) -> str:
    return '"' + p.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _insights_regex(p: str) -> str:
    out = []
    for ch in p:
        if ch.isalnum() or ch in " _":
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append("\\" + ch if ch not in "\n\r\x00" else "\\x%02x" % ord(ch))
        else:
            out.append("\\x{%x}" % ord(ch))
    return "/" + "".join(out) + "/"


def test_logs_paths(clients):
    logs = clients["logs"]
    call = Calls()
    call(logs.create_log_group, logGroupName=GROUP)
    each_payload(lambda i, p: _logs_paths(logs, call, i, p))
    call.check()
    assert call.ok > 300 and call.refused > 50, (call.ok, call.refused)


def _logs_paths(logs, call: Calls, i: int, p: str) -> None:
    call.probe(logs.create_log_group, logGroupName=p)
    call.probe(logs.describe_log_groups, logGroupNamePrefix=p)
    call.probe(logs.describe_log_groups, logGroupNamePattern=p)
    call.probe(logs.create_log_stream, logGroupName=p, logStreamName="s")
    stream = f"{p}-{i}"
    if call(logs.create_log_stream, logGroupName=GROUP, logStreamName=stream) is None:
        stream = f"s{i}-fallback"
        call(logs.create_log_stream, logGroupName=GROUP, logStreamName=stream)
    call.probe(logs.describe_log_streams, logGroupName=GROUP, logStreamNamePrefix=p)
    r = call(logs.describe_log_streams, logGroupName=GROUP, logStreamNamePrefix=stream)
    call.expect(r is not None and [s["logStreamName"] for s in r["logStreams"]] == [stream],
                f"stream prefix {stream!r}: {r and r['logStreams']}")
    ok = call(logs.put_log_events, logGroupName=GROUP, logStreamName=stream,
              logEvents=[{"timestamp": NOW * 1000, "message": p},
                         {"timestamp": NOW * 1000 + 1,
                          "message": json.dumps({"k": p, p: "v"})}])
    if ok is not None:
        r = call(logs.get_log_events, logGroupName=GROUP, logStreamName=stream,
                 startFromHead=True)
        got = r and [e["message"] for e in r["events"]]
        call.expect(got == [p, json.dumps({"k": p, p: "v"})],
                    f"GetLogEvents round trip of {p!r}: {got!r}")
    # filter patterns: raw, quoted term, JSON selector, regex
    for fp in (p, _insights_string(p), f'{{ $.k = {_insights_string(p)} }}',
               f"[a, b = {_insights_string(p)}]", "%" + p + "%", f"?{p} ?x",
               f'{{ $.{p} = "v" }}'):
        call.probe(logs.filter_log_events, logGroupName=GROUP, filterPattern=fp)
        call.probe(logs.test_metric_filter, filterPattern=fp, logEventMessages=[p, "x"])
    r = call(logs.filter_log_events, logGroupName=GROUP, logStreamNames=[stream],
             filterPattern=_insights_string(p))
    if ok is not None and p.strip() and "\x00" not in p:
        call.expect(r is not None and p in [e["message"] for e in r["events"]],
                    f"FilterLogEvents quoted term {p!r}: {r and r['events']}")
    call.probe(logs.filter_log_events, logGroupName=GROUP, logStreamNamePrefix=p)
    call.probe(logs.filter_log_events, logGroupName=p)
    call.probe(logs.filter_log_events, logGroupName=GROUP, nextToken=p)
    call.probe(logs.get_log_events, logGroupName=GROUP, logStreamName=stream, nextToken=p)
    call.probe(logs.describe_log_streams, logGroupName=GROUP, nextToken=p)
    # metric filters
    fname = f"{p}-mf"
    if call(logs.put_metric_filter, logGroupName=GROUP, filterName=fname,
            filterPattern=_insights_string(p), metricTransformations=[
                {"metricName": p, "metricNamespace": p, "metricValue": "1",
                 "dimensions": {}}]) is not None:
        r = call(logs.describe_metric_filters, logGroupName=GROUP, filterNamePrefix=fname)
        got = r and [(f["filterName"], f["metricTransformations"][0]["metricName"])
                     for f in r["metricFilters"]]
        call.expect(got == [(fname, p)], f"metric filter round trip {got!r}")
        call.probe(logs.delete_metric_filter, logGroupName=GROUP, filterName=fname)
    call.probe(logs.put_metric_filter, logGroupName=GROUP, filterName=f"zq{i}", filterPattern=p,
         metricTransformations=[{"metricName": "m", "metricNamespace": "n",
                                 "metricValue": p}])
    call.probe(logs.describe_metric_filters, metricName=p, metricNamespace=p)
    call.probe(logs.describe_metric_filters, logGroupName=GROUP, filterNamePrefix=p)
    # tags
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{GROUP}"
    if call(logs.tag_resource, resourceArn=arn, tags={p: p}) is not None:
        r = call(logs.list_tags_for_resource, resourceArn=arn)
        call.expect(r is not None and r["tags"].get(p) == p, f"log tags round trip {p!r}")
        call.probe(logs.untag_resource, resourceArn=arn, tagKeys=[p])
    call.probe(logs.tag_log_group, logGroupName=GROUP, tags={"k": p})
    call.probe(logs.list_tags_for_resource, resourceArn=p)
    call.probe(logs.put_retention_policy, logGroupName=p, retentionInDays=1)
    call.probe(logs.delete_log_stream, logGroupName=GROUP, logStreamName=p)


def test_insights_paths(clients):
    logs = clients["logs"]
    call = Calls()
    group = "/zq/insights"
    call(logs.create_log_group, logGroupName=group)
    call(logs.create_log_stream, logGroupName=group, logStreamName="s")
    events = [{"timestamp": NOW * 1000 + i, "message": p} for i, p in enumerate(PAYLOADS)]
    events += [{"timestamp": NOW * 1000 + 100 + i, "message": json.dumps({"f": p, "g": i})}
               for i, p in enumerate(PAYLOADS)]
    call(logs.put_log_events, logGroupName=group, logStreamName="s", logEvents=events)
    each_payload(lambda i, p: _insights_paths(logs, call, group, i, p))
    call.check()
    assert call.ok > 150, (call.ok, call.refused)


def _insights_paths(logs, call: Calls, group: str, i: int, p: str) -> None:
    s, rx = _insights_string(p), _insights_regex(p)
    bt = "`" + p.replace("`", "``") + "`"
    # a string literal finds exactly the event that holds it
    res = _insights(logs, call, f"filter @message = {s} | fields @message", group)
    call.expect(res is not None and [[f["value"] for f in row if f["field"] == "@message"]
                                     for row in res] == [[p]],
                f"Insights = {p!r}: {res}")
    res = _insights(logs, call, f"filter f = {s} | fields g", group)
    call.expect(res is not None and [[f["value"] for f in row if f["field"] == "g"]
                                     for row in res] == [[str(i)]],
                f"Insights JSON field = {p!r}: {res}")
    queries = [p, f"fields {bt}", f"fields {bt} | filter {bt} like {rx}",
               f"filter @message like {rx} | stats count(*) as {bt}",
               f"filter @message =~ {rx}", f"fields {s} as {bt}",
               f"parse @message {s} as {bt}", f"parse @message {rx}",
               f"fields @message | sort {bt} desc | limit 5",
               f"stats count(*) by {bt}", f"fields concat({s}, @message) as x",
               f"filter {bt} in [{s}, {s}]", f"display {bt}", f"dedup {bt}",
               f"fields replace(@message, {s}, {s}) as r",
               f"filter strcontains(@message, {s})", f"fields {s}", f"unmask({bt})",
               f"fields @message | {p}", f"# {p}\nfields @message", f"filter {p}",
               f"fields `a`.{bt}.`c`", f"fields @{bt}"]
    # every template with every payload under METRICSTORE_FULL_FUZZ=1; otherwise each
    # payload takes every ROTATE-th template (each template still meets 4 payloads)
    for q in queries[i % ROTATE::ROTATE]:
        _insights(logs, call, q, group)
    name = f"{p}-qd"
    r = call(logs.put_query_definition, name=name, queryString="fields @message")
    if r is not None:
        d = call(logs.describe_query_definitions, queryDefinitionNamePrefix=name)
        got = d and [x["name"] for x in d["queryDefinitions"]]
        call.expect(got == [name], f"query definition round trip {got!r}")
        call.probe(logs.delete_query_definition, queryDefinitionId=r["queryDefinitionId"])
    call.probe(logs.put_query_definition, name=f"zq{i}", queryString=p)
    call.probe(logs.describe_query_definitions, queryDefinitionNamePrefix=p)
    call.probe(logs.describe_queries, logGroupName=p)
    call.probe(logs.get_query_results, queryId=p)
    call.probe(logs.stop_query, queryId=p)
    call.probe(logs.get_log_record, logRecordPointer=p)
    call.probe(logs.delete_query_definition, queryDefinitionId=p)
    call.probe(logs.start_query, logGroupNames=[p], startTime=NOW - 60, endTime=NOW,
         queryString="fields @message")
    call.probe(logs.start_query, logGroupIdentifiers=[p], startTime=NOW - 60, endTime=NOW,
         queryString="fields @message")


# -- SNS ---------------------------------------------------------------------------------------

def test_sns_paths(clients):
    sns = clients["sns"]
    call = Calls()
    arn = call(sns.create_topic, Name="zq-inject")["TopicArn"]
    each_payload(lambda i, p: _sns_paths(sns, call, arn, i, p))
    call.check()
    assert call.ok > 80 and call.refused > 50, (call.ok, call.refused)


def _sns_paths(sns, call: Calls, arn: str, i: int, p: str) -> None:
    arn = call(sns.create_topic, Name=f"zq-inject-{i}")["TopicArn"]
    call.probe(sns.create_topic, Name=p)
    call.probe(sns.create_topic, Name=f"zq-{i}", Attributes={p: p})
    call.probe(sns.create_topic, Name=f"zq-t{i}", Tags=[{"Key": p, "Value": p}])
    xml_ok = _clean_for_xml(p)
    if call(sns.set_topic_attributes, TopicArn=arn, AttributeName="DisplayName",
            AttributeValue=p) is not None and xml_ok:
        r = call(sns.get_topic_attributes, TopicArn=arn)
        call.expect(r is not None and r["Attributes"].get("DisplayName") == p,
                    f"DisplayName round trip {p!r}: {r and r['Attributes'].get('DisplayName')!r}")
    call.probe(sns.set_topic_attributes, TopicArn=arn, AttributeName=p, AttributeValue="x")
    call.probe(sns.set_topic_attributes, TopicArn=arn, AttributeName="Policy", AttributeValue=p)
    if call(sns.tag_resource, ResourceArn=arn, Tags=[{"Key": p, "Value": p}]) is not None \
            and xml_ok:
        r = call(sns.list_tags_for_resource, ResourceArn=arn)
        call.expect(r is not None and {"Key": p, "Value": p} in r["Tags"],
                    f"SNS tag round trip {p!r}")
        call.probe(sns.untag_resource, ResourceArn=arn, TagKeys=[p])
    call.probe(sns.get_topic_attributes, TopicArn=p)
    call.probe(sns.get_topic_attributes, TopicArn=f"arn:aws:sns:us-east-1:000000000000:{p}")
    call.probe(sns.publish, TopicArn=arn, Message=p, Subject=p)
    call.probe(sns.publish, TopicArn=arn, Message=p, MessageAttributes={
        p: {"DataType": "String", "StringValue": p}})
    call.probe(sns.subscribe, TopicArn=arn, Protocol=p, Endpoint=p)
    call.probe(sns.subscribe, TopicArn=arn, Protocol="http", Endpoint=f"http://127.0.0.1:9/{p}")
    call.probe(sns.list_subscriptions_by_topic, TopicArn=p)
    call.probe(sns.list_topics, NextToken=p)
    call.probe(sns.unsubscribe, SubscriptionArn=p)
    call.probe(sns.confirm_subscription, TopicArn=arn, Token=p)
    call.probe(sns.delete_topic, TopicArn=p)


# -- what ran ----------------------------------------------------------------------------------

def _counts_via_api(clients) -> dict:
    cw, logs, sns = clients["cw"], clients["logs"], clients["sns"]
    alarms = 0
    for page in cw.get_paginator("describe_alarms").paginate(
            AlarmTypes=["MetricAlarm", "CompositeAlarm"]):
        alarms += len(page["MetricAlarms"]) + len(page["CompositeAlarms"])
    groups = sum(len(p["logGroups"]) for p in logs.get_paginator("describe_log_groups").paginate())
    dashboards = sum(len(p["DashboardEntries"])
                     for p in cw.get_paginator("list_dashboards").paginate())
    topics = sum(len(p["Topics"]) for p in sns.get_paginator("list_topics").paginate())
    return {"alarms": alarms, "log_groups": groups, "dashboards": dashboards,
            "sns_topics": topics}


def test_no_user_text_reached_sql_and_database_intact(traced, clients):
    """Runs last: stops the server, then reads DuckDB's query log and the database file."""
    api = _counts_via_api(clients)
    assert api["alarms"] > 20 and api["log_groups"] >= 3, api
    assert traced.stop() == 0
    assert "Traceback" not in traced.log(), traced.log()[-5000:]

    texts = []
    for f in sorted(traced.trace.rglob("duckdb_log_entries.csv")):
        texts.append(f.read_text(errors="replace"))
    log = "\n".join(texts)
    # not vacuous: the log holds the server's own statements of this run
    for expected in ("INSERT INTO log_events", "FROM series", "alarms", "sns_topics",
                     "dashboards", "SET enable_progress_bar"):
        assert expected in log, expected
    assert log.count("QueryLog") > 1000, log.count("QueryLog")
    leaked = [m for m in MARKERS if m in log]
    assert not leaked, [ln for ln in log.splitlines() if any(m in ln for m in leaked)][:20]
    # a statement split off a payload would not carry its marker: look for its tail too
    for word in ("zz_sentinel", "zqinj_pwn", "COPY series", "DELETE FROM series"):
        assert word not in log, [ln for ln in log.splitlines() if word in ln][:5]
    assert not Path("/tmp/zqinj_pwn.csv").exists()

    con = duckdb.connect(str(traced.db), read_only=True)
    try:
        assert con.execute("SELECT * FROM zz_sentinel ORDER BY id").fetchall() == [
            (1, "a"), (2, "b"), (3, "c")]
        found = set(con.execute(CATALOG).fetchall())
        db = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("alarms", "log_groups", "dashboards", "sns_topics")}
        series = con.execute("SELECT count(*) FROM series WHERE namespace LIKE 'zqinj%'"
                             ).fetchone()[0]
    finally:
        con.close()
    assert found == traced.baseline, (found - traced.baseline, traced.baseline - found)
    assert ("table", "main.zz_sentinel") in found
    assert db == api, (db, api)
    assert series >= 10, series
