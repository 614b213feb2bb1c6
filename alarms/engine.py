"""Evaluating thousands of metric alarms at once, with the rules of :mod:`alarms.evaluate`.

The scheduler hands over, for every due alarm, its datapoints as one row of a matrix (one
column per period of the evaluation range, right-aligned so that the last column is the
newest completed period; NaN where a period has no datapoint).  Comparisons against the
thresholds run in numpy; the state each row's pattern gives comes from
:func:`alarms.evaluate.decide`, cached per pattern, so a tick costs a dictionary look-up per
alarm.  Only alarms whose state changes go through :func:`evaluate_metric_alarm`, which
builds the StateReason and StateReasonData: the result is exactly what calling
``evaluate_metric_alarm`` for every alarm would give (tests/alarms/test_engine.py checks it).

Pure: no clock, no store.
"""
from __future__ import annotations

from datetime import datetime
from typing import Sequence

import numpy as np

from alarms.evaluate import (decide, evaluate_metric_alarm, minimum_samples, period_starts,
                             range_length)
from alarms.model import ALARM, INSUFFICIENT_DATA, OK, Datapoint, Evaluation, MetricAlarm, utc

_KEEP = -1
_STATE_CODES = {None: _KEEP, OK: 0, ALARM: 1, INSUFFICIENT_DATA: 2}
_OPERATORS = {"GreaterThanThreshold": 0, "GreaterThanOrEqualToThreshold": 1,
              "LessThanThreshold": 2, "LessThanOrEqualToThreshold": 3}


def width(alarms: Sequence[MetricAlarm]) -> int:
    """Columns the matrix needs: the longest evaluation range."""
    return max((range_length(a.evaluation_periods) for a in alarms), default=0)


def row_datapoints(alarm: MetricAlarm, values: np.ndarray, counts: np.ndarray,
                   now: datetime) -> list[Datapoint]:
    """The datapoints of one matrix row (right-aligned) for :func:`evaluate_metric_alarm`."""
    starts = period_starts(alarm, now)
    offset = len(values) - len(starts)
    points = []
    for j, start in enumerate(starts):
        v = values[offset + j]
        if np.isnan(v):
            continue
        c = counts[offset + j]
        points.append(Datapoint(start, float(v), None if np.isnan(c) else float(c)))
    return points


class Plan:
    """The per-alarm constants of a batch, computed once: the scheduler reuses a plan for as
    long as the same alarms are due together."""

    def __init__(self, alarms: Sequence[MetricAlarm]):
        self.alarms = list(alarms)
        count = len(self.alarms)
        self.width = width(self.alarms)
        self.lengths = np.fromiter((range_length(a.evaluation_periods) for a in self.alarms),
                                   dtype=np.int64, count=count)
        self.thresholds = np.fromiter((a.threshold for a in self.alarms), dtype=np.float64,
                                      count=count)[:, None]
        self.ops = np.fromiter((_OPERATORS[a.comparison_operator] for a in self.alarms),
                               dtype=np.int8, count=count)[:, None]
        # (n, m, treat, full): ``full`` sends the alarm through evaluate_metric_alarm every
        # time, because the low-sample rule looks at sample counts
        self.rules = [(a.evaluation_periods, a.datapoints_needed, a.effective_treat_missing_data,
                       a.evaluate_low_sample_count_percentile == "ignore"
                       and minimum_samples(a.extended_statistic) is not None)
                      for a in self.alarms]
        # distinct (n, m, treat) rules, numbered: a row's pattern is decided once per rule
        numbers: dict[tuple, int] = {}
        self.rule_ids = np.fromiter((numbers.setdefault(r[:3], len(numbers)) for r in self.rules),
                                    dtype=np.int64, count=count)
        self.distinct_rules = list(numbers)
        self.full = np.fromiter((r[3] for r in self.rules), dtype=bool, count=count)


def _pattern_keys(rule_ids: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """One key per row, equal for rows of the same rule and slot codes: an integer (two
    bits per code) when that fits in 63 bits, else the row's bytes."""
    cols = codes.shape[1]
    if 2 * cols + max(int(rule_ids.max(initial=0)).bit_length(), 1) <= 63:
        keys = rule_ids.astype(np.int64) << (2 * cols)
        for j in range(cols):
            keys |= codes[:, j].astype(np.int64) << (2 * j)
        return keys
    keyed = np.concatenate([rule_ids.astype(">u4").view(np.uint8).reshape(-1, 4), codes], axis=1)
    return np.ascontiguousarray(keyed).view(np.dtype((np.void, keyed.shape[1]))).ravel()


def evaluate_bulk(alarms: Sequence[MetricAlarm] | Plan, previous: Sequence[str],
                  values: np.ndarray, counts: np.ndarray,
                  now: datetime) -> list[tuple[int, Evaluation]]:
    """Evaluate every alarm at ``now``; return ``(index, Evaluation)`` for those whose state
    changes (retained results and unchanged states are left out).

    ``values``/``counts``: float arrays of shape ``(len(alarms), width(alarms))``, the
    datapoint values and sample counts per period, right-aligned, NaN where there is none.
    Alarms must use one of the four static operators (band alarms need their band per
    datapoint: evaluate those with :func:`evaluate_metric_alarm`).
    """
    plan = alarms if isinstance(alarms, Plan) else Plan(alarms)
    now = utc(now)
    if not plan.alarms:
        return []
    cols = values.shape[1]
    thresholds, ops = plan.thresholds, plan.ops
    present = np.isfinite(values)
    v = np.where(present, values, 0.0)
    breach = np.where(ops == 0, v > thresholds,
                      np.where(ops == 1, v >= thresholds,
                               np.where(ops == 2, v < thresholds, v <= thresholds)))
    codes = np.where(present, np.where(breach, 2, 1), 0).astype(np.uint8)
    codes[np.arange(cols)[None, :] < (cols - plan.lengths)[:, None]] = 0   # outside the range
    # One decide() per distinct (rule, pattern), not per alarm; any row of a pattern stands
    # for all of them (the rule fixes the range length too).
    _, inverse = np.unique(_pattern_keys(plan.rule_ids, codes), return_inverse=True)
    inverse = inverse.ravel()
    first = np.empty(int(inverse.max(initial=-1)) + 1, dtype=np.int64)
    first[inverse] = np.arange(len(inverse))
    lengths = plan.lengths
    decided = np.empty(len(first), dtype=np.int8)
    for u, i in enumerate(first.tolist()):
        n, m, treat = plan.distinct_rules[plan.rule_ids[i]]
        state = decide(codes[i, cols - lengths[i]:].tobytes(), n, m, treat)[0]
        decided[u] = _STATE_CODES[state]
    states = decided[inverse]
    before = np.fromiter(map(_STATE_CODES.__getitem__, previous), dtype=np.int8,
                         count=len(previous))
    candidates = np.flatnonzero(plan.full | ((states != _KEEP) & (states != before)))
    changed = []
    for i in candidates.tolist():
        before = previous[i]
        alarm = plan.alarms[i]
        result = evaluate_metric_alarm(alarm, row_datapoints(alarm, values[i], counts[i], now),
                                       before, now)
        if not result.retained and result.state != before:
            changed.append((i, result))
    return changed


__all__ = ["Plan", "width", "row_datapoints", "evaluate_bulk"]
