"""The alarm service: alarms in memory and in the store, the evaluation tick, transitions.

The only module that imports APScheduler.  One interval job ticks every ``--alarm-interval``
seconds (every 10 s at most, for high-resolution alarms).  A tick

1. picks the due metric alarms (every minute, every 10 s for Period < 60, hourly when
   Period × EvaluationPeriods exceeds a day: reference R1.4, scaled by --alarm-interval);
2. on a read thread, fetches the datapoints of all of them with one SQL statement (percentile
   statistics included; one GetMetricData-style evaluation per metric-math alarm)
   and evaluates them in bulk (:mod:`alarms.engine`, the rules of :mod:`alarms.evaluate`);
3. back on the event loop, re-evaluates the composites whose children changed (and those
   just created or updated), ends elapsed ActionsSuppressor periods, and commits in one
   write: states, StateUpdate / Action history items, and the SNS deliveries of the
   actions (:mod:`alarms.notify`).

The same transition path serves SetAlarmState.  Configuration lives in memory (loaded at
start, changed only after a committed write, under :attr:`AlarmService.lock`), so
DescribeAlarms and the tick never parse configuration again.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import operator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable

import numpy as np

from alarms import engine, messages
from alarms.evaluate import evaluate_metric_alarm
from alarms.model import (ALARM, INITIAL_REASON, INSUFFICIENT_DATA, OK, ChildState,
                          CompositeAlarm, Datapoint, Evaluation, MetricAlarm, to_json)
from alarms.notify import Deliverer, Publisher, Signer, alarm_action
from alarms.rule import alarm_name, evaluate_composite, parse_rule, referenced_in_order
from alarms.webhooks import WebhookPolicy
from metricstore.store import alarms as sql

log = logging.getLogger("metricstore.alarms")

METRIC, COMPOSITE = "MetricAlarm", "CompositeAlarm"
ACTIONS_FOR = {ALARM: "AlarmActions", OK: "OKActions", INSUFFICIENT_DATA: "InsufficientDataActions"}


def _utc(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


def _ms(epoch_seconds: float | None) -> int | None:
    return None if epoch_seconds is None else int(round(epoch_seconds * 1000))


def _s(epoch_ms: int | None) -> float | None:
    return None if epoch_ms is None else epoch_ms / 1000.0


@dataclass(eq=False)
class Entry:
    """One alarm: its configuration (the Put*Alarm parameters), the evaluator's model of it,
    and its state."""

    account: str
    region: str
    name: str
    kind: str
    config: dict
    arn: str
    config_updated: float
    actions_enabled: bool
    state_value: str = INSUFFICIENT_DATA
    state_reason: str = INITIAL_REASON
    state_reason_data: str | None = None
    state_updated: float = 0.0
    state_transitioned: float = 0.0
    suppressed_by: str | None = None
    suppressed_until: float | None = None
    suppress_pending: str | None = None
    model: Any = None
    rule: Any = None
    version: int = 0
    due_at: float = 0.0
    pending_event: str | None = None       # composites: "created" / "updated"
    series_key: tuple | None = None         # (namespace, metric name, dimension key)
    series_id: int | None = None
    unit_code: int = -1
    interval: float = 60.0                  # seconds between evaluations
    math_queries: Any = None                # math alarms: Metrics with batch-unique Ids, or
                                            # False when the alarm cannot share a batch

    @property
    def key(self) -> tuple[str, str, str]:
        return self.account, self.region, self.name

    def row(self) -> dict:
        return {"account": self.account, "region": self.region, "name": self.name,
                "alarm_type": self.kind, "config": json.dumps(self.config),
                "config_updated": _ms(self.config_updated),
                "actions_enabled": self.actions_enabled, "state_value": self.state_value,
                "state_reason": self.state_reason, "state_reason_data": self.state_reason_data,
                "state_updated": _ms(self.state_updated),
                "state_transitioned": _ms(self.state_transitioned),
                "suppressed_by": self.suppressed_by,
                "suppressed_until": _ms(self.suppressed_until),
                "suppress_pending": self.suppress_pending}

    def describe(self) -> dict:
        """The DescribeAlarms member (timestamps in epoch seconds)."""
        c = self.config
        out: dict[str, Any] = {"AlarmName": self.name, "AlarmArn": self.arn}
        if c.get("AlarmDescription") is not None:
            out["AlarmDescription"] = c["AlarmDescription"]
        out.update({"AlarmConfigurationUpdatedTimestamp": self.config_updated,
                    "ActionsEnabled": self.actions_enabled,
                    "OKActions": list(c.get("OKActions") or []),
                    "AlarmActions": list(c.get("AlarmActions") or []),
                    "InsufficientDataActions": list(c.get("InsufficientDataActions") or []),
                    "StateValue": self.state_value, "StateReason": self.state_reason})
        if self.state_reason_data is not None:
            out["StateReasonData"] = self.state_reason_data
        out["StateUpdatedTimestamp"] = self.state_updated
        out["StateTransitionedTimestamp"] = self.state_transitioned
        if self.kind == COMPOSITE:
            out["AlarmRule"] = c["AlarmRule"]
            if self.suppressed_by:
                out["ActionsSuppressedBy"] = self.suppressed_by
                out["ActionsSuppressedReason"] = f"Actions suppressed by {self.suppressed_by}"
            for k in ("ActionsSuppressor", "ActionsSuppressorWaitPeriod",
                      "ActionsSuppressorExtensionPeriod"):
                if c.get(k) is not None:
                    out[k] = c[k]
            return out
        for k in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic"):
            if c.get(k) is not None:
                out[k] = c[k]
        if not c.get("Metrics"):
            out["Dimensions"] = [dict(d) for d in c.get("Dimensions") or []]
        for k in ("Period", "Unit", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
                  "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile",
                  "Metrics", "ThresholdMetricId"):
            if c.get(k) is not None:
                out[k] = c[k]
        if "Threshold" in out:
            out["Threshold"] = float(out["Threshold"])
        return out


def metric_model(name: str, arn: str, c: dict) -> MetricAlarm:
    """The evaluator's MetricAlarm for a PutMetricAlarm configuration."""
    period = c.get("Period")
    if c.get("Metrics"):
        period = math_period(c["Metrics"]) or 60
    return MetricAlarm(
        name=name, arn=arn, namespace=c.get("Namespace"), metric_name=c.get("MetricName"),
        dimensions=tuple((d["Name"], d["Value"]) for d in c.get("Dimensions") or []),
        statistic=c.get("Statistic"), extended_statistic=c.get("ExtendedStatistic"),
        period=int(period), unit=c.get("Unit"), evaluation_periods=c["EvaluationPeriods"],
        datapoints_to_alarm=c.get("DatapointsToAlarm"), threshold=c.get("Threshold"),
        comparison_operator=c["ComparisonOperator"], threshold_metric_id=c.get("ThresholdMetricId"),
        treat_missing_data=c.get("TreatMissingData"),
        evaluate_low_sample_count_percentile=c.get("EvaluateLowSampleCountPercentile"),
        metrics=tuple(c.get("Metrics") or ()), actions_enabled=c.get("ActionsEnabled", True),
        ok_actions=tuple(c.get("OKActions") or ()), alarm_actions=tuple(c.get("AlarmActions") or ()),
        insufficient_data_actions=tuple(c.get("InsufficientDataActions") or ()),
        description=c.get("AlarmDescription"))


def math_period(metrics: list[dict]) -> int | None:
    """The common period of a metric-math alarm's queries."""
    for q in metrics:
        if "MetricStat" in q:
            return int(q["MetricStat"]["Period"])
    for q in metrics:
        if q.get("Period"):
            return int(q["Period"])
    return None


_STATE_VALUE = operator.attrgetter("state_value")
_STAT_CODES = {"Average": 0, "Sum": 1, "SampleCount": 2, "Minimum": 3, "Maximum": 4}
_PERCENTILE = 5


class _Plan:
    """How to read the datapoints of a batch of single-metric alarms.

    One SQL statement aggregates every series the alarms read into buckets of the largest
    period that divides all alarm periods (:func:`~metricstore.store.alarms.alarm_buckets`);
    numpy rolls those up into each alarm's periods (count, sum, min and max combine exactly)
    and lays them out right-aligned, as :mod:`alarms.engine` wants them.  The series read by
    percentile statistics are read once more, sample by sample, for the (value, weight)
    pairs the percentiles need.  What depends only on the alarms is computed here, once: the
    scheduler keeps the plan for as long as the same alarms are due together.
    """

    def __init__(self, entries: list[Entry], series_count: int):
        from metricstore import stats

        self.entries = entries
        models = [e.model for e in entries]
        self.bulk = engine.Plan(models)
        self.width = self.bulk.width
        count = len(entries)
        self.period = np.fromiter((m.period for m in models), dtype=np.int64, count=count)
        self.length = self.bulk.lengths
        self.unit = np.fromiter((e.unit_code for e in entries), dtype=np.int64, count=count)
        self.stat = np.fromiter((_STAT_CODES.get(m.statistic, _PERCENTILE) if m.statistic
                                 else _PERCENTILE for m in models), dtype=np.int8, count=count)
        sid = np.fromiter((-1 if e.series_id is None else e.series_id for e in entries),
                          dtype=np.int64, count=count)
        self.sid = sid
        known = np.flatnonzero(sid >= 0)
        self.unknown = [entries[i] for i in np.flatnonzero(sid < 0).tolist()]
        self.grain = int(np.gcd.reduce(self.period[known])) if len(known) else 60
        # alarms grouped by series, to spread a series' buckets over its alarms
        self.order = known[np.argsort(sid[known], kind="stable")]
        self.sids, self.first, self.per_sid = np.unique(sid[self.order], return_index=True,
                                                        return_counts=True)
        self.single = len(self.sids) == len(known)      # no two alarms read one series
        # series id -> its position in ``sids`` (-1: a series no alarm reads) by a lookup
        # table while the ids are dense enough (the store numbers series 1, 2, 3, ...); its
        # last slot, where larger ids land, is -1
        self.position = None
        top = int(self.sids[-1]) + 1 if len(self.sids) else 0
        if top <= 8 * len(self.sids) + 65536:
            self.position = np.full(top + 1, -1, dtype=np.int32)
            self.position[self.sids] = np.arange(len(self.sids))
        self.ratio = self.period // self.grain          # buckets per period
        self.unit_filter = bool((self.unit >= 0).any())
        # reading most series: scanning them all beats filtering by a list of ids
        self.every_series = len(self.sids) * 2 >= series_count
        # what an alarm's cells start from before its buckets are folded in (NaN: never
        # touched by the aggregates, percentiles fill it)
        start_values = np.array([0.0, 0.0, 0.0, np.inf, -np.inf, np.nan])
        self.initial = np.repeat(start_values[self.stat], self.width)
        # percentile statistics: a number per distinct name (-1: not a percentile alarm)
        names: dict[str, int] = {}
        self.percentile = np.full(count, -1, dtype=np.int64)
        for i in known[self.stat[known] == _PERCENTILE].tolist():
            self.percentile[i] = names.setdefault(models[i].extended_statistic, len(names))
        self.percentile_stats = [stats.parse_extended_statistic(name) for name in names]
        self.percentile_sids = np.unique(sid[self.percentile >= 0]).astype(np.int32)

    def _spread(self, sid: np.ndarray, unit: np.ndarray, fb: np.ndarray, first_period: np.ndarray):
        """Bucket rows → (row, alarm row, flat matrix index) for every alarm of the row's
        series whose evaluation range and unit take the bucket.  ``first_period``: per alarm,
        the number of its first period (start // period)."""
        if self.position is not None:
            pos = self.position[np.minimum(sid, len(self.position) - 1)]
        else:
            pos = np.minimum(np.searchsorted(self.sids, sid), len(self.sids) - 1)
            pos = np.where(self.sids[pos] == sid, pos, -1)
        if self.single:
            row = np.flatnonzero(pos >= 0)
            alarm = self.order[pos[row]]
        else:
            per = np.where(pos >= 0, self.per_sid[pos], 0)
            row = np.repeat(np.arange(len(sid)), per)
            within = np.arange(len(row)) - np.repeat(np.cumsum(per) - per, per)
            alarm = self.order[np.repeat(self.first[pos], per) + within]
        slot = fb[row].astype(np.int64) // self.ratio[alarm] - first_period[alarm]
        length = self.length[alarm]
        ok = (slot >= 0) & (slot < length)
        if self.unit_filter:
            wanted = self.unit[alarm]
            ok &= (wanted < 0) | (wanted == unit[row])
        if not ok.all():
            row, alarm, slot, length = row[ok], alarm[ok], slot[ok], length[ok]
        return row, alarm, alarm * self.width + slot + (self.width - length)

    def datapoints(self, cur, now: float) -> tuple[np.ndarray, np.ndarray]:
        shape = (len(self.entries), self.width)
        if len(self.sids) == 0:
            return np.full(shape, np.nan), np.full(shape, np.nan)
        now_s = int(math.floor(now))
        end = now_s - now_s % self.period          # completed periods only
        start = end - self.period * self.length
        known = self.order
        lo, hi = int(start[known].min()) * 1000, int(end[known].max()) * 1000
        grain_ms = self.grain * 1000
        buckets, samples = sql.alarm_buckets(cur, self.sids.astype(np.int32), grain_ms, lo, hi,
                                             self.every_series, self.percentile_sids)
        if len(buckets["sid"]) == 0:
            return np.full(shape, np.nan), np.full(shape, np.nan)
        first_period = start // self.period
        row, alarm, flat = self._spread(buckets["sid"], buckets["unit"], buckets["fb"],
                                        first_period)
        # fold the buckets into their cells in place (ufunc.at: sequential, so sums add up
        # in row order; no sort)
        values = self.initial.copy()
        counts = np.zeros(values.size)
        seen = np.zeros(values.size, dtype=bool)
        seen[flat] = True
        np.add.at(counts, flat, buckets["n"][row])
        kind = self.stat[alarm]
        summed = kind <= 1                                  # Average, Sum
        np.add.at(values, flat[summed], buckets["s"][row[summed]])
        low, high = kind == 3, kind == 4
        np.minimum.at(values, flat[low], buckets["lo"][row[low]])
        np.maximum.at(values, flat[high], buckets["hi"][row[high]])
        cells = np.flatnonzero(seen)
        cell_kind = self.stat[cells // self.width]
        with np.errstate(invalid="ignore", divide="ignore"):
            average = cells[cell_kind == 0]
            values[average] /= counts[average]
        sample_count = cells[cell_kind == 2]
        values[sample_count] = counts[sample_count]
        if samples is not None:
            self._percentiles(samples, first_period, values)
            # a period with statistic sets has no percentile (as GetMetricStatistics)
            sets = buckets["sets"][row] > 0
            values[flat[sets & (kind == _PERCENTILE)]] = np.nan
        values[~seen] = np.nan
        counts[~seen] = np.nan
        return values.reshape(shape), counts.reshape(shape)

    def _percentiles(self, rows: dict, first_period: np.ndarray, values: np.ndarray) -> None:
        """Percentile-type statistics from the samples of their series, into ``values``
        (flat).  Cells without a defined value keep NaN."""
        from metricstore import stats

        row, alarm, flat = self._spread(rows["sid"], rows["unit"], rows["fb"], first_period)
        which = self.percentile[alarm]        # -1: an alarm of another statistic
        for number, stat in enumerate(self.percentile_stats):
            mine = which == number
            if not mine.any():
                continue
            got = stats.compute_grouped(stat, flat[mine], rows["value"][row[mine]],
                                        rows["weight"][row[mine]])
            if got:
                cells = np.fromiter(got.keys(), dtype=np.int64, count=len(got))
                values[cells] = np.fromiter(got.values(), dtype=np.float64, count=len(got))


def _points(series_list) -> list[Datapoint]:
    """The datapoints of a metric-math alarm: its returned query's first series."""
    points = []
    for series in series_list[:1]:
        for t, v in zip(series.timestamps, series.values):
            if math.isfinite(float(v)):
                points.append(Datapoint(_utc(float(t)), float(v)))
    return points


def _batch_queries(metrics: list[dict], prefix: str) -> list[dict] | bool:
    """A math alarm's ``Metrics`` with every Id (and every reference to one) prefixed, so
    that several alarms fit in one GetMetricData-style run; False when the alarm must run
    alone.  Only expressions of numbers, Ids and operators are batched: functions such as
    ``METRICS()`` or ``SEARCH()`` see every query of the request, and a scalar result is
    laid on the timestamps of every series of the request, so sharing a run could change
    those results."""
    from query import metric_math as mm

    def rename(node):
        if isinstance(node, mm.IdRef):
            return dataclasses.replace(node, name=prefix + node.name)
        if isinstance(node, mm.Number):
            return node
        if isinstance(node, mm.UnaryOp):
            operand = rename(node.operand)
            return None if operand is None else dataclasses.replace(node, operand=operand)
        if isinstance(node, mm.BinaryOp):
            left, right = rename(node.left), rename(node.right)
            if left is None or right is None:
                return None
            return dataclasses.replace(node, left=left, right=right)
        return None     # functions, arrays, strings, keywords

    out = []
    for q in metrics:
        q = dict(q, Id=prefix + q["Id"])
        if "Expression" in q:
            try:
                tree = mm.parse(q["Expression"])
            except Exception:
                return False
            if not mm.referenced_ids(tree):
                return False    # a constant: a scalar result
            renamed = rename(tree)
            if renamed is None:
                return False
            q["Expression"] = mm.render(renamed)
        out.append(q)
    return out


@dataclass
class Change:
    """A state change to commit: the alarm's new state and what to do about it."""

    entry: Entry
    old_value: str
    old_reason: str
    new_value: str
    new_reason: str
    new_data: str | None
    at: float
    history: bool = True           # write a StateUpdate item
    actions: str | None = None     # run the actions of this state now (None: none)
    actions_old: str | None = None  # OldStateValue of the message


@dataclass
class _Pending:
    """What one commit changes in memory once it is durable."""

    changes: list[Change] = field(default_factory=list)
    touched: dict = field(default_factory=dict)      # key -> Entry with new suppression state
    actions: list[tuple[Entry, str, str, float]] = field(default_factory=list)  # deferred


class _Batch:
    """A set of due metric alarms as each of its evaluations sees it: which are single-metric
    (read together by one :class:`_Plan`, made on the read thread when first needed) and
    which metric math, and their evaluation intervals."""

    def __init__(self, due: list[Entry]):
        single = [i for i, e in enumerate(due) if e.series_key is not None]
        self.math = [i for i, e in enumerate(due) if e.series_key is None]
        self.bulk = None if len(single) == len(due) else single     # None: all of them
        self.single = due if self.bulk is None else [due[i] for i in single]
        intervals: dict[float, list[Entry]] = {}
        for e in due:
            intervals.setdefault(e.interval, []).append(e)
        self.by_interval = list(intervals.items())
        self._plan: _Plan | None = None

    def plan(self, make, lookup) -> "_Plan | None":
        """The plan of the single-metric alarms (``make(entries)``), made again once a series
        it lacked exists (series appear with their first PutMetricData; ``lookup`` as
        :meth:`MetricsStore.series_id`)."""
        if not self.single:
            return None
        plan = self._plan
        if plan is not None and plan.unknown and any(
                lookup(e.account, e.region, *e.series_key) is not None for e in plan.unknown):
            plan = None
        if plan is None:
            plan = self._plan = make(self.single)
        return plan


class AlarmService:
    """Alarms of every account and region of the server."""

    def __init__(self, server):
        self.server = server
        self.store = server.store
        self.clock = server.clock
        self.config = server.config
        self.entries: dict[tuple[str, str, str], Entry] = {}
        self.lock = asyncio.Lock()
        self._scheduler = None
        sql.apply_schema(self.store)
        self.signer = Signer(None if self.config.data_dir == ":memory:" else self.config.data_dir)
        self.publisher = Publisher(self.signer, self.config.public_base_url)
        self.webhook_policy = WebhookPolicy.from_config(self.config)
        self.deliverer: Deliverer | None = None
        self._generation = 0            # bumped by every configuration change
        self._batches: dict = {}        # sets of due alarms -> _Batch, for one generation
        self._batch_generation = -1
        self._kind_cache: tuple | None = None
        self._math_serial = 0           # makes metric-math query Ids unique within a batch
        self.reload()

    # ---- life cycle ----------------------------------------------------------------------------

    def reload(self) -> None:
        """(Re)load every alarm from the store; all metric alarms become due."""
        self.entries.clear()
        self._generation += 1
        now = self.clock.now()
        for row in self.store.read_sync(sql.load_alarms):
            entry = self._entry_from_row(row)
            entry.due_at = now
            if entry.kind == COMPOSITE and entry.state_reason == INITIAL_REASON:
                entry.pending_event = "created"     # stopped before its first evaluation
            self.entries[entry.key] = entry

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        logging.getLogger("apscheduler").setLevel(logging.WARNING)   # one line per tick otherwise
        self.deliverer = Deliverer(self.store, self.clock, policy=self.webhook_policy)
        await self.deliverer.start()
        self._scheduler = AsyncIOScheduler(timezone=timezone.utc)
        self._scheduler.add_job(self.tick, "interval", seconds=self.tick_seconds,
                                max_instances=1, coalesce=True, misfire_grace_time=None,
                                next_run_time=datetime.now(timezone.utc), id="alarm-tick")
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        async with self.lock:   # let a running tick finish its commit
            pass
        if self.deliverer is not None:
            await self.deliverer.stop()
            self.deliverer = None

    @property
    def tick_seconds(self) -> float:
        return float(min(self.config.alarm_interval, 10))

    def interval(self, entry: Entry) -> float:
        """Seconds between evaluations (R1.4), with --alarm-interval as the minute."""
        base = float(self.config.alarm_interval)
        model = entry.model
        if model.period < 60:
            return min(10.0, base)
        if model.period * model.evaluation_periods > 86400:
            return max(3600.0, base)
        return base

    def wake_deliverer(self) -> None:
        if self.deliverer is not None:
            self.deliverer.wake()

    # ---- building entries --------------------------------------------------------------------

    def arn(self, account: str, region: str, name: str) -> str:
        partition = "aws-cn" if region.startswith("cn-") else (
            "aws-us-gov" if region.startswith("us-gov-") else "aws")
        return f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{name}"

    def build(self, account: str, region: str, name: str, kind: str, config: dict,
              now: float) -> Entry:
        entry = Entry(account, region, name, kind, config, self.arn(account, region, name),
                      now, config.get("ActionsEnabled", True), state_updated=now,
                      state_transitioned=now)
        self._prepare(entry)
        return entry

    def _entry_from_row(self, row: dict) -> Entry:
        entry = Entry(row["account"], row["region"], row["name"], row["alarm_type"],
                      json.loads(row["config"]), self.arn(row["account"], row["region"], row["name"]),
                      _s(row["config_updated"]), bool(row["actions_enabled"]),
                      row["state_value"], row["state_reason"], row["state_reason_data"],
                      _s(row["state_updated"]), _s(row["state_transitioned"]),
                      row["suppressed_by"], _s(row["suppressed_until"]), row["suppress_pending"])
        self._prepare(entry)
        return entry

    def _prepare(self, entry: Entry) -> None:
        from metricstore.operations.metrics import UNIT_CODE
        from metricstore.store.metrics import dim_key

        c = entry.config
        if entry.kind == COMPOSITE:
            entry.model = CompositeAlarm(name=entry.name, arn=entry.arn, rule_text=c["AlarmRule"])
            entry.rule = parse_rule(c["AlarmRule"])
            return
        entry.model = metric_model(entry.name, entry.arn, c)
        entry.interval = self.interval(entry)
        if not c.get("Metrics"):
            entry.series_key = (c["Namespace"], c["MetricName"], dim_key(c.get("Dimensions") or []))
            entry.unit_code = UNIT_CODE[c["Unit"]] if c.get("Unit") else -1

    # ---- lookups ------------------------------------------------------------------------------

    def get(self, account: str, region: str, name: str) -> Entry | None:
        return self.entries.get((account, region, name))

    def resolve(self, account: str, region: str, reference: str) -> Entry | None:
        """A rule's child reference (name or ARN) in this account and region."""
        if reference.startswith("arn:"):
            parts = reference.split(":", 6)
            if len(parts) != 7 or parts[3] != region or parts[4] != account:
                return None
        return self.entries.get((account, region, alarm_name(reference)))

    def _by_kind(self) -> dict[str, list[Entry]]:
        cached = self._kind_cache
        if cached is None or cached[0] != self._generation:
            kinds: dict[str, list[Entry]] = {METRIC: [], COMPOSITE: []}
            for e in self.entries.values():
                kinds[e.kind].append(e)
            cached = self._kind_cache = (self._generation, kinds)
        return cached[1]

    def composites(self) -> list[Entry]:
        """Every composite alarm (cached until the next configuration change)."""
        return self._by_kind()[COMPOSITE]

    def metric_alarms(self) -> list[Entry]:
        """Every metric alarm (cached until the next configuration change)."""
        return self._by_kind()[METRIC]

    def in_scope(self, account: str, region: str) -> Iterable[Entry]:
        return (e for e in self.entries.values() if e.account == account and e.region == region)

    def parents(self, entry: Entry) -> list[Entry]:
        """Composites whose rule references ``entry``."""
        out = []
        for e in self.in_scope(entry.account, entry.region):
            if e.kind == COMPOSITE and any(self.resolve(e.account, e.region, ref) is entry
                                           for ref in referenced_in_order(e.rule)):
                out.append(e)
        return out

    def children(self, entry: Entry) -> list[Entry]:
        out = []
        for ref in referenced_in_order(entry.rule):
            child = self.resolve(entry.account, entry.region, ref)
            if child is not None and child not in out:
                out.append(child)
        return out

    # ---- the tick -------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Evaluate what is due; returns the number of state changes committed."""
        try:
            now = self.clock.now()
            metric = self.metric_alarms()
            due = [e for e in metric if e.due_at <= now]
            if len(due) == len(metric):
                due = metric            # the usual case: one cached batch for all of them
            previous = list(map(_STATE_VALUE, due))     # the states the evaluation starts from
            results: list[tuple[int, Evaluation]] = []
            if due:
                results = await self.store.read(
                    lambda cur: self.evaluate_sync(cur, due, previous, now))
            async with self.lock:
                pending = _Pending()
                for i, evaluation in results:
                    entry = due[i]
                    # replaced (PutMetricAlarm) or moved (SetAlarmState) meanwhile: evaluated
                    # again next time
                    if self.entries.get(entry.key) is not entry or entry.state_value != previous[i]:
                        continue
                    pending.changes.append(self._change(entry, evaluation.state, evaluation.reason,
                                                        evaluation.reason_data_json, now))
                for step, entries in self._batch(due).by_interval:
                    next_due = (now // step + 1) * step     # the next multiple of it
                    for entry in entries:
                        entry.due_at = next_due
                for entry in self.composites():
                    if entry.pending_event:
                        self._evaluate_new_composite(entry, pending, now)
                self._cascade(pending, now)
                self._expire_suppression(pending, now)
                await self._commit(pending, now)
            return len(pending.changes)
        except Exception:
            log.exception("alarm tick failed")
            raise

    def evaluate_sync(self, cur, due: list[Entry], previous: list[str],
                      now: float) -> list[tuple[int, Evaluation]]:
        """Fetch and evaluate (on a read thread) the metric alarms ``due``, whose states were
        ``previous``: ``(position in due, Evaluation)`` for every alarm whose state changes."""
        when = _utc(now)
        batch = self._batch(due)
        plan = batch.plan(self._plan, self.server.metrics.series_id)
        out = []
        if plan is not None:
            values, counts = plan.datapoints(cur, now)
            bulk = batch.bulk
            before = previous if bulk is None else [previous[i] for i in bulk]
            changed = engine.evaluate_bulk(plan.bulk, before, values, counts, when)
            out.extend(changed if bulk is None else [(bulk[i], ev) for i, ev in changed])
        math_alarms = [due[i] for i in batch.math]
        batched = self._math_batches(cur, math_alarms, now)
        for i, entry in zip(batch.math, math_alarms):
            try:
                points = batched.get(id(entry))
                if points is None:
                    points = self._math_datapoints(cur, entry, now)
                ev = evaluate_metric_alarm(entry.model, points, previous[i], when)
            except Exception:  # a bad expression must not stop the other alarms
                log.exception("evaluating metric-math alarm %s failed", entry.arn)
                continue
            if not ev.retained and ev.state != previous[i]:
                out.append((i, ev))
        return out

    def _batch(self, due: list[Entry]) -> "_Batch":
        """The batch of these due alarms, cached for a few sets of due alarms (the usual one
        is all of them) until the next configuration change."""
        if self._batch_generation != self._generation:
            self._batches = {}
            self._batch_generation = self._generation
        key = None if due is self.metric_alarms() else tuple(map(id, due))
        batch = self._batches.get(key)
        if batch is None:
            if len(self._batches) >= 4:
                self._batches.pop(next(iter(self._batches)))
            batch = self._batches[key] = _Batch(due)
        return batch

    def _plan(self, entries: list[Entry]) -> "_Plan":
        """The batch plan for these single-metric alarms (it looks up the series ids still
        unknown)."""
        lookup = self.server.metrics.series_id
        for e in entries:
            if e.series_id is None:
                e.series_id = lookup(e.account, e.region, *e.series_key)
        return _Plan(entries, len(self.server.metrics._info))   # series known to the store

    def _math_datapoints(self, cur, entry: Entry, now: float) -> list[Datapoint]:
        from alarms.evaluate import evaluation_range
        from metricstore.operations import Context
        from metricstore.operations.metric_data import _run

        start, end = evaluation_range(entry.model, _utc(now))
        ctx = Context(entry.account, entry.region, self.server)
        results = _run(cur, ctx, entry.config["Metrics"], start.timestamp(), end.timestamp(), now)
        for _, series_list in results:
            return _points(series_list)
        return []

    def _math_batches(self, cur, entries: list[Entry], now: float) -> dict[int, list[Datapoint]]:
        """The datapoints of metric-math alarms evaluated together: alarms of one account,
        region, period and evaluation range share one GetMetricData-style run (so their
        MetricStat queries are one SQL statement per period), with their query Ids made
        unique.  Only plain arithmetic expressions are batched (see :func:`_batch_queries`);
        the others, and a batch that fails, are left to :meth:`_math_datapoints`.
        ``{id(entry): datapoints}``."""
        from alarms.evaluate import evaluation_range
        from metricstore.operations import Context
        from metricstore.operations.metric_data import _run

        groups: dict[tuple, list[Entry]] = {}
        when = _utc(now)
        for entry in entries:
            if entry.math_queries is None:
                self._math_serial += 1
                entry.math_queries = _batch_queries(entry.config["Metrics"],
                                                    f"a{self._math_serial}_")
            if entry.math_queries is False:
                continue
            start, end = evaluation_range(entry.model, when)
            groups.setdefault((entry.account, entry.region, entry.model.period, start, end),
                              []).append(entry)
        out: dict[int, list[Datapoint]] = {}
        for (account, region, _, start, end), members in groups.items():
            if len(members) < 2:
                continue
            queries = [q for e in members for q in e.math_queries]
            owner = {q["Id"]: e for e in members for q in e.math_queries}
            try:
                results = _run(cur, Context(account, region, self.server), queries,
                               start.timestamp(), end.timestamp(), now)
            except Exception:   # evaluated one by one instead, where the culprit is logged
                continue
            for query, series_list in results:
                entry = owner[query["Id"]]
                if id(entry) not in out:       # the alarm's first returned query
                    out[id(entry)] = _points(series_list)
        return out

    # ---- composites and suppression ---------------------------------------------------------------

    def _state_of(self, entry: Entry, pending: _Pending) -> tuple[str, float]:
        for change in reversed(pending.changes):
            if change.entry is entry:
                return change.new_value, change.at
        return entry.state_value, entry.state_updated

    def _child_states(self, composite: Entry, pending: _Pending) -> dict[str, ChildState]:
        states = {}
        for ref in referenced_in_order(composite.rule):
            child = self.resolve(composite.account, composite.region, ref)
            if child is None:   # deleted child: AWS keeps evaluating with it missing
                states[ref] = ChildState(ref if ref.startswith("arn:") else self.arn(
                    composite.account, composite.region, ref), INSUFFICIENT_DATA, _utc(0))
                continue
            value, at = self._state_of(child, pending)
            states[ref] = ChildState(child.arn, value, _utc(at))
        return states

    def _evaluate_new_composite(self, entry: Entry, pending: _Pending, now: float) -> None:
        event = entry.pending_event
        entry.pending_event = None
        previous, _ = self._state_of(entry, pending)
        ev = evaluate_composite(entry.model, self._child_states(entry, pending), previous,
                                _utc(now), event=event, rule=entry.rule)
        if ev.state != previous:
            pending.changes.append(self._change(entry, ev.state, ev.reason, ev.reason_data_json,
                                                now, previous=previous))

    def _cascade(self, pending: _Pending, now: float, start: int = 0) -> None:
        """Re-evaluate composites whose children changed (from ``pending.changes[start:]``),
        until nothing changes; also moves ActionsSuppressor periods."""
        composites = self.composites()
        if not composites:
            return
        children = {id(c): [(ref, self.resolve(c.account, c.region, ref))
                            for ref in referenced_in_order(c.rule)] for c in composites}
        suppressed: dict[int, list[Entry]] = {}
        for c in composites:
            suppressor = self._suppressor_of(c)
            if suppressor is not None:
                suppressed.setdefault(id(suppressor), []).append(c)
        seen = start
        for _ in range(len(composites) + 2):
            fresh = pending.changes[seen:]
            if not fresh:
                return
            seen = len(pending.changes)
            changed = {id(c.entry) for c in fresh}
            for change in fresh:
                for composite in suppressed.get(id(change.entry), ()):
                    self._suppressor_moved(composite, change, pending, now)
            for composite in composites:
                trigger = next((ref for ref, child in children[id(composite)]
                                if child is not None and id(child) in changed), None)
                if trigger is None:
                    continue
                previous, _ = self._state_of(composite, pending)
                ev = evaluate_composite(composite.model, self._child_states(composite, pending),
                                        previous, _utc(now), trigger=trigger, rule=composite.rule)
                if ev.state != previous:
                    pending.changes.append(self._change(composite, ev.state, ev.reason,
                                                        ev.reason_data_json, now, previous=previous))
        log.error("composite alarm evaluation did not settle")

    def _suppressor_of(self, composite: Entry) -> Entry | None:
        ref = composite.config.get("ActionsSuppressor")
        return self.resolve(composite.account, composite.region, ref) if ref else None

    def _touch(self, entry: Entry, pending: _Pending) -> Entry:
        """A working copy of ``entry``'s suppression state for this commit."""
        copy = pending.touched.get(entry.key)
        if copy is None:
            copy = pending.touched[entry.key] = Entry(
                entry.account, entry.region, entry.name, entry.kind, entry.config, entry.arn,
                entry.config_updated, entry.actions_enabled,
                suppressed_by=entry.suppressed_by, suppressed_until=entry.suppressed_until,
                suppress_pending=entry.suppress_pending)
        return copy

    def _suppressor_moved(self, composite: Entry, change: Change, pending: _Pending,
                          now: float) -> None:
        """``composite``'s suppressor changed state: Alarm suppression, or the
        ExtensionPeriod (R6.5)."""
        work = self._touch(composite, pending)
        if change.new_value == ALARM:
            work.suppressed_by, work.suppressed_until = "Alarm", None
        elif change.old_value == ALARM and work.suppressed_by == "Alarm":
            work.suppressed_by = "ExtensionPeriod"
            work.suppressed_until = now + composite.config["ActionsSuppressorExtensionPeriod"]

    def _expire_suppression(self, pending: _Pending, now: float) -> None:
        for entry in self.composites():
            work = pending.touched.get(entry.key, entry)
            if (work.suppressed_by in ("WaitPeriod", "ExtensionPeriod")
                    and work.suppressed_until is not None and work.suppressed_until <= now):
                work = self._touch(entry, pending)
                held = work.suppress_pending
                work.suppressed_by = work.suppressed_until = work.suppress_pending = None
                if held is not None and entry.actions_enabled:
                    state, _ = self._state_of(entry, pending)
                    pending.actions.append((entry, held, state, now))

    # ---- changes and commits -------------------------------------------------------------------------

    def _change(self, entry: Entry, value: str, reason: str, data: str | None, now: float, *,
                previous: str | None = None, history: bool = True) -> Change:
        """A state change of ``entry``, with the actions it runs (or holds, for a composite
        with an ActionsSuppressor)."""
        old = previous if previous is not None else entry.state_value
        change = Change(entry, old, entry.state_reason, value, reason, data, now, history)
        if old != value and entry.actions_enabled:
            change.actions, change.actions_old = value, old
        return change

    def _hold_actions(self, pending: _Pending, now: float) -> None:
        """Composite actions wait for the suppressor (WaitPeriod) or are held while it is in
        ALARM (R6.5)."""
        for change in pending.changes:
            entry = change.entry
            if entry.kind != COMPOSITE or not entry.config.get("ActionsSuppressor"):
                continue
            if change.old_value == change.new_value:
                continue
            work = self._touch(entry, pending)
            suppressor = self._suppressor_of(entry)
            suppressor_state = self._state_of(suppressor, pending)[0] if suppressor else None
            if suppressor_state == ALARM:
                work.suppressed_by, work.suppressed_until = "Alarm", None
            else:
                work.suppressed_by = "WaitPeriod"
                work.suppressed_until = now + entry.config["ActionsSuppressorWaitPeriod"]
            if change.actions is not None:
                work.suppress_pending = work.suppress_pending or change.actions_old
                change.actions = None

    async def _commit(self, pending: _Pending, now: float) -> None:
        """Write the changes, their history and their actions in one transaction, then apply
        them in memory.  Call with :attr:`lock` held."""
        self._hold_actions(pending, now)
        if not pending.changes and not pending.touched and not pending.actions:
            return
        final: dict[tuple, dict] = {}
        transitions: list[Change] = []
        publications: list[tuple[Entry, str, str, str, str, float]] = []
        for change in pending.changes:
            entry = change.entry
            state = final.setdefault(entry.key, {"entry": entry,
                                                 "state_transitioned": entry.state_transitioned})
            state.update(state_value=change.new_value, state_reason=change.new_reason,
                         state_reason_data=change.new_data, state_updated=change.at)
            if change.old_value != change.new_value:
                state["state_transitioned"] = change.at
            if change.history and change.old_value != change.new_value:
                transitions.append(change)
            if change.actions is not None:
                publications.append((entry, change.actions_old, change.new_value,
                                     change.new_reason, change.new_data, change.at))
        for entry, old, state_value, at in pending.actions:
            current = final.get(entry.key)
            reason = current["state_reason"] if current else entry.state_reason
            data = current["state_reason_data"] if current else entry.state_reason_data
            publications.append((entry, old, state_value, reason, data, at))
        rows = []
        for key in set(final) | set(pending.touched):
            entry = self.entries[key]
            row = entry.row()
            if key in final:
                f = final[key]
                row.update(state_value=f["state_value"], state_reason=f["state_reason"],
                           state_reason_data=f["state_reason_data"],
                           state_updated=_ms(f["state_updated"]),
                           state_transitioned=_ms(f["state_transitioned"]))
            if key in pending.touched:
                t = pending.touched[key]
                row.update(suppressed_by=t.suppressed_by, suppressed_until=_ms(t.suppressed_until),
                           suppress_pending=t.suppress_pending)
            rows.append(row)
        publications = [p for p in publications if p[0].config.get(ACTIONS_FOR[p[2]])]

        def write(w):
            # History and messages are built here, on the writer thread: a burst of thousands
            # of transitions does not hold up the event loop.
            sql.update_alarm_state(w, rows)
            items = []
            for change in transitions:
                entry = change.entry
                summary, data = messages.state_update(change.old_value, change.old_reason,
                                                      change.new_value, change.new_reason,
                                                      change.new_data)
                items.append((entry.account, entry.region, entry.name, entry.kind,
                              _ms(change.at), "StateUpdate", summary, data))
            jobs = [self._publication(*p) for p in publications]
            for entry, at, arns, message, subject_text in jobs:
                published = to_json({"default": message})
                for arn in arns:
                    error, deliveries = self._run_action(w, entry, arn, message, published,
                                                         subject_text, _ms(at))
                    if deliveries:
                        continue    # each delivery writes its Action item once it is settled
                    summary, data = messages.action(
                        arn, _ms(at), None if error else published, error)
                    items.append((entry.account, entry.region, entry.name, entry.kind, _ms(at),
                                  "Action", summary, data))
            sql.add_history(w, items)

        await self.store.write(write)
        for key, f in final.items():
            entry = f["entry"]
            entry.state_value, entry.state_reason = f["state_value"], f["state_reason"]
            entry.state_reason_data = f["state_reason_data"]
            entry.state_updated, entry.state_transitioned = f["state_updated"], f["state_transitioned"]
        for key, t in pending.touched.items():
            entry = self.entries.get(key)
            if entry is not None:
                entry.suppressed_by, entry.suppressed_until = t.suppressed_by, t.suppressed_until
                entry.suppress_pending = t.suppress_pending
        if publications:
            self.wake_deliverer()

    def _publication(self, entry: Entry, old: str, new: str, reason: str, data: str | None,
                     at: float) -> tuple:
        arns = list(entry.config.get(ACTIONS_FOR[new]) or [])
        describe = entry.describe()
        children = messages.triggering_children(data) if entry.kind == COMPOSITE else None
        message = messages.alarm_message(describe, account=entry.account, region=entry.region,
                                         old_state=old, new_state=new, reason=reason,
                                         changed_at=at, triggering_children=children)
        return entry, at, arns, message, messages.subject(new, entry.name, entry.region)

    def _run_action(self, w, entry: Entry, arn: str, message: str, published: str,
                    subject: str, at_ms: int) -> tuple[str | None, int]:
        """Execute one alarm action inside the commit: (the error text or None, the number
        of SNS deliveries enqueued).

        Action history (R8.4): a failure to publish (no such topic, an action type this
        server does not run) is an immediate ``Failed to execute action`` item, and so is a
        publish to a topic without confirmed subscriptions a ``Successfully executed
        action`` item at once.  Otherwise every delivery to a subscriber carries the alarm
        and writes its own item when its outcome is final (:func:`alarms.notify.action_item`):
        succeeded when the endpoint answered, failed with the last error when the delivery
        policy gave up; stamped with the transition's time either way.
        """
        parts = arn.split(":")
        if len(parts) >= 6 and parts[2] == "sns":
            topic = sql.get_topic(w, arn)
            if topic is None:
                return "Resource not found", 0
            action = alarm_action(entry.account, entry.region, entry.name, entry.kind, at_ms,
                                  arn, published)
            _, count = self.publisher.publish(w, topic, message, subject, at_ms,
                                              alarm_action=action)
            return None, count
        service = parts[2] if len(parts) > 2 else arn
        return f"metricstore does not execute {service} actions", 0

    # ---- used by the operations (call with the lock held) -------------------------------------------

    async def put(self, entry: Entry, previous: Entry | None, tags: list[dict] | None) -> None:
        """Create or replace an alarm; an update keeps the state (R1.3)."""
        now = entry.config_updated
        if previous is not None:
            entry.state_value, entry.state_reason = previous.state_value, previous.state_reason
            entry.state_reason_data = previous.state_reason_data
            entry.state_updated = previous.state_updated
            entry.state_transitioned = previous.state_transitioned
            entry.version = previous.version + 1
            if entry.kind == COMPOSITE and previous.kind == COMPOSITE:
                if previous.config.get("ActionsSuppressor") == entry.config.get("ActionsSuppressor"):
                    entry.suppressed_by = previous.suppressed_by
                    entry.suppressed_until = previous.suppressed_until
                    entry.suppress_pending = previous.suppress_pending
        entry.due_at = now
        if entry.kind == COMPOSITE:
            entry.pending_event = "updated" if previous is not None else "created"
        describe = entry.describe()
        if previous is None:
            summary, data = messages.configuration_update("Create", describe)
        else:
            summary, data = messages.configuration_update("Update", describe, previous.describe())
        item = (entry.account, entry.region, entry.name, entry.kind, _ms(now),
                "ConfigurationUpdate", summary, data)
        row = entry.row()

        def write(w):
            sql.save_alarm(w, row)
            sql.add_history(w, [item])
            if previous is None:
                w.execute("DELETE FROM tags WHERE arn = ?", [entry.arn])
                for tag in tags or []:
                    w.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                              [entry.arn, tag["Key"], tag["Value"]])

        await self.store.write(write)
        self.entries[entry.key] = entry
        self._generation += 1

    async def delete(self, entries: list[Entry], now: float) -> None:
        items = []
        for entry in entries:
            summary, data = messages.configuration_update("Delete", entry.describe())
            items.append((entry.account, entry.region, entry.name, entry.kind, _ms(now),
                          "ConfigurationUpdate", summary, data))
        if not entries:
            return
        account, region = entries[0].account, entries[0].region
        names = [e.name for e in entries]
        arns = [e.arn for e in entries]

        def write(w):
            sql.delete_alarms(w, account, region, names)
            w.execute("DELETE FROM tags WHERE arn IN (SELECT unnest(?))", [arns])
            sql.add_history(w, items)

        await self.store.write(write)
        for entry in entries:
            self.entries.pop(entry.key, None)
        self._generation += 1

    async def set_actions_enabled(self, entries: list[Entry], enabled: bool) -> None:
        if not entries:
            return
        account, region = entries[0].account, entries[0].region
        names = [e.name for e in entries]
        await self.store.write(lambda w: sql.set_actions_enabled(w, account, region, names, enabled))
        for entry in entries:
            entry.actions_enabled = enabled
            entry.config["ActionsEnabled"] = enabled

    async def set_state(self, entry: Entry, value: str, reason: str, data: str | None,
                        now: float) -> None:
        """SetAlarmState: the state holds until the next evaluation (R5.2)."""
        pending = _Pending()
        if value == entry.state_value:
            pending.changes.append(Change(entry, value, entry.state_reason, value, reason, data,
                                          now, history=False))
        else:
            pending.changes.append(self._change(entry, value, reason, data, now))
            self._cascade(pending, now)
        await self._commit(pending, now)

    async def history(self, cur_fn):
        return await self.store.read(cur_fn)


__all__ = ["AlarmService", "Entry", "metric_model", "math_period", "METRIC", "COMPOSITE"]
