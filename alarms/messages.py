"""What CloudWatch writes about an alarm: the SNS alarm message, its Subject, and the
HistoryData of DescribeAlarmHistory items.  Pure text building (reference alarms.md §§7-8, 11).

The alarm is passed as its DescribeAlarms dictionary (``MetricAlarms``/``CompositeAlarms``
member, timestamps as epoch seconds), so that what the API shows and what the messages say
come from one place.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

from alarms.model import format_iso_millis, to_json

# CloudWatch's long region names (reference §11): the old "EU (…)" spelling, "Sao Paulo".
REGION_NAMES = {
    "us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)", "us-west-2": "US West (Oregon)",
    "af-south-1": "Africa (Cape Town)", "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-east-2": "Asia Pacific (Taipei)", "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)", "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-south-1": "Asia Pacific (Mumbai)", "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-southeast-1": "Asia Pacific (Singapore)", "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-3": "Asia Pacific (Jakarta)", "ap-southeast-4": "Asia Pacific (Melbourne)",
    "ap-southeast-5": "Asia Pacific (Malaysia)", "ap-southeast-6": "Asia Pacific (New Zealand)",
    "ap-southeast-7": "Asia Pacific (Thailand)", "ca-central-1": "Canada (Central)",
    "ca-west-1": "Canada West (Calgary)", "eu-central-1": "EU (Frankfurt)",
    "eu-central-2": "EU (Zurich)", "eu-north-1": "EU (Stockholm)", "eu-south-1": "EU (Milan)",
    "eu-south-2": "EU (Spain)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)",
    "eu-west-3": "EU (Paris)", "il-central-1": "Israel (Tel Aviv)",
    "me-central-1": "Middle East (UAE)", "me-south-1": "Middle East (Bahrain)",
    "mx-central-1": "Mexico (Central)", "sa-east-1": "South America (Sao Paulo)",
    "cn-north-1": "China (Beijing)", "cn-northwest-1": "China (Ningxia)",
    "us-gov-east-1": "AWS GovCloud (US-East)", "us-gov-west-1": "AWS GovCloud (US-West)",
}

MAX_SUBJECT = 100


def region_name(region: str) -> str:
    """The name CloudWatch puts in ``Region`` and the Subject; the code itself if unknown."""
    return REGION_NAMES.get(region, region)


def _iso(epoch_seconds: float | None) -> str | None:
    if epoch_seconds is None:
        return None
    return format_iso_millis(datetime.fromtimestamp(epoch_seconds, timezone.utc))


def subject(state: str, name: str, region: str) -> str:
    """``ALARM: "name" in US East (N. Virginia)``, at most 100 characters: a long name is cut
    and ``...`` goes inside the quotes (reference R7.1)."""
    tail = f'" in {region_name(region)}'
    head = f'{state}: "'
    text = head + name + tail
    if len(text) <= MAX_SUBJECT:
        return text
    room = MAX_SUBJECT - len(head) - len(tail) - 3
    return head + name[:max(room, 0)] + "..." + tail


def _dimensions_lower(dimensions) -> list[dict]:
    return [{"value": d["Value"], "name": d["Name"]} for d in dimensions or []]


def _metrics_for_trigger(metrics) -> list[dict]:
    out = []
    for q in metrics:
        item: dict[str, Any] = {}
        if "Expression" in q:
            item["Expression"] = q["Expression"]
        item["Id"] = q["Id"]
        if q.get("Label") is not None:
            item["Label"] = q["Label"]
        if "MetricStat" in q:
            stat = q["MetricStat"]
            metric = stat["Metric"]
            inner: dict[str, Any] = {"Metric": {"Dimensions": _dimensions_lower(metric.get("Dimensions")),
                                                "MetricName": metric.get("MetricName"),
                                                "Namespace": metric.get("Namespace")},
                                     "Period": stat["Period"], "Stat": stat["Stat"]}
            if stat.get("Unit"):
                inner["Unit"] = stat["Unit"]
            item["MetricStat"] = inner
        if q.get("Period") is not None and "MetricStat" not in q:
            item["Period"] = q["Period"]
        item["ReturnData"] = q.get("ReturnData", True)
        out.append(item)
    return out


def trigger(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Trigger`` object of a metric alarm's message (reference R7.2)."""
    out: dict[str, Any] = {}
    if alarm.get("Metrics"):
        out["Period"] = alarm.get("Period") or _math_period(alarm["Metrics"])
        out["EvaluationPeriods"] = alarm["EvaluationPeriods"]
        if alarm.get("DatapointsToAlarm") is not None:
            out["DatapointsToAlarm"] = alarm["DatapointsToAlarm"]
        out["ComparisonOperator"] = alarm["ComparisonOperator"]
        if alarm.get("ThresholdMetricId"):
            out["ThresholdMetricId"] = alarm["ThresholdMetricId"]
        else:
            out["Threshold"] = float(alarm["Threshold"])
        out["TreatMissingData"] = alarm.get("TreatMissingData") or ""
        out["EvaluateLowSampleCountPercentile"] = alarm.get("EvaluateLowSampleCountPercentile") or ""
        out["Metrics"] = _metrics_for_trigger(alarm["Metrics"])
        return out
    out["MetricName"] = alarm["MetricName"]
    out["Namespace"] = alarm["Namespace"]
    if alarm.get("ExtendedStatistic"):
        out["StatisticType"] = "ExtendedStatistic"
        out["ExtendedStatistic"] = alarm["ExtendedStatistic"]
    else:
        out["StatisticType"] = "Statistic"
        out["Statistic"] = _statistic_upper(alarm["Statistic"])
    out["Unit"] = alarm.get("Unit")
    out["Dimensions"] = _dimensions_lower(alarm.get("Dimensions"))
    out["Period"] = alarm["Period"]
    out["EvaluationPeriods"] = alarm["EvaluationPeriods"]
    if alarm.get("DatapointsToAlarm") is not None:
        out["DatapointsToAlarm"] = alarm["DatapointsToAlarm"]
    out["ComparisonOperator"] = alarm["ComparisonOperator"]
    out["Threshold"] = float(alarm["Threshold"])
    out["TreatMissingData"] = alarm.get("TreatMissingData") or ""
    out["EvaluateLowSampleCountPercentile"] = alarm.get("EvaluateLowSampleCountPercentile") or ""
    return out


def _statistic_upper(statistic: str) -> str:
    # SampleCount is written SAMPLE_COUNT (reference §12.7: unobserved, most likely).
    return {"SampleCount": "SAMPLE_COUNT"}.get(statistic, statistic.upper())


def _math_period(metrics) -> int | None:
    for q in metrics:
        if q.get("ReturnData", True):
            if "MetricStat" in q:
                return q["MetricStat"]["Period"]
            if q.get("Period"):
                return q["Period"]
    for q in metrics:
        if "MetricStat" in q:
            return q["MetricStat"]["Period"]
    return None


def alarm_message(alarm: Mapping[str, Any], *, account: str, region: str, old_state: str,
                  new_state: str, reason: str, changed_at: float,
                  triggering_children: list[dict] | None = None) -> str:
    """The compact JSON CloudWatch publishes to SNS for a state change (R7.2 / R7.3)."""
    composite = "AlarmRule" in alarm
    msg: dict[str, Any] = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
    }
    if not composite:
        msg["AlarmConfigurationUpdatedTimestamp"] = _iso(alarm["AlarmConfigurationUpdatedTimestamp"])
    msg.update({
        "NewStateValue": new_state,
        "NewStateReason": reason,
        "StateChangeTime": _iso(changed_at),
        "Region": region_name(region),
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": old_state,
        "OKActions": list(alarm.get("OKActions") or []),
        "AlarmActions": list(alarm.get("AlarmActions") or []),
        "InsufficientDataActions": list(alarm.get("InsufficientDataActions") or []),
    })
    if composite:
        msg["AlarmRule"] = alarm["AlarmRule"]
        msg["TriggeringChildren"] = triggering_children or []
    else:
        msg["Trigger"] = trigger(alarm)
    return to_json(msg)


def triggering_children(reason_data: str | None) -> list[dict]:
    """``TriggeringChildren`` of a composite message, from its StateReasonData."""
    try:
        data = json.loads(reason_data) if reason_data else {}
    except ValueError:
        return []
    return [{"Arn": c.get("arn"), "State": {"Value": c.get("state", {}).get("value"),
                                            "Timestamp": c.get("state", {}).get("timestamp")}}
            for c in data.get("triggeringAlarms", []) if isinstance(c, dict)]


# ---- DescribeAlarmHistory items ------------------------------------------------------------------

def state_update(old_value: str, old_reason: str, new_value: str, new_reason: str,
                 new_reason_data: str | None) -> tuple[str, str]:
    """(HistorySummary, HistoryData) of a StateUpdate item (R8.2)."""
    new: dict[str, Any] = {"stateValue": new_value, "stateReason": new_reason}
    if new_reason_data:
        try:
            new["stateReasonData"] = json.loads(new_reason_data)
        except ValueError:
            new["stateReasonData"] = new_reason_data
    data = {"version": "1.0", "oldState": {"stateValue": old_value, "stateReason": old_reason},
            "newState": new}
    return f"Alarm updated from {old_value} to {new_value}", to_json(data)


def _config_snapshot(alarm: Mapping[str, Any]) -> dict[str, Any]:
    """The alarm as ConfigurationUpdate HistoryData shows it (R8.3; lower camel case, and the
    lower-case ``okactions`` AWS writes)."""
    out: dict[str, Any] = {"alarmName": alarm["AlarmName"],
                           "alarmDescription": alarm.get("AlarmDescription") or "",
                           "alarmArn": alarm["AlarmArn"],
                           "alarmConfigurationUpdatedTimestamp":
                               _iso(alarm["AlarmConfigurationUpdatedTimestamp"])}
    if "AlarmRule" in alarm:
        out["alarmRule"] = alarm["AlarmRule"]
        for key, name in (("ActionsSuppressor", "actionsSuppressor"),
                          ("ActionsSuppressorWaitPeriod", "actionsSuppressorWaitPeriod"),
                          ("ActionsSuppressorExtensionPeriod", "actionsSuppressorExtensionPeriod")):
            if alarm.get(key) is not None:
                out[name] = alarm[key]
    elif alarm.get("Metrics"):
        out["metrics"] = _metrics_for_trigger(alarm["Metrics"])
    else:
        out["namespace"] = alarm["Namespace"]
        out["metricName"] = alarm["MetricName"]
        if alarm.get("ExtendedStatistic"):
            out["extendedStatistic"] = alarm["ExtendedStatistic"]
        else:
            out["statistic"] = alarm["Statistic"]
        out["period"] = alarm["Period"]
        if alarm.get("Unit"):
            out["unit"] = alarm["Unit"]
        out["dimensions"] = _dimensions_lower(alarm.get("Dimensions"))
    if "AlarmRule" not in alarm:
        if alarm.get("Threshold") is not None:
            out["threshold"] = alarm["Threshold"]
        if alarm.get("ThresholdMetricId"):
            out["thresholdMetricId"] = alarm["ThresholdMetricId"]
        out["comparisonOperator"] = alarm["ComparisonOperator"]
        out["evaluationPeriods"] = alarm["EvaluationPeriods"]
        out["datapointsToAlarm"] = alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"]
        out["treatMissingData"] = alarm.get("TreatMissingData") or "missing"
        if alarm.get("EvaluateLowSampleCountPercentile"):
            out["evaluateLowSampleCountPercentile"] = alarm["EvaluateLowSampleCountPercentile"]
    out.update({"stateValue": alarm["StateValue"],
                "stateUpdatedTimestamp": _iso(alarm["StateUpdatedTimestamp"]),
                "actionsEnabled": alarm["ActionsEnabled"],
                "alarmActions": list(alarm.get("AlarmActions") or []),
                "insufficientDataActions": list(alarm.get("InsufficientDataActions") or []),
                "okactions": list(alarm.get("OKActions") or [])})
    return out


def configuration_update(kind: str, alarm: Mapping[str, Any],
                         previous: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """(HistorySummary, HistoryData) of a ConfigurationUpdate item; ``kind`` is Create,
    Update or Delete.  Only the Create layout was observed (R8.3); Update and Delete follow it."""
    name = alarm["AlarmName"]
    if kind == "Create":
        data = {"version": "1.0", "type": "Create", "createdAlarm": _config_snapshot(alarm)}
        return f'Alarm "{name}" created', to_json(data)
    if kind == "Update":
        data = {"version": "1.0", "type": "Update",
                "originalAlarm": _config_snapshot(previous or alarm),
                "updatedAlarm": _config_snapshot(alarm)}
        return f'Alarm "{name}" updated', to_json(data)
    data = {"version": "1.0", "type": "Delete", "deletedAlarm": _config_snapshot(alarm)}
    return f'Alarm "{name}" deleted', to_json(data)


def action(topic_arn: str, changed_at_ms: int, published: str | None,
           error: str | None) -> tuple[str, str]:
    """(HistorySummary, HistoryData) of an Action item (R8.4)."""
    data = {"error": error, "actionState": "Failed" if error else "Succeeded",
            "notificationResource": topic_arn, "stateUpdateTimestamp": changed_at_ms,
            "publishedMessage": published}
    if error:
        return f'Failed to execute action {topic_arn}. Received error: "{error}"', to_json(data)
    return f"Successfully executed action {topic_arn}", to_json(data)


__all__ = ["REGION_NAMES", "region_name", "subject", "trigger", "alarm_message",
           "triggering_children", "state_update", "configuration_update", "action"]
