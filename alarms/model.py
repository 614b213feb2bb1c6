"""The alarm model shared by evaluation, composite rules, the store and the operations.

States are spelled exactly as AWS spells them.  Alarms are frozen dataclasses holding the
configuration of PutMetricAlarm / PutCompositeAlarm plus the stored state; the evaluators never
mutate them, they return an :class:`Evaluation` that the caller may store.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal, Mapping

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT_DATA = "INSUFFICIENT_DATA"
AlarmState = Literal["OK", "ALARM", "INSUFFICIENT_DATA"]
STATES: tuple[str, ...] = (INSUFFICIENT_DATA, ALARM, OK)  # the order of AWS's enum message

# StateReason of every alarm right after PutMetricAlarm / PutCompositeAlarm (reference R1.2).
INITIAL_REASON = "Unchecked: Initial alarm creation"

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
TREAT_MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
STATIC_OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
)
# Anomaly-detection operators: compare against a band (ThresholdMetricId), not a Threshold.
BAND_OPERATORS = (
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
COMPARISON_OPERATORS = STATIC_OPERATORS + BAND_OPERATORS


@dataclass(frozen=True, kw_only=True)
class MetricAlarm:
    """A PutMetricAlarm configuration and its stored state.

    For a metric-math or anomaly-detection alarm, ``metrics`` holds the MetricDataQuery list as
    given (opaque here; the server evaluates it) and ``period`` must be set to the common period
    of those queries.  ``datapoints_to_alarm`` and ``treat_missing_data`` stay ``None`` when the
    caller did not set them, because AWS words the StateReason differently in that case.
    """

    name: str
    arn: str = ""
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: tuple[tuple[str, str], ...] = ()
    statistic: str | None = None
    extended_statistic: str | None = None
    period: int = 60
    unit: str | None = None
    evaluation_periods: int = 1
    datapoints_to_alarm: int | None = None
    threshold: float | None = None
    comparison_operator: str = "GreaterThanThreshold"
    threshold_metric_id: str | None = None
    treat_missing_data: str | None = None
    evaluate_low_sample_count_percentile: str | None = None
    metrics: tuple[Any, ...] = ()
    actions_enabled: bool = True
    ok_actions: tuple[str, ...] = ()
    alarm_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    description: str | None = None
    configuration_updated: datetime | None = None
    state_value: str = INSUFFICIENT_DATA
    state_reason: str = INITIAL_REASON
    state_reason_data: str | None = None
    state_updated: datetime | None = None
    state_transitioned: datetime | None = None

    @property
    def datapoints_needed(self) -> int:
        """M of "M out of N": DatapointsToAlarm, defaulting to EvaluationPeriods."""
        return self.datapoints_to_alarm if self.datapoints_to_alarm is not None else self.evaluation_periods

    @property
    def is_band(self) -> bool:
        return self.comparison_operator in BAND_OPERATORS

    @property
    def is_math(self) -> bool:
        return bool(self.metrics)

    @property
    def effective_treat_missing_data(self) -> str:
        """TreatMissingData as applied: ``missing`` by default, and always ``ignore`` for
        ``AWS/DynamoDB`` alarms (PutMetricAlarm: "Alarms that evaluate metrics in the
        AWS/DynamoDB namespace always ignore missing data")."""
        if self.namespace == "AWS/DynamoDB":
            return "ignore"
        return self.treat_missing_data or "missing"


@dataclass(frozen=True, kw_only=True)
class CompositeAlarm:
    """A PutCompositeAlarm configuration and its stored state."""

    name: str
    arn: str = ""
    rule_text: str = "FALSE"
    description: str | None = None
    actions_enabled: bool = True
    ok_actions: tuple[str, ...] = ()
    alarm_actions: tuple[str, ...] = ()
    insufficient_data_actions: tuple[str, ...] = ()
    actions_suppressor: str | None = None
    actions_suppressor_wait_period: int | None = None
    actions_suppressor_extension_period: int | None = None
    configuration_updated: datetime | None = None
    state_value: str = INSUFFICIENT_DATA
    state_reason: str = INITIAL_REASON
    state_reason_data: str | None = None
    state_updated: datetime | None = None
    state_transitioned: datetime | None = None


@dataclass(frozen=True)
class Datapoint:
    """One aggregated value per period, as the server computed it for the alarm.

    ``timestamp`` is the period start.  ``sample_count`` is needed for the low-sample rule of
    percentile alarms and is shown in StateReasonData when known.  ``lower``/``upper`` carry the
    anomaly-detection band for that period (band operators only).
    """

    timestamp: datetime
    value: float
    sample_count: float | None = None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class ChildState:
    """What a composite needs to know about one child alarm."""

    arn: str
    value: str
    timestamp: datetime  # when the child last changed state (StateUpdatedTimestamp)


@dataclass(frozen=True)
class Evaluation:
    """The result of evaluating an alarm at ``evaluated_at``.

    ``reason is None`` means the rules say *keep the current state and reason* (TreatMissingData
    ``ignore``, the DynamoDB exception, low-sample percentiles with ``ignore``); ``state`` is then
    the previous state.  Otherwise the caller stores state, reason and reason data only if the
    state differs from the previous one: an unchanged state changes nothing (no history item,
    no action).
    """

    state: str
    reason: str | None
    reason_data: Mapping[str, Any] | None
    evaluated_at: datetime

    @property
    def retained(self) -> bool:
        return self.reason is None

    @property
    def reason_data_json(self) -> str | None:
        """StateReasonData as the JSON string DescribeAlarms returns."""
        return None if self.reason_data is None else to_json(self.reason_data)


def initial_evaluation(now: datetime) -> Evaluation:
    """The state every new alarm gets from PutMetricAlarm / PutCompositeAlarm."""
    return Evaluation(INSUFFICIENT_DATA, INITIAL_REASON, None, now)


# ---- AWS (Java) text formats ---------------------------------------------------------------

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")


def utc(ts: datetime) -> datetime:
    """``ts`` as an aware UTC datetime; naive datetimes are taken to be UTC already."""
    if ts.tzinfo is None:
        return ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc)


def java_double(x: float) -> str:
    """``x`` the way Java's ``Double.toString`` prints it: ``80.0``, ``10.25``, ``1.0E7``.

    AWS prints datapoints and thresholds this way.  Python's ``repr`` gives the same shortest
    digits; only the notation differs (Java switches to ``d.dddEn`` outside [1e-3, 1e7)).
    """
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(x)
        return text if "." in text else text + ".0"
    sign, digits, exponent = Decimal(repr(x)).normalize().as_tuple()
    mantissa = "".join(map(str, digits))
    power = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{power}"


def format_reason_time(ts: datetime) -> str:
    """Datapoint time in a StateReason: ``dd/MM/yy HH:mm:ss`` (UTC, day first)."""
    return utc(ts).strftime("%d/%m/%y %H:%M:%S")


def format_iso_millis(ts: datetime) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSS+0000`` as in StateReasonData and notifications."""
    ts = utc(ts)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}+0000"


def format_long_date(ts: datetime) -> str:
    """``EEEE dd MMMM, yyyy HH:mm:ss 'UTC'`` as in composite reasons, locale independent."""
    ts = utc(ts)
    return (f"{_DAYS[ts.weekday()]} {ts.day:02d} {_MONTHS[ts.month - 1]}, {ts.year:04d} "
            f"{ts.strftime('%H:%M:%S')} UTC")


# json.dumps(text, ensure_ascii=False) without the encoder set-up per call (the C function).
_quote = json.encoder.encode_basestring


def to_json(value: Any) -> str:
    """Compact JSON in insertion order with Java-style floats (``21.0``, ``1.0E7``)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not representable in JSON: {value!r}")
        return java_double(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{_quote(str(k))}:{to_json(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


__all__ = [
    "ALARM", "OK", "INSUFFICIENT_DATA", "AlarmState", "STATES", "INITIAL_REASON",
    "STATISTICS", "TREAT_MISSING_DATA", "STATIC_OPERATORS", "BAND_OPERATORS",
    "COMPARISON_OPERATORS", "MetricAlarm", "CompositeAlarm", "Datapoint", "ChildState",
    "Evaluation", "initial_evaluation", "java_double", "format_reason_time",
    "format_iso_millis", "format_long_date", "to_json", "utc",
]
