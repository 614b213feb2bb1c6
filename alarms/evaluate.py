"""Metric alarm evaluation: (alarm, datapoints, previous state, now) -> Evaluation.

Pure: no clock, no store.  The server asks :func:`evaluation_range` which periods to fetch,
aggregates one value per period with the alarm's statistic (or evaluates the alarm's metric
math), and hands those datapoints to :func:`evaluate_metric_alarm`.

The rules are AWS's ("Evaluating an alarm", "Configuring how CloudWatch alarms treat missing
data", "Avoiding premature transitions to alarm state", "Percentile-based alarms and low data
samples"), as collected in ``reference/alarms.md`` §§1-4:

* The evaluation range is longer than EvaluationPeriods (N).  If it holds at least N real
  datapoints, the N most recent real ones are evaluated and TreatMissingData is not used.
* With fewer than N real datapoints, all real ones count and exactly N - real missing
  datapoints are filled as TreatMissingData says; with ``missing``/``ignore`` nothing is filled
  and the premature-alarm rule decides.  With every datapoint missing: ``missing`` gives
  INSUFFICIENT_DATA, ``ignore`` keeps the state.
* ALARM when at least M (DatapointsToAlarm) of them breach, otherwise OK.

Periods are aligned to multiples of Period since the epoch (as GetMetricStatistics does) and
only completed periods are evaluated: the newest slot ends at or before ``now``.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Iterable, Sequence

from alarms.model import (ALARM, INSUFFICIENT_DATA, OK, Datapoint, Evaluation, MetricAlarm,
                          format_iso_millis, format_reason_time, java_double, utc)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Listed inline up to this many datapoints; beyond it AWS prints the count and the 5 newest.
_INLINE_LIMIT = 4
_MOST_RECENT = 5

_OPERATOR_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}

_PERCENTILE = re.compile(r"^[pP](\d+(?:\.\d+)?)$")


# ---- the evaluation range -----------------------------------------------------------------

def range_length(evaluation_periods: int) -> int:
    """How many periods one evaluation looks at.

    AWS does not publish it; its examples use 5 for N = 3.  N + max(N // 3, 2) matches them
    (and LocalStack).
    """
    return evaluation_periods + max(evaluation_periods // 3, 2)


def evaluation_range(alarm: MetricAlarm, now: datetime) -> tuple[datetime, datetime]:
    """``[start, end)`` of the periods the server must aggregate for an evaluation at ``now``.

    Both ends are aligned to ``alarm.period``; ``end`` is the start of the period in progress,
    so only completed periods are evaluated.  The server returns one :class:`Datapoint` per
    period that has data, timestamped with the period start, and nothing for empty periods.
    """
    delta = utc(now) - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    end = _EPOCH + timedelta(seconds=seconds - seconds % alarm.period)
    start = end - timedelta(seconds=alarm.period * range_length(alarm.evaluation_periods))
    return start, end


def period_starts(alarm: MetricAlarm, now: datetime) -> list[datetime]:
    """The start of every period in :func:`evaluation_range`, oldest first."""
    start, _ = evaluation_range(alarm, now)
    step = timedelta(seconds=alarm.period)
    return [start + i * step for i in range(range_length(alarm.evaluation_periods))]


def evaluation_interval(alarm: MetricAlarm) -> int:
    """Seconds between two evaluations of ``alarm`` (reference R1.4): every 10 s for
    high-resolution periods, hourly when Period × EvaluationPeriods exceeds a day, otherwise
    every minute."""
    if alarm.period < 60:
        return 10
    if alarm.period * alarm.evaluation_periods > 86400:
        return 3600
    return 60


# ---- comparisons ----------------------------------------------------------------------------

def breaches(alarm: MetricAlarm, point: Datapoint) -> bool:
    """Whether one real datapoint is on the ALARM side of the threshold (or band)."""
    op, value = alarm.comparison_operator, point.value
    if op in _OPERATOR_WORDS:
        if alarm.threshold is None:
            raise ValueError(f"alarm {alarm.name!r}: {op} needs a Threshold")
        threshold = alarm.threshold
        if op == "GreaterThanThreshold":
            return value > threshold
        if op == "GreaterThanOrEqualToThreshold":
            return value >= threshold
        if op == "LessThanThreshold":
            return value < threshold
        return value <= threshold
    if point.lower is None or point.upper is None:
        raise ValueError(f"alarm {alarm.name!r}: {op} needs a band on every datapoint")
    if op == "LessThanLowerOrGreaterThanUpperThreshold":
        return value < point.lower or value > point.upper
    if op == "LessThanLowerThreshold":
        return value < point.lower
    if op == "GreaterThanUpperThreshold":
        return value > point.upper
    raise ValueError(f"alarm {alarm.name!r}: unknown ComparisonOperator {op!r}")


def minimum_samples(extended_statistic: str | None) -> Decimal | None:
    """Samples a percentile needs to be statistically significant, or None if no rule applies.

    10/(1-p) for 0.5 <= p < 1 (p99 needs 1000) and 10/p for 0 < p < 0.5.
    """
    match = _PERCENTILE.match(extended_statistic or "")
    if not match:
        return None
    p = Decimal(match.group(1)) / 100
    if Decimal("0.5") <= p < 1:
        return 10 / (1 - p)
    if 0 < p < Decimal("0.5"):
        return 10 / p
    return None


def is_low_sample(alarm: MetricAlarm, point: Datapoint) -> bool:
    """A percentile datapoint with too few samples.  Without a sample count it is not."""
    needed = minimum_samples(alarm.extended_statistic)
    if needed is None or point.sample_count is None:
        return False
    return Decimal(repr(float(point.sample_count))) < needed


# ---- evaluation -----------------------------------------------------------------------------

def evaluate_metric_alarm(alarm: MetricAlarm, datapoints: Iterable[Datapoint],
                          previous_state: str, now: datetime) -> Evaluation:
    """Evaluate ``alarm`` at ``now`` over ``datapoints`` (one per period in
    :func:`evaluation_range`; others are ignored).

    A datapoint whose value is NaN or infinite, or which lacks a band for a band operator,
    counts as missing.  Returns a retained :class:`Evaluation` (``reason is None``) when the rules keep
    the current state.
    """
    now = utc(now)
    _check(alarm)
    starts = period_starts(alarm, now)
    slots = _slot(alarm, starts, datapoints)
    n, m = alarm.evaluation_periods, alarm.datapoints_needed
    real = [i for i, point in enumerate(slots) if point is not None]
    breach = {i: breaches(alarm, slots[i]) for i in real}
    treat = alarm.effective_treat_missing_data
    retained = Evaluation(previous_state, None, None, now)

    evaluated = real[-n:]
    if alarm.evaluate_low_sample_count_percentile == "ignore" and any(
            is_low_sample(alarm, slots[i]) for i in evaluated):
        return retained

    codes = bytes(MISSING if point is None else (BREACHING if breach[i] else NOT_BREACHING)
                  for i, point in enumerate(slots))
    state, fills, fill_kind = decide(codes, n, m, treat)
    if state is None:
        return retained
    if state == INSUFFICIENT_DATA:
        return _insufficient(alarm, now)
    fills = list(fills)
    return Evaluation(state, _reason(alarm, state, starts, slots, evaluated, breach, fills, fill_kind),
                      _reason_data(alarm, state, starts, slots, evaluated, breach, fills, fill_kind, now),
                      now)


# Slot codes for :func:`decide`: one byte per period of the evaluation range, oldest first.
MISSING, NOT_BREACHING, BREACHING = 0, 1, 2


@lru_cache(maxsize=65536)
def decide(codes: bytes, n: int, m: int, treat: str) -> tuple[str | None, tuple[int, ...], str | None]:
    """The state AWS's rules give for one pattern of datapoints: ``(state, fills, fill_kind)``.

    ``codes`` holds :data:`MISSING`, :data:`NOT_BREACHING` or :data:`BREACHING` per period of
    the evaluation range (oldest first); ``n``/``m`` are EvaluationPeriods and
    DatapointsToAlarm; ``treat`` the effective TreatMissingData.  ``state`` is None when the
    current state is kept, INSUFFICIENT_DATA when every datapoint is missing under
    ``missing``; ``fills`` are the slots filled with missing datapoints of ``fill_kind``
    (``Breaching``/``NonBreaching``).  The result depends on nothing else, so it is cached:
    the scheduler decides thousands of alarms per tick with it and builds the reason only for
    transitions (:func:`evaluate_metric_alarm` uses the same function).
    """
    real = [i for i, code in enumerate(codes) if code != MISSING]
    if len(real) >= n:
        # Enough real data: TreatMissingData is not needed and is ignored.
        breaching = sum(codes[i] == BREACHING for i in real[-n:])
        return (ALARM if breaching >= m else OK), (), None
    if not real:
        if treat == "ignore":
            return None, (), None
        if treat == "missing":
            return INSUFFICIENT_DATA, (), None
        fills = _newest_missing(codes, n)
        if treat == "breaching":
            return ALARM, fills, "Breaching"
        return OK, fills, "NonBreaching"
    # All real datapoints in the range count; fill as few missing ones as possible.
    k = n - len(real)
    real_breaching = sum(codes[i] == BREACHING for i in real)
    if treat == "breaching":
        return (ALARM if real_breaching + k >= m else OK), _newest_missing(codes, k), "Breaching"
    if treat == "notBreaching":
        return (ALARM if real_breaching >= m else OK), _newest_missing(codes, k), "NonBreaching"
    if _premature_alarm(codes, real, n, m):
        return (None if treat == "ignore" else ALARM), (), None
    return (ALARM if real_breaching >= m else OK), (), None


def _check(alarm: MetricAlarm) -> None:
    op = alarm.comparison_operator
    if op not in _OPERATOR_WORDS and not alarm.is_band:
        raise ValueError(f"alarm {alarm.name!r}: unknown ComparisonOperator {op!r}")
    if op in _OPERATOR_WORDS and alarm.threshold is None:
        raise ValueError(f"alarm {alarm.name!r}: {op} needs a Threshold")
    if not 1 <= alarm.datapoints_needed <= alarm.evaluation_periods:
        raise ValueError(f"alarm {alarm.name!r}: DatapointsToAlarm must be in 1..EvaluationPeriods")
    if alarm.period <= 0:
        raise ValueError(f"alarm {alarm.name!r}: Period must be positive")


def _slot(alarm: MetricAlarm, starts: Sequence[datetime],
          datapoints: Iterable[Datapoint]) -> list[Datapoint | None]:
    slots: list[Datapoint | None] = [None] * len(starts)
    first, period = starts[0], alarm.period
    for point in datapoints:
        offset = (utc(point.timestamp) - first).total_seconds()
        index = int(offset // period)
        if offset < 0 or index >= len(slots):
            continue
        if slots[index] is not None:
            raise ValueError(f"alarm {alarm.name!r}: two datapoints for the period starting "
                             f"{starts[index].isoformat()}")
        if not math.isfinite(point.value):  # NaN or infinite: no datapoint
            continue
        if alarm.is_band and (point.lower is None or point.upper is None):
            continue
        slots[index] = Datapoint(starts[index], float(point.value), point.sample_count,
                                 None if point.lower is None else float(point.lower),
                                 None if point.upper is None else float(point.upper))
    return slots


def _newest_missing(codes: bytes, count: int) -> tuple[int, ...]:
    missing = [i for i in range(len(codes) - 1, -1, -1) if codes[i] == MISSING]
    return tuple(sorted(missing[:count]))


def _premature_alarm(codes: bytes, real: Sequence[int], n: int, m: int) -> bool:
    """AWS's "avoiding premature transitions to alarm state" rule, in the form that reproduces
    every cell of the documented tables (reference R2.6): ALARM although fewer than M
    datapoints exist when every real datapoint breaches and the oldest one within the last N
    periods is at least M periods old."""
    ages = [len(codes) - i for i in real if len(codes) - i <= n]  # 1 = newest period
    return bool(ages) and all(codes[i] == BREACHING for i in real) and max(ages) >= m


# ---- StateReason ---------------------------------------------------------------------------

def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _listing(starts: Sequence[datetime], slots: Sequence[Datapoint | None],
             indexes: Sequence[int]) -> str:
    return ", ".join(f"{java_double(slots[i].value)} ({format_reason_time(starts[i])})"
                     for i in indexes)


def _insufficient(alarm: MetricAlarm, now: datetime) -> Evaluation:
    n = alarm.evaluation_periods
    reason = f"Insufficient Data: {_plural(n, 'datapoint')} {_was(n)} unknown."
    data = _data_header(alarm, now, None)
    data["recentDatapoints"] = []
    if not alarm.is_band:
        data["threshold"] = float(alarm.threshold)
    else:
        data["recentLowerThresholds"] = []
        data["recentUpperThresholds"] = []
    return Evaluation(INSUFFICIENT_DATA, reason, data, now)


def _reason(alarm: MetricAlarm, state: str, starts: Sequence[datetime],
            slots: Sequence[Datapoint | None], evaluated: Sequence[int], breach: dict[int, bool],
            fills: Sequence[int], fill_kind: str | None) -> str:
    n, m = alarm.evaluation_periods, alarm.datapoints_needed
    want = state == ALARM
    listed = [i for i in reversed(evaluated) if breach[i] == want]  # newest first
    fill_text = (f" and {_plural(len(fills), 'missing datapoint')} {_was(len(fills))} treated as "
                 f"[{fill_kind}]") if fills else ""
    if not listed and fills:
        # Nothing real to list: only the filled datapoints decided (also "no datapoints").
        received = ("no datapoints were" if not evaluated else
                    f"{_plural(len(evaluated), 'datapoint')} {_was(len(evaluated))}")
        return (f"Threshold Crossed: {received} received for {_plural(n, 'period')}"
                f"{fill_text}.")
    dta_form = alarm.datapoints_to_alarm is not None
    negate = not want
    if not listed:
        # OK with missing data although every real datapoint breached (too few of them):
        # list those and say how many ALARM needs.
        listed = [i for i in reversed(evaluated)]
        want, negate, dta_form = True, False, True
    if want:
        suffix = f" (minimum {_plural(m, 'datapoint')} for OK -> ALARM transition)"
    else:
        suffix = f" (minimum {_plural(n - m + 1, 'datapoint')} for ALARM -> OK transition)"
    k = len(listed)
    counted = f"{k} out of the last {n} datapoints" if dta_form else _plural(k, "datapoint")
    if not dta_form:
        suffix = ""
    if alarm.is_band:
        return (f"Thresholds Crossed: {counted} [{_listing(starts, slots, listed)}] {_was(k)} "
                f"{_band_words(alarm, slots, listed, negate)}{fill_text}{suffix}.")
    words = ("not " if negate else "") + _OPERATOR_WORDS[alarm.comparison_operator]
    threshold = java_double(alarm.threshold)
    if k <= _INLINE_LIMIT:
        return (f"Threshold Crossed: {counted} [{_listing(starts, slots, listed)}] {_was(k)} "
                f"{words} the threshold ({threshold}){fill_text}{suffix}.")
    return (f"Threshold Crossed: {counted} were {words} the threshold ({threshold}){fill_text}. "
            f"The most recent datapoints which crossed the threshold: "
            f"[{_listing(starts, slots, listed[:_MOST_RECENT])}]{suffix}.")


def _band_words(alarm: MetricAlarm, slots: Sequence[Datapoint | None], listed: Sequence[int],
                negate: bool) -> str:
    lower = f"[{', '.join(java_double(slots[i].lower) for i in listed)}]"
    upper = f"[{', '.join(java_double(slots[i].upper) for i in listed)}]"
    no = "not " if negate else ""
    op = alarm.comparison_operator
    if op == "LessThanLowerThreshold":
        return f"{no}less than the lower thresholds {lower}"
    if op == "GreaterThanUpperThreshold":
        return f"{no}greater than the upper thresholds {upper}"
    return f"{no}less than the lower thresholds {lower} or {no}greater than the upper thresholds {upper}"


# ---- StateReasonData -----------------------------------------------------------------------

def _data_header(alarm: MetricAlarm, now: datetime, start: datetime | None) -> dict[str, Any]:
    data: dict[str, Any] = {"version": "1.0", "queryDate": format_iso_millis(now)}
    if start is not None:
        data["startDate"] = format_iso_millis(start)
    if alarm.unit:
        data["unit"] = alarm.unit
    if not alarm.is_math:
        if alarm.statistic:
            data["statistic"] = alarm.statistic
        elif alarm.extended_statistic:
            data["extendedStatistic"] = alarm.extended_statistic
    data["period"] = alarm.period
    return data


def _reason_data(alarm: MetricAlarm, state: str, starts: Sequence[datetime],
                 slots: Sequence[Datapoint | None], evaluated: Sequence[int],
                 breach: dict[int, bool], fills: Sequence[int], fill_kind: str | None,
                 now: datetime) -> dict[str, Any]:
    """``recentDatapoints``: the evaluated real values, oldest first.  ``evaluatedDatapoints``:
    the datapoints that justify the state, newest first: the M newest breaching ones for
    ALARM, the N-M+1 newest non-breaching ones for OK (filled ones carry only a timestamp)."""
    n, m = alarm.evaluation_periods, alarm.datapoints_needed
    data = _data_header(alarm, now, starts[evaluated[0]] if evaluated else None)
    data["recentDatapoints"] = [slots[i].value for i in evaluated]
    if alarm.is_band:
        data["recentLowerThresholds"] = [slots[i].lower for i in evaluated]
        data["recentUpperThresholds"] = [slots[i].upper for i in evaluated]
    else:
        data["threshold"] = float(alarm.threshold)
    want = state == ALARM
    fill_counts = (fill_kind == "Breaching") == want
    candidates = [i for i in evaluated if breach[i] == want] + (list(fills) if fill_counts else [])
    needed = m if want else n - m + 1
    justify = sorted(candidates, reverse=True)[:needed]
    if justify:
        data["evaluatedDatapoints"] = [_evaluated_point(starts[i], slots[i]) for i in justify]
    return data


def _evaluated_point(start: datetime, point: Datapoint | None) -> dict[str, Any]:
    item: dict[str, Any] = {"timestamp": format_iso_millis(start)}
    if point is not None:
        if point.sample_count is not None:
            item["sampleCount"] = float(point.sample_count)
        item["value"] = point.value
    return item


__all__ = [
    "range_length", "evaluation_range", "period_starts", "evaluation_interval", "breaches",
    "minimum_samples", "is_low_sample", "evaluate_metric_alarm", "decide", "MISSING",
    "NOT_BREACHING", "BREACHING",
]
