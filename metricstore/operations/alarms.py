"""CloudWatch alarm operations: PutMetricAlarm, PutCompositeAlarm, DescribeAlarms,
DescribeAlarmsForMetric, DescribeAlarmHistory, SetAlarmState, DeleteAlarms,
Enable/DisableAlarmActions (tags: see tags.py, which looks alarms up here).

AWS references: API_PutMetricAlarm, API_PutCompositeAlarm, API_DescribeAlarms,
API_DescribeAlarmHistory, API_SetAlarmState, API_DeleteAlarms, and reference/alarms.md.
The alarms themselves live in :class:`alarms.scheduler.AlarmService` (``ctx.server.alarms``);
these functions validate the AWS way and call it under its lock.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re

from alarms.model import COMPARISON_OPERATORS, STATIC_OPERATORS
from alarms.rule import (aws_message, find_cycle, parse_rule, referenced_in_order)
from alarms.scheduler import COMPOSITE, METRIC, Entry, math_period
from metricstore.store import alarms as sql
from query import metric_math
from query.errors import QueryError

from ..errors import (ServiceError, invalid_parameter_combination, invalid_parameter_value,
                      missing_parameter)
from ..store.metrics import dim_key
from . import Context, operation
from .metrics import StatSpec
from .tags import RESOURCE_EXISTS

TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
LOW_SAMPLE = ("evaluate", "ignore")
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_METRICS = 10


def _invalid(message: str) -> ServiceError:
    """CloudWatch's ValidationError with a plain message (no "N validation errors" head)."""
    return ServiceError("ValidationException", message, status=400, query_code="ValidationError",
                        namespace="com.amazon.coral.validate")


def _service(ctx: Context):
    return ctx.server.alarms


# ---- PutMetricAlarm ---------------------------------------------------------------------------

_METRIC_KEYS = ("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                "InsufficientDataActions", "MetricName", "Namespace", "Statistic",
                "ExtendedStatistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
                "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
                "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId",
                "ActionConfiguration")
_UNSUPPORTED = ("EvaluationCriteria", "EvaluationWindow", "WarmUpConfiguration",
                "EvaluationInterval")


def _check_name(name: str) -> None:
    if _CONTROL.search(name):
        raise _invalid("AlarmName must not contain ASCII control characters.")


def _check_period_window(period: int, evaluation_periods: int) -> None:
    if not (period in (10, 20, 30) or (period >= 60 and period % 60 == 0)):
        raise _invalid("Period must be 10, 20, 30 or a multiple of 60")
    if period < 3600 and period * evaluation_periods > 86400:
        raise _invalid("Metrics cannot be checked across more than a day "
                       "(EvaluationPeriods * Period must be <= 86400)")
    if period * evaluation_periods > 604800:
        raise _invalid("Metrics cannot be checked across more than a week "
                       "(EvaluationPeriods * Period must be <= 604800)")


def _check_metrics(metrics: list[dict], threshold_metric_id: str | None) -> int:
    """Validate a metric-math alarm's Metrics; return their common period."""
    if len(metrics) > MAX_METRICS:
        raise _invalid(f"The collection Metrics must not have a size greater than {MAX_METRICS}.")
    ids = set()
    for q in metrics:
        qid = q["Id"]
        if not _ID.match(qid):
            raise _invalid(f"Invalid metrics list: the id '{qid}' must start with a lowercase "
                           "letter and contain only letters, numbers and underscores.")
        if qid in ids:
            raise _invalid(f"Invalid metrics list: the id '{qid}' is used more than once.")
        ids.add(qid)
        if ("MetricStat" in q) == ("Expression" in q):
            raise _invalid(f"Invalid metrics list: the element '{qid}' must specify exactly one "
                           "of MetricStat and Expression.")
    returning = [q for q in metrics if q.get("ReturnData", True)]
    if len(returning) != 1:
        raise _invalid("Exactly one element of the metrics list should return data.")
    periods = set()
    for q in metrics:
        if "MetricStat" in q:
            stat = q["MetricStat"]
            periods.add(stat["Period"])
            try:
                StatSpec.parse(stat["Stat"], "Metrics.MetricStat.Stat")
            except ServiceError:
                raise _invalid(f"Invalid metrics list: the element '{q['Id']}' has an invalid "
                               f"statistic {stat['Stat']}.") from None
        else:
            try:
                expr = metric_math.parse(q["Expression"])
            except QueryError as e:
                raise _invalid(f"Error in expression '{q['Id']}': {e.message}") from None
            for ref in sorted(metric_math.referenced_ids(expr)):
                if ref not in ids:
                    raise _invalid(f"Error in expression '{q['Id']}': Unrecognized metric '{ref}'.")
            if q.get("Period"):
                periods.add(q["Period"])
    if threshold_metric_id is not None and threshold_metric_id not in ids:
        raise _invalid(f"ThresholdMetricId {threshold_metric_id} does not match any Id in the "
                       f"metrics list.")
    if len(periods) > 1:
        raise _invalid("All metrics in an alarm's Metrics list must have the same Period.")
    period = math_period(metrics)
    if period is None:
        raise _invalid("Invalid metrics list: at least one element must specify a MetricStat "
                       "or a Period.")
    return period


@operation("cloudwatch", "PutMetricAlarm")
async def put_metric_alarm(ctx: Context, AlarmName: str, Tags=None, **params):
    _check_name(AlarmName)
    for name in _UNSUPPORTED:
        if params.get(name) is not None:
            raise invalid_parameter_value(f"The parameter {name} is not supported by metricstore.")
    config = {k: params[k] for k in _METRIC_KEYS if params.get(k) is not None}
    config.setdefault("ActionsEnabled", True)
    for required in ("EvaluationPeriods", "ComparisonOperator"):
        if required not in config:
            raise missing_parameter(f"The parameter {required} is required.")
    n = config["EvaluationPeriods"]
    m = config.get("DatapointsToAlarm")
    op = config["ComparisonOperator"]
    if op not in COMPARISON_OPERATORS:   # the model's enum check already answers; belt and braces
        raise _invalid(f"Invalid ComparisonOperator: {op}")
    if m is not None and m > n:
        raise _invalid("DatapointsToAlarm must be less than or equal to EvaluationPeriods")
    treat = config.get("TreatMissingData")
    if treat is not None and treat not in TREAT_MISSING_DATA:
        raise _invalid(f"Invalid value for TreatMissingData: {treat}. Valid values are "
                       f"{', '.join(TREAT_MISSING_DATA)}.")
    low = config.get("EvaluateLowSampleCountPercentile")
    if low is not None and low not in LOW_SAMPLE:
        raise _invalid(f"Invalid value for EvaluateLowSampleCountPercentile: {low}. Valid values "
                       f"are {', '.join(LOW_SAMPLE)}.")
    metrics = config.get("Metrics")
    if metrics is not None and not metrics:
        raise _invalid("Exactly one element of the metrics list should return data.")
    if metrics:
        mixed = [k for k in ("MetricName", "Namespace", "Dimensions", "Period", "Unit",
                             "Statistic", "ExtendedStatistic") if k in config]
        if mixed:
            raise _invalid("Metrics cannot be used with MetricName, Namespace, Dimensions, "
                           "Period, Unit, Statistic or ExtendedStatistic.")
        period = _check_metrics(metrics, config.get("ThresholdMetricId"))
        _check_period_window(period, n)
    else:
        if "MetricName" not in config:
            raise _invalid("For each PutMetricAlarm operation, you must specify either "
                           "MetricName or a Metrics array.")
        if config.get("ThresholdMetricId") is not None:
            raise _invalid("ThresholdMetricId can only be used with Metrics.")
        for required in ("Namespace", "Period"):
            if required not in config:
                raise missing_parameter(f"The parameter {required} is required.")
        if "Statistic" in config and "ExtendedStatistic" in config:
            raise invalid_parameter_combination(
                "The parameters Statistic and ExtendedStatistic are mutually exclusive and you "
                "have specified both.")
        if "Statistic" not in config and "ExtendedStatistic" not in config:
            raise missing_parameter("The parameter Statistic or ExtendedStatistic is required.")
        if "ExtendedStatistic" in config:
            spec = StatSpec.parse(config["ExtendedStatistic"], "ExtendedStatistic")
            if spec.ext is None:
                raise invalid_parameter_value(
                    f"The value {config['ExtendedStatistic']} for parameter ExtendedStatistic "
                    f"is not a valid statistic.")
        _check_period_window(config["Period"], n)
        _check_dimensions(config.get("Dimensions") or [])
    if op in STATIC_OPERATORS:
        if "Threshold" not in config:
            raise _invalid(f"ComparisonOperator {op} requires a Threshold.")
        if config.get("ThresholdMetricId") is not None:
            raise _invalid("ThresholdMetricId cannot be used with a static threshold "
                           f"ComparisonOperator ({op}).")
    else:
        # Band operators compare against an ANOMALY_DETECTION_BAND expression, which needs an
        # anomaly detector: metricstore has none yet.
        if config.get("ThresholdMetricId") is None:
            raise _invalid(f"ComparisonOperator {op} can only be used with a ThresholdMetricId "
                           "that refers to an ANOMALY_DETECTION_BAND expression in Metrics.")
        raise invalid_parameter_value(
            "Anomaly detection alarms (ANOMALY_DETECTION_BAND) are not supported by "
            "metricstore yet.")
    # CloudWatch does not validate action ARNs (reference R5.1): a bad one fails when it runs.
    _check_tags(Tags)
    service = _service(ctx)
    async with service.lock:
        previous = service.get(ctx.account, ctx.region, AlarmName)
        if previous is not None and previous.kind != METRIC:
            raise _invalid(f"The alarm {AlarmName} is a composite alarm: use PutCompositeAlarm "
                           "to update it.")
        entry = service.build(ctx.account, ctx.region, AlarmName, METRIC, config, ctx.now())
        await service.put(entry, previous, Tags)
    return {}


def _check_dimensions(dimensions: list[dict]) -> None:
    seen = set()
    for i, d in enumerate(dimensions, 1):
        if d["Name"] in seen:
            raise invalid_parameter_value(
                f"The parameter Dimensions.member.{i}.Name has a duplicate value {d['Name']}; "
                "dimension names must be unique.")
        seen.add(d["Name"])


def _check_tags(tags) -> None:
    if not tags:
        return
    if len(tags) > 50:
        raise ServiceError("LimitExceededFault", "The maximum number of tags (50) for this "
                           "resource has been exceeded.")
    keys = [t["Key"] for t in tags]
    if len(set(keys)) != len(keys):
        raise invalid_parameter_value("Duplicate tag keys are not allowed.")


# ---- PutCompositeAlarm --------------------------------------------------------------------------

_COMPOSITE_KEYS = ("AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                   "InsufficientDataActions", "AlarmRule", "ActionsSuppressor",
                   "ActionsSuppressorWaitPeriod", "ActionsSuppressorExtensionPeriod",
                   "ActionConfiguration")


@operation("cloudwatch", "PutCompositeAlarm")
async def put_composite_alarm(ctx: Context, AlarmName: str, AlarmRule: str, Tags=None, **params):
    _check_name(AlarmName)
    if AlarmRule != AlarmRule.strip():
        raise _invalid("AlarmRule must not contain leading or trailing whitespace or be null")
    try:
        rule = parse_rule(AlarmRule)
    except QueryError as e:
        raise _invalid(aws_message(e)) from None
    config = {k: params[k] for k in _COMPOSITE_KEYS if params.get(k) is not None}
    config["AlarmRule"] = AlarmRule
    config.setdefault("ActionsEnabled", True)
    suppressor = config.get("ActionsSuppressor")
    periods = [config.get("ActionsSuppressorWaitPeriod"),
               config.get("ActionsSuppressorExtensionPeriod")]
    if suppressor is not None and None in periods:
        raise _invalid("ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod are "
                       "required when ActionsSuppressor is set.")
    if suppressor is None and any(p is not None for p in periods):
        raise _invalid("ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod can "
                       "only be used with ActionsSuppressor.")
    if any(p is not None and p < 0 for p in periods):
        raise _invalid("ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod must "
                       "not be negative.")
    for key in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        for arn in config.get(key) or []:
            parts = arn.split(":")
            service_name = parts[2] if len(parts) > 2 else ""
            if service_name in ("ec2", "autoscaling", "swf"):
                raise _invalid(f"Composite alarms cannot perform {service_name} actions: {arn}")
    _check_tags(Tags)
    service = _service(ctx)
    async with service.lock:
        previous = service.get(ctx.account, ctx.region, AlarmName)
        if previous is not None and previous.kind != COMPOSITE:
            raise _invalid(f"The alarm {AlarmName} is a metric alarm: use PutMetricAlarm to "
                           "update it.")
        missing = []
        graph: dict[str, list[str]] = {}
        for ref in referenced_in_order(rule):
            child = service.resolve(ctx.account, ctx.region, ref)
            if child is None and ref.split(":")[-1] != AlarmName:
                missing.append(ref)
        if missing:
            raise _invalid(f"Could not save the composite alarm as alarms [{', '.join(missing)}] "
                           f"in the alarm rule do not exist")
        for e in service.in_scope(ctx.account, ctx.region):
            if e.kind == COMPOSITE and e.name != AlarmName:
                graph[e.name] = [c.name for c in service.children(e)]
        graph[AlarmName] = [ref.split(":")[-1] if ref.startswith("arn:") else ref
                            for ref in referenced_in_order(rule)]
        cycle = find_cycle(graph)
        if cycle:
            raise _invalid("The alarm rule would create a cycle between composite alarms: "
                           + " -> ".join(cycle))
        entry = service.build(ctx.account, ctx.region, AlarmName, COMPOSITE, config, ctx.now())
        await service.put(entry, previous, Tags)
    return {}


# ---- DescribeAlarms ---------------------------------------------------------------------------------

def _token(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _untoken(token: str):
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ServiceError("InvalidNextToken", "The specified NextToken is invalid.") from None


def _types(alarm_types) -> list[str]:
    # "If you omit this parameter, only metric alarms are returned" (API_DescribeAlarms).
    return list(alarm_types) if alarm_types else [METRIC]


@operation("cloudwatch", "DescribeAlarms")
async def describe_alarms(ctx: Context, AlarmNames=None, AlarmNamePrefix=None, AlarmTypes=None,
                          ChildrenOfAlarmName=None, ParentsOfAlarmName=None, StateValue=None,
                          ActionPrefix=None, MaxRecords=None, NextToken=None):
    service = _service(ctx)
    if AlarmNames and AlarmNamePrefix is not None:
        raise invalid_parameter_combination(
            "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have "
            "specified both.")
    family = ChildrenOfAlarmName or ParentsOfAlarmName
    if ChildrenOfAlarmName and ParentsOfAlarmName:
        raise invalid_parameter_combination(
            "The parameters ChildrenOfAlarmName and ParentsOfAlarmName are mutually exclusive "
            "and you have specified both.")
    if family and any(p is not None for p in (AlarmNames, AlarmNamePrefix, AlarmTypes,
                                               StateValue, ActionPrefix)):
        which = "ChildrenOfAlarmName" if ChildrenOfAlarmName else "ParentsOfAlarmName"
        raise invalid_parameter_combination(
            f"If {which} is specified, only MaxRecords and NextToken may be specified with it.")
    limit = MaxRecords or 50
    fingerprint = hashlib.sha1(json.dumps(
        [AlarmNames, AlarmNamePrefix, AlarmTypes, ChildrenOfAlarmName, ParentsOfAlarmName,
         StateValue, ActionPrefix], default=str).encode()).hexdigest()[:12]
    after = None
    if NextToken:
        tok = _untoken(NextToken)
        if not (isinstance(tok, list) and len(tok) == 2 and tok[0] == fingerprint
                and isinstance(tok[1], str)):
            raise ServiceError("InvalidNextToken", "The specified NextToken is invalid.")
        after = tok[1]
    if family:
        anchor = service.get(ctx.account, ctx.region, family)
        if anchor is None:
            chosen: list[Entry] = []
        elif ChildrenOfAlarmName:
            chosen = service.children(anchor) if anchor.kind == COMPOSITE else []
        else:
            chosen = service.parents(anchor)
    else:
        types = _types(AlarmTypes)
        names = set(AlarmNames) if AlarmNames else None
        chosen = []
        for e in service.in_scope(ctx.account, ctx.region):
            if e.kind not in types:
                continue
            if names is not None and e.name not in names:
                continue
            if AlarmNamePrefix is not None and not e.name.startswith(AlarmNamePrefix):
                continue
            if StateValue is not None and e.state_value != StateValue:
                continue
            if ActionPrefix is not None and not any(
                    a.startswith(ActionPrefix) for key in ("OKActions", "AlarmActions",
                                                          "InsufficientDataActions")
                    for a in e.config.get(key) or []):
                continue
            chosen.append(e)
    chosen.sort(key=lambda e: e.name)
    if after is not None:
        chosen = [e for e in chosen if e.name > after]
    page, more = chosen[:limit], len(chosen) > limit
    out = {"MetricAlarms": [e.describe() for e in page if e.kind == METRIC],
           "CompositeAlarms": [e.describe() for e in page if e.kind == COMPOSITE]}
    if more:
        out["NextToken"] = _token([fingerprint, page[-1].name])
    return out


@operation("cloudwatch", "DescribeAlarmsForMetric")
async def describe_alarms_for_metric(ctx: Context, MetricName, Namespace, Statistic=None,
                                     ExtendedStatistic=None, Dimensions=None, Period=None,
                                     Unit=None):
    service = _service(ctx)
    wanted_dims = dim_key(Dimensions) if Dimensions is not None else None
    out = []
    for e in sorted(service.in_scope(ctx.account, ctx.region), key=lambda e: e.name):
        if e.kind != METRIC:
            continue
        c = e.config
        if c.get("Metrics"):
            stats = [q["MetricStat"] for q in c["Metrics"] if "MetricStat" in q]
            match = any(
                s["Metric"].get("MetricName") == MetricName and s["Metric"].get("Namespace") == Namespace
                and (wanted_dims is None or dim_key(s["Metric"].get("Dimensions") or []) == wanted_dims)
                and (Statistic is None and ExtendedStatistic is None
                     or s["Stat"] in (Statistic, ExtendedStatistic))
                and (Period is None or s["Period"] == Period)
                and (Unit is None or s.get("Unit") == Unit) for s in stats)
            if not match:
                continue
        else:
            if c["MetricName"] != MetricName or c["Namespace"] != Namespace:
                continue
            if wanted_dims is not None and dim_key(c.get("Dimensions") or []) != wanted_dims:
                continue
            if Statistic is not None and c.get("Statistic") != Statistic:
                continue
            if ExtendedStatistic is not None and c.get("ExtendedStatistic") != ExtendedStatistic:
                continue
            if Period is not None and c.get("Period") != Period:
                continue
            if Unit is not None and c.get("Unit") != Unit:
                continue
        out.append(e.describe())
    return {"MetricAlarms": out}


# ---- DescribeAlarmHistory ---------------------------------------------------------------------------

@operation("cloudwatch", "DescribeAlarmHistory")
async def describe_alarm_history(ctx: Context, AlarmName=None, AlarmContributorId=None,
                                 AlarmTypes=None, HistoryItemType=None, StartDate=None,
                                 EndDate=None, MaxRecords=None, NextToken=None, ScanBy=None):
    if StartDate is not None and EndDate is not None and StartDate > EndDate:
        raise invalid_parameter_value("The parameter StartDate must be less than or equal to the "
                                      "parameter EndDate.")
    if AlarmContributorId is not None or HistoryItemType in ("AlarmContributorStateUpdate",
                                                             "AlarmContributorAction"):
        return {"AlarmHistoryItems": []}   # no multi-time-series alarms, so no contributors
    ascending = ScanBy == "TimestampAscending"
    limit = MaxRecords or 100
    types = _types(AlarmTypes)
    fingerprint = hashlib.sha1(json.dumps([AlarmName, types, HistoryItemType, StartDate, EndDate,
                                           ascending], default=str).encode()).hexdigest()[:12]
    after = None
    if NextToken:
        tok = _untoken(NextToken)
        if not (isinstance(tok, list) and len(tok) == 3 and tok[0] == fingerprint
                and all(isinstance(x, int) for x in tok[1:])):
            raise ServiceError("InvalidNextToken", "The specified NextToken is invalid.")
        after = (tok[1], tok[2])
    start_ms = None if StartDate is None else int(StartDate * 1000)
    end_ms = None if EndDate is None else int(EndDate * 1000)
    rows = await ctx.store.read(lambda cur: sql.query_history(
        cur, ctx.account, ctx.region, name=AlarmName, alarm_types=types,
        item_type=HistoryItemType, start_ms=start_ms, end_ms=end_ms, ascending=ascending,
        after=after, limit=limit + 1))
    page, more = rows[:limit], len(rows) > limit
    out = {"AlarmHistoryItems": [
        {"AlarmName": name, "AlarmType": alarm_type, "Timestamp": ts / 1000.0,
         "HistoryItemType": item_type, "HistorySummary": summary, "HistoryData": data}
        for ts, _, name, alarm_type, item_type, summary, data in page]}
    if more:
        out["NextToken"] = _token([fingerprint, page[-1][0], page[-1][1]])
    return out


# ---- SetAlarmState, DeleteAlarms, Enable/DisableAlarmActions -----------------------------------------

@operation("cloudwatch", "SetAlarmState")
async def set_alarm_state(ctx: Context, AlarmName, StateValue, StateReason, StateReasonData=None):
    if StateReasonData:
        try:
            json.loads(StateReasonData)
        except ValueError:
            raise ServiceError("InvalidFormatFault", "Data was not syntactically valid JSON") from None
    service = _service(ctx)
    async with service.lock:
        entry = service.get(ctx.account, ctx.region, AlarmName)
        if entry is None:
            raise ServiceError("ResourceNotFound")   # AWS sends no message (LS-SNAP)
        await service.set_state(entry, StateValue, StateReason, StateReasonData or None, ctx.now())
    return {}


@operation("cloudwatch", "DeleteAlarms")
async def delete_alarms(ctx: Context, AlarmNames):
    service = _service(ctx)
    async with service.lock:
        entries = []
        for name in dict.fromkeys(AlarmNames):
            entry = service.get(ctx.account, ctx.region, name)
            if entry is not None:
                entries.append(entry)
        if sum(e.kind == COMPOSITE for e in entries) > 1:
            raise _invalid("You can delete at most one composite alarm per DeleteAlarms request.")
        going = set(id(e) for e in entries)
        blocked = [e.name for e in entries
                   if any(id(p) not in going for p in service.parents(e))]
        if blocked:
            names = ",".join(blocked)
            what = "it" if len(blocked) == 1 else "them"
            raise _invalid(f"Cannot delete {names} as there are composite alarm(s) depending on "
                           f"{what}.")
        await service.delete(entries, ctx.now())
    return {}


async def _set_actions(ctx: Context, names, enabled: bool):
    service = _service(ctx)
    async with service.lock:
        entries = [e for e in (service.get(ctx.account, ctx.region, n) for n in dict.fromkeys(names))
                   if e is not None]
        await service.set_actions_enabled(entries, enabled)
    return {}


@operation("cloudwatch", "EnableAlarmActions")
async def enable_alarm_actions(ctx: Context, AlarmNames):
    return await _set_actions(ctx, AlarmNames, True)


@operation("cloudwatch", "DisableAlarmActions")
async def disable_alarm_actions(ctx: Context, AlarmNames):
    return await _set_actions(ctx, AlarmNames, False)


# ---- tags ------------------------------------------------------------------------------------------

def _alarm_exists(cur, ctx, name) -> bool:
    return ctx.server.alarms.get(ctx.account, ctx.region, name) is not None


RESOURCE_EXISTS["alarm"] = _alarm_exists
