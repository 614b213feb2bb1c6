"""CloudWatch metric operations: PutMetricData, GetMetricStatistics, GetMetricData, ListMetrics.

AWS references: API_PutMetricData, API_GetMetricStatistics, API_GetMetricData, API_ListMetrics,
and "CloudWatch concepts" (resolution and retention).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import re

import numpy as np

from .. import stats
from ..errors import (ServiceError, invalid_parameter_combination, invalid_parameter_value,
                      missing_parameter, validation_error)
from ..store.metrics import MetricBatch, dim_key
from . import Context, PrepareEnv, operation, prepare_step

UNITS = ["None", "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
         "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits",
         "Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second",
         "Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second",
         "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second"]
UNIT_CODE = {u: i for i, u in enumerate(UNITS)}

BASIC_STATS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MAX_VALUE = 2.0 ** 360
TWO_WEEKS = 14 * 86400
TWO_HOURS = 2 * 3600


# --------------------------------------------------------------------------------------------
# PutMetricData
# --------------------------------------------------------------------------------------------

def _finite(v: float, path: str) -> float:
    if not math.isfinite(v) or abs(v) > MAX_VALUE:
        raise invalid_parameter_value(f"The value {_fmt(v)} for parameter {path} is invalid.")
    return v


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return str(v)


_DIM_KEYS: dict = {}


def _dimension_key(pairs: tuple, p: str) -> str:
    """Validate a datum's dimensions the AWS way; canonical key (cached once valid)."""
    seen = set()
    for j, (name, value) in enumerate(pairs, 1):
        if name in seen:
            raise invalid_parameter_value(
                f"The parameter {p}.Dimensions.member.{j}.Name has a duplicate value "
                f"{name}; dimension names must be unique.")
        seen.add(name)
        if not name.strip() or not value.strip():
            raise invalid_parameter_value(
                f"The parameter {p}.Dimensions.member.{j} must contain at least one "
                "non-whitespace character in Name and Value.")
        if name.startswith(":"):
            raise invalid_parameter_value(
                f"The value {name} for parameter {p}.Dimensions.member.{j}.Name is invalid.")
    dk = dim_key([{"Name": n, "Value": v} for n, v in pairs])
    if len(_DIM_KEYS) > 100_000:
        _DIM_KEYS.clear()
    _DIM_KEYS[pairs] = dk
    return dk


def build_batch(namespace: str, data: list[dict], now: float, allow_aws: bool = False,
                first_index: int = 1, batch: MetricBatch | None = None,
                key_index: dict | None = None) -> MetricBatch:
    """Validate MetricData the AWS way and turn it into columns (pure; no I/O).

    All-or-nothing: any problem raises before anything is written.
    """
    if namespace.startswith("AWS/") and not allow_aws:
        raise invalid_parameter_value(
            f"The value {namespace} for parameter Namespace is invalid. Namespaces beginning "
            "with 'AWS/' are reserved for AWS services.")
    b = batch if batch is not None else MetricBatch()
    keys: dict = key_index if key_index is not None else {}
    too_old: list[str] = []
    too_new: list[str] = []
    oldest = now - TWO_WEEKS
    newest = now + TWO_HOURS
    for i, d in enumerate(data, first_index):
        p = f"MetricData.member.{i}"
        has_value = "Value" in d
        has_values = "Values" in d
        has_stats = "StatisticValues" in d
        if has_value and has_values:
            raise invalid_parameter_combination(
                f"The parameters {p}.Value and {p}.Values are mutually exclusive and you have "
                "specified both.")
        if has_value and has_stats:
            raise invalid_parameter_combination(
                f"The parameters {p}.Value and {p}.StatisticValues are mutually exclusive and "
                "you have specified both.")
        if has_values and has_stats:
            raise invalid_parameter_combination(
                f"The parameters {p}.Values and {p}.StatisticValues are mutually exclusive and "
                "you have specified both.")
        if "Counts" in d and not has_values:
            raise invalid_parameter_combination(
                f"The parameter {p}.Counts must be specified with {p}.Values.")
        if not (has_value or has_values or has_stats):
            raise missing_parameter(
                f"The parameter {p}.Value, {p}.Values or {p}.StatisticValues is required.")
        dims = d.get("Dimensions")
        if dims:
            pairs = tuple([(x["Name"], x["Value"]) for x in dims])
            dk = _DIM_KEYS.get(pairs)
            if dk is None:
                dk = _dimension_key(pairs, p)
        else:
            dk = "[]"
        ts = d.get("Timestamp")
        if ts is None:
            ts = now
        elif ts < oldest:
            too_old.append(f"The parameter {p}.Timestamp must specify a time within the past two weeks.")
        elif ts > newest:
            too_new.append(f"The parameter {p}.Timestamp must specify a time no more than two "
                           "hours in the future.")
        res = d.get("StorageResolution", 60)
        if res not in (1, 60):
            raise invalid_parameter_value(
                f"The value {res} for parameter {p}.StorageResolution is invalid. Valid values "
                "are 1 and 60.")
        hires = res == 1
        unit = UNIT_CODE[d.get("Unit", "None")]
        k = (namespace, d["MetricName"], dk)
        ki = keys.get(k)
        if ki is None:
            ki = keys[k] = len(b.keys)
            b.keys.append(k)
        ts_ms = int(round(ts * 1000))
        if has_value:
            b.s_key.append(ki)
            b.s_ts.append(ts_ms)
            b.s_value.append(_finite(d["Value"], f"{p}.Value"))
            b.s_weight.append(1.0)
            b.s_unit.append(unit)
            b.s_hires.append(hires)
        elif has_values:
            values = d["Values"]
            counts = d.get("Counts")
            if counts is not None and len(counts) != len(values):
                raise invalid_parameter_value(
                    f"The parameters {p}.Values and {p}.Counts must be of the same size.")
            if len(values) > 150:
                raise invalid_parameter_value(
                    f"The collection {p}.Values must not have a size greater than 150.")
            for j, v in enumerate(values):
                c = counts[j] if counts is not None else 1.0
                _finite(v, f"{p}.Values.member.{j + 1}")
                if not math.isfinite(c) or c < 0:
                    raise invalid_parameter_value(
                        f"The value {_fmt(c)} for parameter {p}.Counts.member.{j + 1} is invalid.")
                if c == 0:
                    continue
                b.s_key.append(ki)
                b.s_ts.append(ts_ms)
                b.s_value.append(v)
                b.s_weight.append(float(c))
                b.s_unit.append(unit)
                b.s_hires.append(hires)
        else:
            sv = d["StatisticValues"]
            n = _finite(sv["SampleCount"], f"{p}.StatisticValues.SampleCount")
            s = _finite(sv["Sum"], f"{p}.StatisticValues.Sum")
            lo = _finite(sv["Minimum"], f"{p}.StatisticValues.Minimum")
            hi = _finite(sv["Maximum"], f"{p}.StatisticValues.Maximum")
            if n <= 0:
                raise invalid_parameter_value(
                    f"The value {_fmt(n)} for parameter {p}.StatisticValues.SampleCount is invalid.")
            if lo > hi:
                raise invalid_parameter_value(
                    f"The parameter {p}.StatisticValues.Minimum must be less than or equal to "
                    f"the parameter {p}.StatisticValues.Maximum.")
            b.t_key.append(ki)
            b.t_ts.append(ts_ms)
            b.t_n.append(n)
            b.t_sum.append(s)
            b.t_min.append(lo)
            b.t_max.append(hi)
            b.t_unit.append(unit)
            b.t_hires.append(hires)
    if too_old or too_new:
        raise invalid_parameter_value("\n".join(too_old + too_new))
    return b


@prepare_step("cloudwatch", "PutMetricData")
def prepare_put_metric_data(env: PrepareEnv, Namespace: str, MetricData=None,
                            EntityMetricData=None, StrictEntityValidation=None) -> MetricBatch:
    data = MetricData or []
    entity_data = EntityMetricData or []
    total = len(data) + sum(len(e.get("MetricData") or []) for e in entity_data)
    if total == 0:
        raise missing_parameter("The parameter MetricData is required.")
    if total > 1000:
        raise invalid_parameter_value(
            "The collection MetricData must not have a size greater than 1000.")
    batch = MetricBatch()
    keys: dict = {}
    build_batch(Namespace, data, env.now, env.allow_aws_namespaces, 1, batch, keys)
    for e in entity_data:
        build_batch(Namespace, e.get("MetricData") or [], env.now, env.allow_aws_namespaces, 1,
                    batch, keys)
    return batch.finalize()


@operation("cloudwatch", "PutMetricData")
async def put_metric_data(ctx: Context, prepared: MetricBatch | None = None, **params):
    batch = prepared if prepared is not None else prepare_put_metric_data(ctx.prepare_env(), **params)
    await ctx.server.put_metrics(ctx.account, ctx.region, batch)
    return {}


# --------------------------------------------------------------------------------------------
# Reading statistics
# --------------------------------------------------------------------------------------------

def _floor(t: float, step: int) -> int:
    return int(t // step * step)


def align_start(start: float, period: int, now: float) -> int:
    """AWS's StartTime rounding (API_GetMetricStatistics, StartTime)."""
    age = now - start
    if period in (1, 5, 10, 20, 30) and age <= 3 * 3600:
        return _floor(start, period)
    if age > 63 * 86400:
        return _floor(start, 3600)
    if age > 15 * 86400:
        return _floor(start, 300)
    return _floor(start, 60)


def period_available(start: float, period: int, now: float) -> bool:
    """Whether data this old is still kept at this period (else no datapoints)."""
    age = now - start
    if age > 63 * 86400:
        return period % 3600 == 0
    if age > 15 * 86400:
        return period % 300 == 0
    if age > 3 * 3600:
        return period % 60 == 0
    return True


def valid_period(period: int) -> bool:
    return period in (1, 5, 10, 20, 30) or (period > 0 and period % 60 == 0)


class StatSpec:
    """A requested statistic: a basic one or an extended one (pNN, TM(…), …)."""

    __slots__ = ("name", "basic", "ext")

    def __init__(self, name: str, basic: str | None, ext):
        self.name, self.basic, self.ext = name, basic, ext

    @classmethod
    def parse(cls, name: str, param: str = "Stat") -> "StatSpec":
        if name in BASIC_STATS:
            return cls(name, name, None)
        try:
            return cls(name, None, stats.parse_extended_statistic(name))
        except ValueError:
            raise invalid_parameter_value(
                f"The value {name} for parameter {param} is not a valid statistic.") from None


def compute_series(cur, metrics_store, sids: list[int], start_ms: int, end_ms: int,
                   period: int, specs: list[StatSpec], unit: int | None):
    """{(sid, unit|None): {"b": buckets, stat name: values}} for several series at once.

    Basic statistics come from one grouped SQL aggregate; percentile-type ones from the
    samples, computed with numpy per bucket.  Buckets with statistic-set data get no
    percentile value (AWS cannot compute one from statistic sets).
    """
    period_ms = period * 1000
    out: dict = {}
    by_unit = unit is None
    agg = metrics_store.aggregate(cur, sids, start_ms, end_ms, period_ms, unit,
                                  by_unit=True, by_series=True)
    n = len(agg["b"])
    if n == 0:
        return out
    series_col = agg["series_id"]
    unit_col = agg["unit"]
    bucket_col = agg["b"].astype(np.int64)
    cnt, tot, lo, hi = agg["n"], agg["s"], agg["lo"], agg["hi"]
    # group rows by (series, unit)
    keys = series_col.astype(np.int64) * 256 + unit_col.astype(np.int64)
    order = np.lexsort((bucket_col, keys))
    keys, bucket_col = keys[order], bucket_col[order]
    cnt, tot, lo, hi = cnt[order], tot[order], lo[order], hi[order]
    bounds = np.flatnonzero(np.diff(keys)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(keys)]))
    ext_specs = [s for s in specs if s.ext is not None]
    ext_data = None
    if ext_specs:
        raw = metrics_store.samples_by_bucket(cur, sids, start_ms, end_ms, period_ms, unit)
        statset = set(metrics_store.statset_buckets(cur, sids, start_ms, end_ms, period_ms, unit))
        ext_data = (raw, statset)
    for a, z in zip(starts, ends):
        k = int(keys[a])
        sid, u = k // 256, k % 256
        res = {"b": bucket_col[a:z], "unit": u}
        c = cnt[a:z]
        for s in specs:
            if s.basic == "SampleCount":
                res[s.name] = c
            elif s.basic == "Sum":
                res[s.name] = tot[a:z]
            elif s.basic == "Average":
                res[s.name] = tot[a:z] / c
            elif s.basic == "Minimum":
                res[s.name] = lo[a:z]
            elif s.basic == "Maximum":
                res[s.name] = hi[a:z]
        if ext_specs:
            raw, statset = ext_data
            mask = (raw["series_id"] == sid) & (raw["unit"] == u)
            gb = raw["b"][mask].astype(np.int64)
            vals = raw["value"][mask]
            wts = raw["weight"][mask]
            for s in ext_specs:
                got = stats.compute_grouped(s.ext, gb, vals, wts) if len(gb) else {}
                col = np.full(z - a, np.nan)
                for j, bkt in enumerate(res["b"]):
                    if (sid, int(bkt), u) in statset:
                        continue
                    v = got.get(int(bkt))
                    if v is not None:
                        col[j] = v
                res[s.name] = col
        out[(sid, u if by_unit else None)] = res
    return out


def _resolve_series(ctx: Context, namespace, metric_name, dimensions) -> int | None:
    return ctx.metrics.series_id(ctx.account, ctx.region, namespace, metric_name,
                                 dim_key(dimensions or []))


@operation("cloudwatch", "GetMetricStatistics")
async def get_metric_statistics(ctx: Context, Namespace, MetricName, StartTime, EndTime, Period,
                                Dimensions=None, Statistics=None, ExtendedStatistics=None,
                                Unit=None):
    if not Statistics and not ExtendedStatistics:
        raise invalid_parameter_combination("Must specify either Statistics or ExtendedStatistics")
    if Statistics and ExtendedStatistics:
        raise invalid_parameter_combination(
            "The parameters Statistics and ExtendedStatistics are mutually exclusive and you "
            "have specified both.")
    if StartTime >= EndTime:
        raise invalid_parameter_value("The parameter StartTime must be less than the parameter EndTime.")
    if not valid_period(Period):
        raise invalid_parameter_value(
            "The parameter Period must be 1, 5, 10, 20, 30, or a multiple of 60.")
    specs = [StatSpec.parse(s, "Statistics") for s in (Statistics or [])]
    specs += [StatSpec.parse(s, "ExtendedStatistics") for s in (ExtendedStatistics or [])]
    for s in specs:
        if ExtendedStatistics and s.ext is None:
            raise invalid_parameter_value(
                f"The value {s.name} for parameter ExtendedStatistics is not a valid statistic.")
    now = ctx.now()
    start = align_start(StartTime, Period, now)
    n_points = math.ceil((EndTime - start) / Period)
    if n_points > 1440:
        raise invalid_parameter_combination(
            f"You have requested up to {n_points} datapoints, which exceeds the limit of 1440. "
            "You may reduce the datapoints requested by increasing Period, or decreasing the "
            "time range.")
    out = {"Label": MetricName, "Datapoints": []}
    sid = _resolve_series(ctx, Namespace, MetricName, Dimensions)
    if sid is None or not period_available(StartTime, Period, now):
        return out
    unit = UNIT_CODE[Unit] if Unit else None
    start_ms, end_ms = start * 1000, int(EndTime * 1000)
    result = await ctx.store.query(
        lambda cur: compute_series(cur, ctx.metrics, [sid], start_ms, end_ms, Period, specs, unit))
    points = []
    ext_names = [sp.name for sp in specs if sp.ext is not None]
    basic_names = [sp.name for sp in specs if sp.ext is None]
    for (_, u), res in result.items():
        unit_name = UNITS[res["unit"]]
        times = (start + res["b"].astype(np.int64) * Period).astype(np.float64).tolist()
        basic_cols = [(n, res[n].tolist()) for n in basic_names]
        ext_cols = [(n, res[n].tolist()) for n in ext_names]
        for j, ts in enumerate(times):
            p = {"Timestamp": ts, "Unit": unit_name}
            for n, col in basic_cols:
                v = col[j]
                if v == v:            # not NaN
                    p[n] = v
            if ext_cols:
                ext = {n: col[j] for n, col in ext_cols if col[j] == col[j]}
                if not ext:
                    continue
                p["ExtendedStatistics"] = ext
            points.append(p)
    points.sort(key=lambda p: p["Timestamp"])
    out["Datapoints"] = points
    return out


# --------------------------------------------------------------------------------------------
# ListMetrics
# --------------------------------------------------------------------------------------------

def _token(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _untoken(token: str, error) -> object:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise error from None


def _dims_of(dk: str) -> list[dict]:
    return [{"Name": n, "Value": v} for n, v in json.loads(dk)]


def _dims_match(dk: str, filters) -> bool:
    if not filters:
        return True
    have = dict((n, v) for n, v in json.loads(dk))
    for f in filters:
        name = f["Name"]
        if name not in have:
            return False
        if "Value" in f and f["Value"] != have[name]:
            return False
    return True


@operation("cloudwatch", "ListMetrics")
async def list_metrics(ctx: Context, Namespace=None, MetricName=None, Dimensions=None,
                       NextToken=None, RecentlyActive=None, IncludeLinkedAccounts=None,
                       OwningAccount=None):
    now_ms = ctx.server.clock.now_ms()
    # AWS omits metrics that received no data in the past two weeks.
    since = now_ms - (3 * 3600 * 1000 if RecentlyActive == "PT3H" else TWO_WEEKS * 1000)
    after = None
    if NextToken:
        tok = _untoken(NextToken, ServiceError("InvalidNextToken", "The specified NextToken is invalid."))
        if not (isinstance(tok, list) and len(tok) == 3 and all(isinstance(x, str) for x in tok)):
            raise ServiceError("InvalidNextToken", "The specified NextToken is invalid.")
        after = tok
    page = 500
    metrics = []
    last = None
    more = False
    while True:
        rows = await ctx.store.read(lambda cur: ctx.metrics.list_series(
            cur, ctx.account, ctx.region, Namespace, MetricName, since, after, 2000))
        for _, ns, name, dk in rows:
            if not _dims_match(dk, Dimensions):
                continue
            if len(metrics) == page:
                more = True
                break
            metrics.append({"Namespace": ns, "MetricName": name, "Dimensions": _dims_of(dk)})
            last = [ns, name, dk]
        if more or len(rows) < 2000:
            break
        after = [rows[-1][1], rows[-1][2], rows[-1][3]]
    out = {"Metrics": metrics}
    if more:
        out["NextToken"] = _token(last)
    return out


# GetMetricData lives in its own module (metric math); imported for registration.
from . import metric_data  # noqa: E402,F401
