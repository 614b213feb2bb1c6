"""The alarm API as the SDKs see it, in the three CloudWatch protocols: PutMetricAlarm /
PutCompositeAlarm with AWS's validation errors, DescribeAlarms (filters, families, paging),
DescribeAlarmsForMetric, DescribeAlarmHistory, SetAlarmState, DeleteAlarms, Enable/Disable
actions, tags.  Evaluation over time is in test_alarms_live.py.

Alarms here have no data and TreatMissingData=ignore unless the test needs otherwise, so the
server's evaluation tick never changes their state under the test.
"""
from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.conftest import PROTOCOLS, assert_aws_error, make_client


# One client per protocol for the whole module (building a botocore client costs ~1 s).
@pytest.fixture(scope="module", params=list(PROTOCOLS))
def cw(request, server, model_dirs):
    return make_client("cloudwatch", server.url, request.param, model_dirs)


@pytest.fixture(scope="module", params=list(PROTOCOLS))
def cw_raw(request, server, model_dirs):
    return make_client("cloudwatch", server.url, request.param, model_dirs, validate=False)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def metric_alarm(cw, name: str, **overrides):
    params = dict(AlarmName=name, Namespace="Api/Test", MetricName="m", Statistic="Average",
                  Period=60, EvaluationPeriods=3, Threshold=5.0,
                  ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore")
    params.update(overrides)
    for key in [k for k, v in params.items() if v is None]:
        del params[key]
    cw.put_metric_alarm(**params)
    return params


def describe(cw, name: str) -> dict:
    got = cw.describe_alarms(AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    (alarm,) = got["MetricAlarms"] + got["CompositeAlarms"]
    return alarm


def test_put_and_describe_metric_alarm(cw):
    name = uid("cpu")
    arn_prefix = "arn:aws:sns:us-east-1:000000000000:"
    metric_alarm(cw, name, AlarmDescription="too hot", Dimensions=[
        {"Name": "InstanceId", "Value": "i-1"}], Unit="Percent", DatapointsToAlarm=2,
        AlarmActions=[arn_prefix + "a"], OKActions=[arn_prefix + "o"],
        ComparisonOperator="GreaterThanOrEqualToThreshold")
    alarm = describe(cw, name)
    assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{name}"
    assert {k: alarm[k] for k in ("AlarmDescription", "Namespace", "MetricName", "Statistic",
                                  "Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm",
                                  "Threshold", "ComparisonOperator", "TreatMissingData",
                                  "ActionsEnabled", "AlarmActions", "OKActions",
                                  "InsufficientDataActions", "Dimensions")} == {
        "AlarmDescription": "too hot", "Namespace": "Api/Test", "MetricName": "m",
        "Statistic": "Average", "Period": 60, "Unit": "Percent", "EvaluationPeriods": 3,
        "DatapointsToAlarm": 2, "Threshold": 5.0,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold", "TreatMissingData": "ignore",
        "ActionsEnabled": True, "AlarmActions": [arn_prefix + "a"], "OKActions": [arn_prefix + "o"],
        "InsufficientDataActions": [], "Dimensions": [{"Name": "InstanceId", "Value": "i-1"}]}
    assert alarm["StateValue"] == "INSUFFICIENT_DATA"
    assert alarm["StateReason"] == "Unchecked: Initial alarm creation"
    assert "StateReasonData" not in alarm
    assert alarm["StateUpdatedTimestamp"] == alarm["StateTransitionedTimestamp"]
    for_metric = cw.describe_alarms_for_metric(MetricName="m", Namespace="Api/Test", Dimensions=[
        {"Name": "InstanceId", "Value": "i-1"}])["MetricAlarms"]
    assert name in [a["AlarmName"] for a in for_metric]
    assert name not in [a["AlarmName"] for a in cw.describe_alarms_for_metric(
        MetricName="m", Namespace="Api/Test")["MetricAlarms"] if a.get("Dimensions") == []]
    created = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert [(h["HistoryItemType"], h["HistorySummary"]) for h in created] == [
        ("ConfigurationUpdate", f'Alarm "{name}" created')]
    data = json.loads(created[0]["HistoryData"])
    assert data["type"] == "Create" and data["createdAlarm"]["okactions"] == [arn_prefix + "o"]


def test_metric_math_and_percentile_alarms_are_stored(cw):
    name = uid("math")
    cw.put_metric_alarm(AlarmName=name, EvaluationPeriods=2, Threshold=1.0,
                        ComparisonOperator="GreaterThanThreshold", TreatMissingData="ignore",
                        Metrics=[{"Id": "e1", "Expression": "errors / requests * 100",
                                  "ReturnData": True},
                                 {"Id": "errors", "ReturnData": False, "MetricStat": {
                                     "Metric": {"Namespace": "Api/Test", "MetricName": "errors"},
                                     "Period": 60, "Stat": "Sum"}},
                                 {"Id": "requests", "ReturnData": False, "MetricStat": {
                                     "Metric": {"Namespace": "Api/Test", "MetricName": "requests"},
                                     "Period": 60, "Stat": "Sum"}}])
    alarm = describe(cw, name)
    assert [m["Id"] for m in alarm["Metrics"]] == ["e1", "errors", "requests"]
    assert "MetricName" not in alarm and "Period" not in alarm
    found = cw.describe_alarms_for_metric(MetricName="errors", Namespace="Api/Test")["MetricAlarms"]
    assert name in [a["AlarmName"] for a in found]
    p99 = uid("p99")
    metric_alarm(cw, p99, Statistic=None, ExtendedStatistic="p99",
                 EvaluateLowSampleCountPercentile="ignore")
    assert describe(cw, p99)["ExtendedStatistic"] == "p99"


# (parameters, error code, HTTP status, message or None)
INVALID_METRIC_ALARMS = [
    (dict(Period=45), "ValidationError", 400, "Period must be 10, 20, 30 or a multiple of 60"),
    (dict(Period=60, EvaluationPeriods=1441), "ValidationError", 400,
     "Metrics cannot be checked across more than a day (EvaluationPeriods * Period must be <= 86400)"),
    (dict(Period=3600, EvaluationPeriods=169), "ValidationError", 400,
     "Metrics cannot be checked across more than a week (EvaluationPeriods * Period must be <= 604800)"),
    (dict(DatapointsToAlarm=4), "ValidationError", 400,
     "DatapointsToAlarm must be less than or equal to EvaluationPeriods"),
    (dict(ExtendedStatistic="p90"), "InvalidParameterCombination", 400,
     "The parameters Statistic and ExtendedStatistic are mutually exclusive and you have "
     "specified both."),
    (dict(Statistic=None), "MissingParameter", 400,
     "The parameter Statistic or ExtendedStatistic is required."),
    (dict(Statistic=None, ExtendedStatistic="p100.5"), "InvalidParameterValue", 400, None),
    (dict(Period=None), "MissingParameter", 400, "The parameter Period is required."),
    (dict(MetricName=None, Namespace=None, Statistic=None, Period=None), "ValidationError", 400,
     "For each PutMetricAlarm operation, you must specify either MetricName or a Metrics array."),
    (dict(TreatMissingData="sometimes"), "ValidationError", 400, None),
    (dict(Threshold=None), "ValidationError", 400,
     "ComparisonOperator GreaterThanThreshold requires a Threshold."),
    (dict(ComparisonOperator="LessThanLowerThreshold"), "ValidationError", 400, None),
    (dict(Statistic="Median"), "ValidationError", 400, None),
    (dict(AlarmActions=["a", "b", "c", "d", "e", "f"]), "ValidationError", 400, None),
    (dict(AlarmActions=["arn:aws:sns:us-east-1:000000000000:t"] * 6), "ValidationError", 400,
     None),
    (dict(Metrics=[{"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "x"},
                                                "Period": 60, "Stat": "Sum"}}]),
     "ValidationError", 400, "Metrics cannot be used with MetricName, Namespace, Dimensions, "
                             "Period, Unit, Statistic or ExtendedStatistic."),
]


@pytest.mark.parametrize("overrides,code,status,message", INVALID_METRIC_ALARMS,
                         ids=[str(i) for i in range(len(INVALID_METRIC_ALARMS))])
def test_put_metric_alarm_validation(cw_raw, overrides, code, status, message):
    name = uid("bad")
    with pytest.raises(ClientError) as e:
        metric_alarm(cw_raw, name, **overrides)
    assert_aws_error(e, code, status, message)
    assert cw_raw.describe_alarms(AlarmNames=[name])["MetricAlarms"] == []


INVALID_MATH = [
    ([{"Id": "a", "Expression": "b * 2"}, {"Id": "b", "Expression": "a * 2"}], None),
    ([{"Id": "e1", "Expression": "m1 * 2"},
      {"Id": "m1", "MetricStat": {"Metric": {"Namespace": "N", "MetricName": "x"}, "Period": 60,
                                  "Stat": "Sum"}}],
     "Exactly one element of the metrics list should return data."),
    ([{"Id": "e1", "Expression": "nope * 2", "ReturnData": True}],
     "Error in expression 'e1': Unrecognized metric 'nope'."),
    ([{"Id": "E1", "Expression": "2", "ReturnData": True}],
     "Invalid metrics list: the id 'E1' must start with a lowercase letter and contain only "
     "letters, numbers and underscores."),
    ([{"Id": "e1", "Expression": "m1 +", "ReturnData": True},
      {"Id": "m1", "ReturnData": False, "MetricStat": {
          "Metric": {"Namespace": "N", "MetricName": "x"}, "Period": 60, "Stat": "Sum"}}], None),
]


@pytest.mark.parametrize("metrics,message", INVALID_MATH, ids=[str(i) for i in range(len(INVALID_MATH))])
def test_math_alarm_validation(cw_raw, metrics, message):
    with pytest.raises(ClientError) as e:
        cw_raw.put_metric_alarm(AlarmName=uid("m"), EvaluationPeriods=1, Threshold=1.0,
                                ComparisonOperator="GreaterThanThreshold", Metrics=metrics)
    assert_aws_error(e, "ValidationError", 400, message)


def test_update_keeps_state_and_records_history(cw):
    name = uid("upd")
    metric_alarm(cw, name)
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="forced",
                       StateReasonData='{"why": "test"}')
    before = describe(cw, name)
    metric_alarm(cw, name, Threshold=50.0, AlarmDescription="updated")
    after = describe(cw, name)
    assert (after["StateValue"], after["StateReason"], after["StateReasonData"]) == (
        "ALARM", "forced", '{"why": "test"}')
    assert after["Threshold"] == 50.0 and after["AlarmDescription"] == "updated"
    assert after["StateTransitionedTimestamp"] == before["StateTransitionedTimestamp"]
    assert after["AlarmConfigurationUpdatedTimestamp"] >= before["AlarmConfigurationUpdatedTimestamp"]
    items = cw.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")["AlarmHistoryItems"]
    assert [i["HistorySummary"] for i in items] == [
        f'Alarm "{name}" created', "Alarm updated from INSUFFICIENT_DATA to ALARM",
        f'Alarm "{name}" updated']
    state = json.loads(items[1]["HistoryData"])
    assert state == {"version": "1.0",
                     "oldState": {"stateValue": "INSUFFICIENT_DATA",
                                  "stateReason": "Unchecked: Initial alarm creation"},
                     "newState": {"stateValue": "ALARM", "stateReason": "forced",
                                  "stateReasonData": {"why": "test"}}}


def test_set_alarm_state_errors(cw_raw):
    name = uid("s")
    metric_alarm(cw_raw, name)
    with pytest.raises(ClientError) as e:
        cw_raw.set_alarm_state(AlarmName=name, StateValue="INVALID", StateReason="x")
    assert_aws_error(e, "ValidationError", 400,
                     "1 validation error detected: Value 'INVALID' at 'stateValue' failed to "
                     "satisfy constraint: Member must satisfy enum value set: "
                     "[INSUFFICIENT_DATA, ALARM, OK]")
    with pytest.raises(ClientError) as e:
        cw_raw.set_alarm_state(AlarmName=uid("missing"), StateValue="OK", StateReason="x")
    assert_aws_error(e, "ResourceNotFound", 404)
    with pytest.raises(ClientError) as e:
        cw_raw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="x",
                               StateReasonData="{not json")
    assert_aws_error(e, "InvalidFormat", 400, "Data was not syntactically valid JSON")
    assert describe(cw_raw, name)["StateValue"] == "INSUFFICIENT_DATA"


def test_composite_alarms(cw):
    a, b, parent, top, steady = uid("a"), uid("b"), uid("parent"), uid("top"), uid("steady")
    metric_alarm(cw, a)
    metric_alarm(cw, b)
    rule = f'ALARM({a}) AND NOT ALARM("{b}")'
    cw.put_composite_alarm(AlarmName=parent, AlarmRule=rule)
    cw.put_composite_alarm(AlarmName=top, AlarmRule=f"ALARM({parent}) OR FALSE",
                           ActionsSuppressor=b, ActionsSuppressorWaitPeriod=60,
                           ActionsSuppressorExtensionPeriod=120)
    cw.put_composite_alarm(AlarmName=steady, AlarmRule=f"ALARM({a})", ActionsSuppressor=b,
                           ActionsSuppressorWaitPeriod=60, ActionsSuppressorExtensionPeriod=120)
    created = describe(cw, parent)
    assert created["AlarmRule"] == rule
    assert cw.describe_alarms(AlarmNames=[parent])["CompositeAlarms"] == []   # metric alarms only
    children = cw.describe_alarms(ChildrenOfAlarmName=parent)
    assert sorted(x["AlarmName"] for x in children["MetricAlarms"]) == sorted([a, b])
    parents = cw.describe_alarms(ParentsOfAlarmName=parent)
    assert sorted(x["AlarmName"] for x in parents["CompositeAlarms"]) == [top]
    # a child's SetAlarmState re-evaluates its parents at once
    cw.set_alarm_state(AlarmName=a, StateValue="ALARM", StateReason="test")
    got = describe(cw, parent)
    assert got["StateValue"] == "ALARM"
    assert got["StateReason"].startswith(
        f"arn:aws:cloudwatch:us-east-1:000000000000:alarm:{a} transitioned to ALARM at ")
    data = json.loads(got["StateReasonData"])
    assert data["triggeringAlarms"][0]["arn"].endswith(f":alarm:{a}")
    assert data["triggeringAlarms"][0]["state"]["value"] == "ALARM"
    assert describe(cw, top)["StateValue"] == "ALARM"
    assert describe(cw, top)["ActionsSuppressedBy"] == "WaitPeriod"
    # the suppressor goes into ALARM: actions are suppressed by it, and the parent goes OK
    cw.set_alarm_state(AlarmName=b, StateValue="ALARM", StateReason="maintenance")
    assert describe(cw, parent)["StateValue"] == "OK"
    assert describe(cw, top)["ActionsSuppressedBy"] == "Alarm"
    assert describe(cw, steady)["ActionsSuppressedBy"] == "Alarm"
    cw.set_alarm_state(AlarmName=b, StateValue="OK", StateReason="done")
    # steady keeps its state: the ExtensionPeriod runs; top changes state during it, which
    # starts a new WaitPeriod instead (R6.5)
    assert describe(cw, steady)["ActionsSuppressedBy"] == "ExtensionPeriod"
    assert describe(cw, steady)["ActionsSuppressedReason"] == "Actions suppressed by ExtensionPeriod"
    assert describe(cw, top)["ActionsSuppressedBy"] == "WaitPeriod"
    # deleting a child is refused while a composite depends on it
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[a])
    assert_aws_error(e, "ValidationError", 400,
                     f"Cannot delete {a} as there are composite alarm(s) depending on it.")
    with pytest.raises(ClientError) as e:
        cw.delete_alarms(AlarmNames=[parent, top])
    assert_aws_error(e, "ValidationError", 400)
    cw.delete_alarms(AlarmNames=[top])
    cw.delete_alarms(AlarmNames=[steady])
    cw.delete_alarms(AlarmNames=[parent, a])        # a composite and its child together
    assert cw.describe_alarms(AlarmNames=[a, parent],
                              AlarmTypes=["MetricAlarm", "CompositeAlarm"]) ["MetricAlarms"] == []
    # history survives deletion
    items = cw.describe_alarm_history(AlarmName=parent, AlarmTypes=["CompositeAlarm"])
    assert items["AlarmHistoryItems"][0]["HistorySummary"] == f'Alarm "{parent}" deleted'


def test_actions_that_cannot_run_are_recorded_as_failed(cw):
    name = uid("odd")
    metric_alarm(cw, name, AlarmActions=["not-an-arn", "arn:aws:lambda:us-east-1:000000000000:function:f"])
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="x")
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert sorted(a["HistorySummary"].split(".")[0] for a in actions) == [
        "Failed to execute action arn:aws:lambda:us-east-1:000000000000:function:f",
        "Failed to execute action not-an-arn"]
    composite = uid("odd-c")
    cw.put_composite_alarm(AlarmName=composite, AlarmRule=f"ALARM({name})", AlarmActions=["x"])
    assert describe(cw, composite)["AlarmActions"] == ["x"]


INVALID_RULES = [
    ("ALARM(x) OR ALARM(y", "Error in AlarmRule [Unexpected end of AlarmRule at char 19]"),
    (" ALARM(x)", "AlarmRule must not contain leading or trailing whitespace or be null"),
    ("ALARM(nothing-like-this)",
     "Could not save the composite alarm as alarms [nothing-like-this] in the alarm rule do not exist"),
    ("ALARM(x) XOR ALARM(y)", None),
]


@pytest.mark.parametrize("rule,message", INVALID_RULES, ids=[str(i) for i in range(len(INVALID_RULES))])
def test_put_composite_alarm_validation(cw_raw, rule, message):
    with pytest.raises(ClientError) as e:
        cw_raw.put_composite_alarm(AlarmName=uid("c"), AlarmRule=rule)
    assert_aws_error(e, "ValidationError", 400, message)


def test_composite_cycle_is_rejected(cw):
    x, c1, c2 = uid("x"), uid("c1"), uid("c2")
    metric_alarm(cw, x)
    cw.put_composite_alarm(AlarmName=c1, AlarmRule=f"ALARM({x})")
    cw.put_composite_alarm(AlarmName=c2, AlarmRule=f"ALARM({c1})")
    with pytest.raises(ClientError) as e:
        cw.put_composite_alarm(AlarmName=c1, AlarmRule=f"ALARM({c2})")
    assert_aws_error(e, "ValidationError", 400)
    assert c2 in e.value.response["Error"]["Message"]
    assert describe(cw, c1)["AlarmRule"] == f"ALARM({x})"


def test_describe_alarms_filters_and_paging(cw):
    prefix = uid("page")
    names = [f"{prefix}-{i:02d}" for i in range(7)]
    for i, name in enumerate(names):
        metric_alarm(cw, name, AlarmActions=[f"arn:aws:sns:us-east-1:000000000000:t{i % 2}"])
    cw.set_alarm_state(AlarmName=names[3], StateValue="OK", StateReason="x")
    got, token = [], None
    while True:
        page = cw.describe_alarms(AlarmNamePrefix=prefix, MaxRecords=3,
                                  **({"NextToken": token} if token else {}))
        assert len(page["MetricAlarms"]) <= 3
        got += [a["AlarmName"] for a in page["MetricAlarms"]]
        token = page.get("NextToken")
        if not token:
            break
    assert got == names
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=prefix, StateValue="OK")[
        "MetricAlarms"]] == [names[3]]
    odd = cw.describe_alarms(AlarmNamePrefix=prefix,
                             ActionPrefix="arn:aws:sns:us-east-1:000000000000:t1")["MetricAlarms"]
    assert [a["AlarmName"] for a in odd] == names[1::2]
    with pytest.raises(ClientError) as e:
        cw.describe_alarms(NextToken="garbage")
    assert_aws_error(e, "InvalidNextToken", 400)
    with pytest.raises(ClientError) as e:
        cw.describe_alarms(AlarmNames=[names[0]], AlarmNamePrefix=prefix)
    assert_aws_error(e, "InvalidParameterCombination", 400)


def test_alarm_history_paging_and_filters(cw):
    name = uid("hist")
    metric_alarm(cw, name)
    for value in ("ALARM", "OK", "ALARM", "OK"):
        cw.set_alarm_state(AlarmName=name, StateValue=value, StateReason=value.lower())
    pages, token = [], None
    while True:
        page = cw.describe_alarm_history(AlarmName=name, HistoryItemType="StateUpdate",
                                         MaxRecords=3, **({"NextToken": token} if token else {}))
        pages.append([i["HistorySummary"] for i in page["AlarmHistoryItems"]])
        token = page.get("NextToken")
        if not token:
            break
    assert pages == [["Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM",
                      "Alarm updated from ALARM to OK"],
                     ["Alarm updated from INSUFFICIENT_DATA to ALARM"]]
    ascending = cw.describe_alarm_history(AlarmName=name, ScanBy="TimestampAscending")
    assert ascending["AlarmHistoryItems"][0]["HistoryItemType"] == "ConfigurationUpdate"
    first = ascending["AlarmHistoryItems"][1]["Timestamp"]
    later = cw.describe_alarm_history(AlarmName=name, StartDate=first, HistoryItemType="StateUpdate")
    assert len(later["AlarmHistoryItems"]) == 4
    assert cw.describe_alarm_history(AlarmName=name, AlarmTypes=["CompositeAlarm"])[
        "AlarmHistoryItems"] == []


def test_enable_and_disable_actions(cw):
    name = uid("act")
    metric_alarm(cw, name, AlarmActions=["arn:aws:sns:us-east-1:000000000000:nowhere"])
    cw.disable_alarm_actions(AlarmNames=[name])
    assert describe(cw, name)["ActionsEnabled"] is False
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="quiet")
    items = cw.describe_alarm_history(AlarmName=name)["AlarmHistoryItems"]
    assert [i["HistoryItemType"] for i in items] == ["StateUpdate", "ConfigurationUpdate"]
    cw.enable_alarm_actions(AlarmNames=[name])
    cw.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="loud")
    cw.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="loud")
    actions = cw.describe_alarm_history(AlarmName=name, HistoryItemType="Action")["AlarmHistoryItems"]
    assert len(actions) == 1
    assert actions[0]["HistorySummary"].startswith(
        "Failed to execute action arn:aws:sns:us-east-1:000000000000:nowhere")
    assert json.loads(actions[0]["HistoryData"])["actionState"] == "Failed"


def test_alarm_tags(cw):
    name = uid("tags")
    metric_alarm(cw, name, Tags=[{"Key": "team", "Value": "core"}])
    arn = describe(cw, name)["AlarmArn"]
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "core"}]
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": "env", "Value": "prod"}])
    cw.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    metric_alarm(cw, name, Tags=[{"Key": "ignored", "Value": "on update"}])
    assert cw.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as e:
        cw.list_tags_for_resource(ResourceARN=arn + "-gone")
    assert_aws_error(e, "ResourceNotFoundException", 404)
