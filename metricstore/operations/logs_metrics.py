"""Metrics from logs: metric filters (PutMetricFilter, DescribeMetricFilters,
DeleteMetricFilter, TestMetricFilter) and the ingest hook that turns log events into datapoints,
for metric filters and for the Embedded Metric Format (see :mod:`metricstore.emf`).

AWS references: API_PutMetricFilter, API_DescribeMetricFilters, API_DeleteMetricFilter,
API_TestMetricFilter, FilterAndPatternSyntaxForMetricFilters.html ("metric values, dimensions,
default value"), quotas in cloudwatch_limits_cwl.html (100 metric filters per log group, 5 of
them with regular expressions).

The ingest path (:class:`LogMetrics`, registered as a ``Server.log_hooks`` entry) runs in the
writer thread, inside the PutLogEvents transaction, so derived datapoints commit with the
events.  Each filter is parsed and compiled once, to one SELECT over the batch's events
(registered as an Arrow table), that returns the datapoints already aggregated per minute,
value and dimension values: CloudWatch Logs reports metric filter data every minute.  A
filter's SELECT runs on a cursor of its own, so a failing filter cannot abort the ingest
transaction; it is logged and skipped, as a broken filter never rejects log events in AWS.
"""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
from dataclasses import dataclass

import pyarrow as pa

from query import filter_pattern as fp
from query.errors import QueryError

from ..errors import ServiceError
from ..store.logs import EventBatch, LogGroup, MetricFilter
from ..store.metrics import MetricBatch, dim_key
from . import Context, operation
from .logs import _resolve_group, invalid, not_found
from .metrics import MAX_VALUE, UNIT_CODE

log = logging.getLogger("metricstore.logs_metrics")

MAX_FILTERS_PER_GROUP = 100
MAX_REGEX_FILTERS_PER_GROUP = 5
MAX_DIMENSIONS = 3
MINUTE_MS = 60_000
SYSTEM_FIELDS = ("@aws.account", "@aws.region")
# The batch's events, as the compiled SELECTs see them: ts BIGINT, message VARCHAR.
EVENTS = "_ms_metric_filter_events"


def limit_exceeded(message: str = "Resource limit exceeded.") -> ServiceError:
    return ServiceError("LimitExceededException", message)


def bad_transformation(message: str) -> ServiceError:
    return invalid(f"Invalid metric transformation: {message}")


# ---------------------------------------------------------------------------------------------
# Compiling a filter
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CompiledFilter:
    """A metric filter ready for the ingest path: one SELECT over ``EVENTS`` returning
    ``(minute, value, weight, dimension values…)`` rows, and what names the series."""

    sql: str
    params: tuple
    namespace: str
    metric_name: str
    dimension_names: tuple      # one per dimension column of the SELECT
    system_fields: tuple        # "@aws.account" / "@aws.region", filled in per call
    unit: int
    has_regex: bool


def _has_regex(node) -> bool:
    if isinstance(node, (fp.RegexPattern, fp.Regex)):
        return True
    if isinstance(node, fp.JsonPattern):
        return _has_regex(node.condition)
    if isinstance(node, fp.SpaceDelimitedPattern):
        return any(isinstance(f, fp.Field) and f.condition is not None
                   and _has_regex(f.condition) for f in node.fields)
    if isinstance(node, (fp.And, fp.Or)):
        return any(_has_regex(c) for c in node.operands)
    if isinstance(node, fp.Comparison):
        return isinstance(node.value, fp.Regex)
    return False


def _pattern_error(pattern: str, e: QueryError) -> ServiceError:
    return invalid(f"Invalid metric filter pattern: {e.with_text(pattern).render()}")


def compile_filter(pattern: str, t: dict, options: dict) -> CompiledFilter:
    """Validate a filter the AWS way and compile it; InvalidParameterException otherwise."""
    try:
        ast = fp.parse(pattern)
    except QueryError as e:
        raise _pattern_error(pattern, e) from None
    name, namespace = t["metricName"], t["metricNamespace"]
    if not name.strip():
        raise bad_transformation("metricName must contain at least one non-whitespace "
                                 "character")
    if not namespace.strip():
        raise bad_transformation("metricNamespace must contain at least one non-whitespace "
                                 "character")
    dims = t.get("dimensions") or {}
    default = t.get("defaultValue")
    system = tuple(options.get("emitSystemFieldDimensions") or ())
    if dims and default is not None:
        raise bad_transformation("dimensions and default value are mutually exclusive "
                                 "properties")
    if default is not None and (not math.isfinite(default) or abs(default) > MAX_VALUE):
        raise bad_transformation(f"default value {default} is not a valid metric value")
    for field in system:
        if field not in SYSTEM_FIELDS:
            raise invalid(f"Invalid emitSystemFieldDimensions value {field}: valid values are "
                          f"{' and '.join(SYSTEM_FIELDS)}.")
    if len(set(system)) != len(system):
        raise invalid("emitSystemFieldDimensions must not repeat a field.")
    if len(dims) + len(system) > MAX_DIMENSIONS:
        raise bad_transformation(f"a metric filter can have at most {MAX_DIMENSIONS} "
                                 "dimensions")
    if dims and not isinstance(ast, (fp.JsonPattern, fp.SpaceDelimitedPattern)):
        raise invalid("The specified filter pattern does not support dimensions")
    value_spec = t["metricValue"]
    try:
        value_sql, value_params = fp.compile_metric_value(ast, value_spec, "message")
    except QueryError as e:
        raise bad_transformation(f"metric value {value_spec} must be a number or a field of "
                                 f"the filter pattern: {e.with_text(value_spec).message}") from None
    dim_sqls, dim_params = [], []
    for key, spec in dims.items():
        if not key.strip() or key.startswith(":") or key in SYSTEM_FIELDS:
            raise bad_transformation(f"invalid dimension name '{key}'")
        if not spec.strip().startswith("$"):
            raise bad_transformation("dimension value must be valid selector")
        try:
            sql, params = fp.compile_dimension(ast, spec, "message")
        except QueryError as e:
            raise bad_transformation(f"dimension value must be valid selector: "
                                     f"{e.with_text(spec).message}") from None
        dim_sqls.append(sql)
        dim_params.extend(params)
    pred_sql, pred_params = fp.compile_predicate(ast, "message")
    minute = f"ts - ts % {MINUTE_MS}"
    keep = ["v IS NOT NULL", "isfinite(v)", "abs(v) <= ?"]
    if default is None:
        cols = "".join(f", {s} AS d{i}" for i, s in enumerate(dim_sqls))
        inner = (f"SELECT {minute} AS minute, {value_sql} AS v{cols} FROM {EVENTS}"
                 f" WHERE {pred_sql}")
        params = [*value_params, *dim_params, *pred_params]
        # a matching event whose dimension is missing or empty has no series to go to
        keep += [f"d{i} IS NOT NULL AND length(trim(d{i})) > 0 AND length(d{i}) <= 1024"
                 for i in range(len(dim_sqls))]
    else:
        inner = (f"SELECT {minute} AS minute, CASE WHEN {pred_sql} THEN {value_sql}"
                 f" ELSE CAST(? AS DOUBLE) END AS v FROM {EVENTS}")
        params = [*pred_params, *value_params, float(default)]
    params.append(MAX_VALUE)
    dcols = "".join(f", d{i}" for i in range(len(dim_sqls)))
    sql = (f"SELECT minute, v, count(*)::DOUBLE AS weight{dcols} FROM ({inner})"
           f" WHERE {' AND '.join(keep)} GROUP BY ALL")
    return CompiledFilter(sql, tuple(params), namespace, name, tuple(dims), system,
                          UNIT_CODE[t.get("unit") or "None"], _has_regex(ast))


def compiled(f: MetricFilter) -> CompiledFilter | None:
    """The filter's compiled form, cached on it (None if it no longer compiles)."""
    if f.compiled is None:
        try:
            f.compiled = compile_filter(f.pattern, f.transformation, f.options)
        except ServiceError as e:
            log.warning("metric filter %r of group %d does not compile: %s", f.name,
                        f.group_id, e.message)
            f.compiled = False
    return f.compiled or None


# ---------------------------------------------------------------------------------------------
# The ingest hook
# ---------------------------------------------------------------------------------------------

class LogMetrics:
    """``Server.log_hooks`` entry: metric filters and EMF → datapoints, in the ingest
    transaction."""

    def __init__(self, server):
        self.server = server
        self._cursor = None     # the writer thread's cursor for filter SELECTs
        self._cursor_store = None

    def _scan_cursor(self):
        store = self.server.store
        if self._cursor is None or self._cursor_store is not store:
            self._cursor = store.con.cursor()
            self._cursor_store = store
        return self._cursor

    def __call__(self, w, account: str, region: str, group: LogGroup, stream_id: int,
                 batch: EventBatch, first_seq: int, now_ms: int) -> None:
        filters = self.server.logs.metric_filters.get(group.id)
        emf_metrics = batch.emf
        if not filters and not emf_metrics:
            return
        out = MetricBatch()
        keys: dict = {}
        if filters:
            self._apply_filters(filters, account, region, batch, out, keys)
        if emf_metrics:
            for key, ts, value, unit, hires in zip(emf_metrics.key, emf_metrics.ts,
                                                   emf_metrics.value, emf_metrics.unit,
                                                   emf_metrics.hires):
                ki = keys.get(key)
                if ki is None:
                    ki = keys[key] = len(out.keys)
                    out.keys.append(key)
                out.s_key.append(ki)
                out.s_ts.append(ts)
                out.s_value.append(value)
                out.s_weight.append(1.0)
                out.s_unit.append(unit)
                out.s_hires.append(hires)
        if out.datapoints:
            self.server.metrics.insert(w, account, region, out, now_ms)

    def _apply_filters(self, filters: dict, account, region, batch: EventBatch,
                       out: MetricBatch, keys: dict) -> None:
        messages = batch.arrow if batch.arrow is not None else pa.array(batch.messages,
                                                                         type=pa.string())
        events = pa.table({"ts": pa.array(batch.ts), "message": messages})
        cur = self._scan_cursor()
        cur.register(EVENTS, events)
        try:
            for f in list(filters.values()):
                c = compiled(f)
                if c is None:
                    continue
                try:
                    rows = cur.execute(c.sql, list(c.params)).fetchall()
                except Exception:  # noqa: BLE001 - a broken filter must not reject log events
                    log.exception("metric filter %r failed on a batch; skipped", f.name)
                    continue
                if rows:
                    self._add_rows(c, rows, account, region, out, keys)
        finally:
            cur.unregister(EVENTS)

    @staticmethod
    def _add_rows(c: CompiledFilter, rows, account, region, out: MetricBatch, keys: dict):
        system = [(n, account if n == "@aws.account" else region) for n in c.system_fields]
        dks: dict = {}
        for minute, value, weight, *dims in rows:
            dvals = tuple(dims)
            dk = dks.get(dvals)
            if dk is None:
                pairs = [{"Name": n, "Value": v} for n, v in zip(c.dimension_names, dvals)]
                pairs += [{"Name": n, "Value": v} for n, v in system]
                dk = dks[dvals] = dim_key(pairs) if pairs else "[]"
            key = (c.namespace, c.metric_name, dk)
            ki = keys.get(key)
            if ki is None:
                ki = keys[key] = len(out.keys)
                out.keys.append(key)
            out.s_key.append(ki)
            out.s_ts.append(minute)
            out.s_value.append(value)
            out.s_weight.append(weight)
            out.s_unit.append(c.unit)
            out.s_hires.append(False)


# ---------------------------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------------------------

def _describe(g: LogGroup, f: MetricFilter) -> dict:
    item = {"filterName": f.name, "filterPattern": f.pattern,
            "metricTransformations": [f.transformation], "creationTime": f.created,
            "logGroupName": g.name,
            "applyOnTransformedLogs": bool(f.options.get("applyOnTransformedLogs", False))}
    for k in ("fieldSelectionCriteria", "emitSystemFieldDimensions"):
        if f.options.get(k) is not None:
            item[k] = f.options[k]
    return item


@operation("logs", "PutMetricFilter")
async def put_metric_filter(ctx: Context, logGroupName, filterName, filterPattern,
                            metricTransformations, applyOnTransformedLogs=None,
                            fieldSelectionCriteria=None, emitSystemFieldDimensions=None):
    g = _resolve_group(ctx, logGroupName)
    t = {k: v for k, v in metricTransformations[0].items() if v is not None}
    options = {k: v for k, v in (("applyOnTransformedLogs", applyOnTransformedLogs),
                                 ("fieldSelectionCriteria", fieldSelectionCriteria),
                                 ("emitSystemFieldDimensions", emitSystemFieldDimensions))
               if v is not None}
    c = compile_filter(filterPattern, t, options)
    logs = ctx.server.logs
    now = ctx.server.clock.now_ms()

    def write(w):
        # checked in the writer, which runs one write at a time: no two puts race the quota
        existing = logs.metric_filters.get(g.id, {})
        old = existing.get(filterName)
        if old is None and len(existing) >= MAX_FILTERS_PER_GROUP:
            raise limit_exceeded()
        if c.has_regex:
            others = [f for n, f in existing.items()
                      if n != filterName and (cf := compiled(f)) is not None and cf.has_regex]
            if len(others) >= MAX_REGEX_FILTERS_PER_GROUP:
                raise limit_exceeded(
                    f"A log group can have at most {MAX_REGEX_FILTERS_PER_GROUP} metric filters "
                    "that use regular expressions.")
        f = MetricFilter(g.id, filterName, filterPattern, t,
                         old.created if old is not None else now, options, c)
        logs.put_metric_filter(w, f)
    await ctx.store.write(write)
    return {}


@operation("logs", "DeleteMetricFilter")
async def delete_metric_filter(ctx: Context, logGroupName, filterName):
    g = _resolve_group(ctx, logGroupName)
    logs = ctx.server.logs

    def write(w):
        if filterName not in logs.metric_filters.get(g.id, {}):
            raise not_found("The specified metric filter does not exist.")
        logs.delete_metric_filter(w, g.id, filterName)
    await ctx.store.write(write)
    return {}


def _token(key: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _untoken(token: str) -> list:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        key = None
    if not (isinstance(key, list) and len(key) == 2 and all(isinstance(k, str) for k in key)):
        raise invalid("The specified nextToken is invalid.")
    return key


@operation("logs", "DescribeMetricFilters")
async def describe_metric_filters(ctx: Context, logGroupName=None, filterNamePrefix=None,
                                  nextToken=None, limit=None, metricName=None,
                                  metricNamespace=None):
    if filterNamePrefix is not None and logGroupName is None:
        raise invalid("filterNamePrefix can only be used together with logGroupName.")
    if (metricName is None) != (metricNamespace is None):
        raise invalid("metricName and metricNamespace must be specified together.")
    logs = ctx.server.logs
    if logGroupName is not None:
        groups = [_resolve_group(ctx, logGroupName)]
    else:
        groups = [g for (acct, region, _), g in list(logs.groups.items())
                  if acct == ctx.account and region == ctx.region]
    items = []
    for g in groups:
        for f in logs.metric_filters.get(g.id, {}).values():
            if filterNamePrefix is not None and not f.name.startswith(filterNamePrefix):
                continue
            t = f.transformation
            if metricName is not None and (t["metricName"] != metricName
                                           or t["metricNamespace"] != metricNamespace):
                continue
            items.append((f.name, g.name, g, f))
    items.sort(key=lambda x: (x[0], x[1]))     # ASCII order of filter name, as AWS
    start = 0
    if nextToken:
        after = _untoken(nextToken)
        while start < len(items) and [items[start][0], items[start][1]] <= after:
            start += 1
    limit = limit or 50
    page = items[start:start + limit]
    res = {"metricFilters": [_describe(g, f) for _, _, g, f in page]}
    if start + limit < len(items) and page:
        res["nextToken"] = _token([page[-1][0], page[-1][1]])
    return res


@operation("logs", "TestMetricFilter")
async def test_metric_filter(ctx: Context, filterPattern, logEventMessages):
    try:
        ast = fp.parse(filterPattern)
    except QueryError as e:
        raise _pattern_error(filterPattern, e) from None
    matches = await asyncio.to_thread(fp.test_metric_filter, ast, list(logEventMessages))
    return {"matches": matches}


test_metric_filter.__test__ = False  # not a pytest test despite the name
