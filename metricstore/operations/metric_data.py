"""GetMetricData: MetricStat queries fetched in batched SQL, metric math with numpy.

AWS reference: API_GetMetricData, "Using metric math", "Use dynamic labels",
"CloudWatch search expression syntax".
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shlex

import numpy as np

from query import metric_math
from query.errors import QueryError

from ..errors import ServiceError, invalid_parameter_value, validation_error
from ..store.metrics import dim_key
from . import Context, operation
from .metrics import (UNIT_CODE, StatSpec, _dims_of, _token, _untoken, align_start,
                      compute_series, period_available, valid_period)

DEFAULT_MAX_DATAPOINTS = 100_800
_ID_RE = re.compile(r"^[a-z][a-zA-Z0-9_]*$")


def _bad(msg: str) -> ServiceError:
    return validation_error([msg])


def _validate(queries: list[dict]) -> None:
    seen = set()
    for i, q in enumerate(queries, 1):
        p = f"MetricDataQueries.member.{i}"
        qid = q["Id"]
        if not _ID_RE.match(qid):
            raise _bad(f"The value {qid} for parameter {p}.Id is invalid: it must start with a "
                       "lowercase letter and contain only letters, numbers and underscores.")
        if qid in seen:
            raise _bad(f"The value {qid} for parameter {p}.Id is not unique.")
        seen.add(qid)
        has_stat, has_expr = "MetricStat" in q, "Expression" in q
        if has_stat == has_expr:
            raise _bad(f"Exactly one of {p}.MetricStat and {p}.Expression must be specified.")
        if has_stat:
            ms = q["MetricStat"]
            if not valid_period(ms["Period"]):
                raise _bad(f"The value {ms['Period']} for parameter {p}.MetricStat.Period is "
                           "invalid: it must be 1, 5, 10, 20, 30, or a multiple of 60.")
            try:
                StatSpec.parse(ms["Stat"], f"{p}.MetricStat.Stat")
            except ServiceError:
                raise _bad(f"The value {ms['Stat']} for parameter {p}.MetricStat.Stat is not a "
                           "valid statistic.") from None
        elif "Period" in q and not valid_period(q["Period"]):
            raise _bad(f"The value {q['Period']} for parameter {p}.Period is invalid.")
    if not any(q.get("ReturnData", True) for q in queries):
        raise _bad("At least one of the MetricDataQueries must have ReturnData set to true.")


# -- SEARCH ------------------------------------------------------------------------------------

_SCHEMA_RE = re.compile(r"^\s*\{([^}]*)\}\s*")


def parse_search(expr: str):
    """``'{Namespace,Dim1} MetricName="x" term'`` → (namespace, dim names | None, terms)."""
    schema = None
    m = _SCHEMA_RE.match(expr)
    rest = expr
    if m:
        parts = [p.strip().strip('"') for p in m.group(1).split(",")]
        schema = (parts[0], sorted(p for p in parts[1:] if p))
        rest = expr[m.end():]
    try:
        tokens = shlex.split(rest, posix=True)
    except ValueError:
        raise _bad(f"Invalid search expression: {expr}") from None
    terms = []
    for t in tokens:
        if t in ("AND", "OR"):
            continue
        if "=" in t:
            k, _, v = t.partition("=")
            terms.append((k.strip(), v))
        else:
            terms.append((None, t))
    return schema, terms


def _search_match(ns, name, dims: dict, schema, terms) -> bool:
    if schema is not None:
        if ns != schema[0] or sorted(dims) != schema[1]:
            return False
    for key, val in terms:
        if key is None:
            hay = [ns, name, *dims.keys(), *dims.values()]
            if not any(val.lower() in h.lower() for h in hay):
                return False
        elif key == "MetricName":
            if name != val:
                return False
        elif key == "Namespace":
            if ns != val:
                return False
        elif dims.get(key) != val:
            return False
    return True


# -- labels ------------------------------------------------------------------------------------

_LABEL_RE = re.compile(r"\$\{([^}]*)\}")


def _dynamic_label(label: str, series: metric_math.Series, period: int) -> str:
    if "${" not in label:
        return label
    vals = series.values
    ts = series.timestamps

    def fmt(v):
        if v is None:
            return ""
        return f"{v:g}" if abs(v) < 1e16 else repr(v)

    def time_fmt(t):
        return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def repl(m):
        key = m.group(1).strip()
        meta = series.meta or {}
        n = len(vals)
        if key == "AVG":
            return fmt(float(np.mean(vals)) if n else None)
        if key == "MAX":
            return fmt(float(np.max(vals)) if n else None)
        if key == "MIN":
            return fmt(float(np.min(vals)) if n else None)
        if key == "SUM":
            return fmt(float(np.sum(vals)) if n else None)
        if key == "FIRST":
            return fmt(float(vals[0]) if n else None)
        if key == "LAST":
            return fmt(float(vals[-1]) if n else None)
        if key == "DATAPOINT_COUNT":
            return str(n)
        if key == "FIRST_LAST_RANGE":
            return fmt(float(vals[-1] - vals[0]) if n else None)
        if key == "MIN_MAX_RANGE":
            return fmt(float(np.max(vals) - np.min(vals)) if n else None)
        if key == "FIRST_TIME":
            return time_fmt(ts[0]) if n else ""
        if key == "LAST_TIME":
            return time_fmt(ts[-1]) if n else ""
        if key == "LABEL":
            return meta.get("default_label", series.label)
        pm = re.fullmatch(r"PROP\('([^']*)'\)", key)
        if pm:
            prop = pm.group(1)
            if prop == "MetricName":
                return meta.get("metric_name", "")
            if prop == "Namespace":
                return meta.get("namespace", "")
            if prop == "Period":
                return str(meta.get("period", period))
            if prop == "Stat":
                return meta.get("stat", "")
            if prop == "AccountId":
                return meta.get("account", "")
            if prop == "Region":
                return meta.get("region", "")
            if prop.startswith("Dim."):
                return (meta.get("dimensions") or {}).get(prop[4:], "")
        return m.group(0)

    return _LABEL_RE.sub(repl, label)


# -- the operation -------------------------------------------------------------------------------

def _run(cur, ctx: Context, queries, start_s: float, end_s: float, now: float):
    """Evaluate all queries; returns [(query, [Series])] for the queries to return."""
    ms = ctx.metrics
    series_by_id: dict = {}
    stat_queries = [q for q in queries if "MetricStat" in q]
    # batch MetricStat queries by (period, unit): one SQL per group
    groups: dict = {}
    for q in stat_queries:
        st = q["MetricStat"]
        groups.setdefault((st["Period"], st.get("Unit")), []).append(q)
    for (period, unit), qs in groups.items():
        start = align_start(start_s, period, now)
        start_ms, end_ms = start * 1000, int(end_s * 1000)
        specs = {}
        sids = {}
        for q in qs:
            st = q["MetricStat"]
            m = st["Metric"]
            specs.setdefault(st["Stat"], StatSpec.parse(st["Stat"]))
            sid = ms.series_id(ctx.account, ctx.region, m.get("Namespace"), m.get("MetricName"),
                               dim_key(m.get("Dimensions") or []))
            sids[q["Id"]] = sid
        wanted = sorted({s for s in sids.values() if s is not None})
        ok = period_available(start_s, period, now)
        data = compute_series(cur, ms, wanted, start_ms, end_ms, period, list(specs.values()),
                              UNIT_CODE[unit] if unit else None) if wanted and ok else {}
        merged: dict = {}
        for (sid, _), res in data.items():
            merged.setdefault(sid, []).append(res)
        for q in qs:
            st = q["MetricStat"]
            m = st["Metric"]
            stat = st["Stat"]
            parts = merged.get(sids[q["Id"]], [])
            if parts:
                b = np.concatenate([p["b"] for p in parts]).astype(np.int64)
                v = np.concatenate([p[stat] for p in parts]).astype(np.float64)
                order = np.argsort(b, kind="stable")
                b, v = b[order], v[order]
                keep = ~np.isnan(v)
                ts = start + b[keep] * period
                vals = v[keep]
            else:
                ts, vals = np.array([], dtype=np.int64), np.array([], dtype=np.float64)
            meta = {"namespace": m.get("Namespace"), "metric_name": m.get("MetricName"),
                    "dimensions": {d["Name"]: d["Value"] for d in m.get("Dimensions") or []},
                    "stat": stat, "period": period, "account": ctx.account,
                    "region": ctx.region, "default_label": m.get("MetricName")}
            series_by_id[q["Id"]] = metric_math.Series(q["Id"], m.get("MetricName"), ts, vals, meta)

    def search(expr: str, stat: str, period: int):
        schema, terms = parse_search(expr)
        rows = ms.list_series(cur, ctx.account, ctx.region,
                              schema[0] if schema else None, None, None, None, None)
        chosen = []
        for sid, ns, name, dk in rows:
            dims = {d["Name"]: d["Value"] for d in _dims_of(dk)}
            if _search_match(ns, name, dims, schema, terms):
                chosen.append((sid, ns, name, dims))
        if len(chosen) > 500:
            chosen = chosen[:500]
        if not chosen:
            return []
        spec = StatSpec.parse(stat)
        start = align_start(start_s, period, now)
        data = compute_series(cur, ms, [c[0] for c in chosen], start * 1000, int(end_s * 1000),
                              period, [spec], None)
        out = []
        for sid, ns, name, dims in chosen:
            parts = [res for (s, _), res in data.items() if s == sid]
            if parts:
                b = np.concatenate([p["b"] for p in parts]).astype(np.int64)
                v = np.concatenate([p[stat] for p in parts]).astype(np.float64)
                keep = ~np.isnan(v)
                order = np.argsort(b[keep], kind="stable")
                ts, vals = (start + b[keep] * period)[order], v[keep][order]
            else:
                ts, vals = np.array([], dtype=np.int64), np.array([], dtype=np.float64)
            label = " ".join([name] + [dims[k] for k in sorted(dims)])
            out.append(metric_math.Series(f"search_{sid}", label, ts, vals, {
                "namespace": ns, "metric_name": name, "dimensions": dims, "stat": stat,
                "period": period, "default_label": label}))
        return out

    # expressions, in dependency order
    exprs = {q["Id"]: q for q in queries if "Expression" in q}
    parsed = {}
    for i, q in enumerate(queries, 1):
        if "Expression" in q:
            try:
                parsed[q["Id"]] = metric_math.parse(q["Expression"])
            except QueryError as e:
                raise _bad(f"Error in expression {q['Id']} "
                           f"(MetricDataQueries.member.{i}.Expression): {e.render()}") from None
    deps = {k: metric_math.referenced_ids(v) for k, v in parsed.items()}
    known = set(series_by_id) | set(exprs)
    for k, ids in deps.items():
        unknown = sorted(ids - known)
        if unknown:
            raise _bad(f"Error in expression {k}: Unrecognized metric or expression id "
                       f"{unknown[0]}.")
    order: list[str] = []
    state: dict = {}

    def visit(k, path=()):
        if state.get(k) == "done":
            return
        if state.get(k) == "active":
            raise _bad(f"Error in expression {k}: circular dependency between expressions "
                       f"{' -> '.join(path + (k,))}.")
        state[k] = "active"
        for d in sorted(deps[k]):
            if d in exprs:
                visit(d, path + (k,))
        state[k] = "done"
        order.append(k)

    for k in exprs:
        visit(k)
    grid_period = min((q["MetricStat"]["Period"] for q in stat_queries), default=60)
    for k in order:
        q = exprs[k]
        period = q.get("Period") or grid_period
        mctx = metric_math.MathContext(period=period, start=align_start(start_s, period, now),
                                       end=int(end_s), series=dict(series_by_id), search=search)
        try:
            res = metric_math.evaluate(parsed[k], mctx, text=q["Expression"])
        except QueryError as e:
            raise _bad(f"Error in expression {k}: {e.with_text(q['Expression']).render()}") from None
        if isinstance(res, (int, float)):
            # A scalar result is shown at every timestamp of the request's series.
            grid = sorted({int(t) for s in series_by_id.values() if isinstance(s, metric_math.Series)
                           for t in s.timestamps})
            res = [metric_math.Series(k, k, np.array(grid, dtype=np.int64),
                                      np.full(len(grid), float(res)), {})]
        results = []
        for s in res:
            meta = dict(s.meta or {}, expression=True)
            single = len(res) == 1
            meta["default_label"] = k if single else (s.label or k)
            results.append(metric_math.Series(k if single else s.id, s.label, s.timestamps,
                                              s.values, meta))
        series_by_id[k] = results[0] if len(results) == 1 else results
    out = []
    for q in queries:
        if not q.get("ReturnData", True):
            continue
        got = series_by_id.get(q["Id"])
        items = got if isinstance(got, list) else [got]
        out.append((q, [s for s in items if s is not None]))
    return out


@operation("cloudwatch", "GetMetricData")
async def get_metric_data(ctx: Context, MetricDataQueries, StartTime, EndTime, NextToken=None,
                          ScanBy=None, MaxDatapoints=None, LabelOptions=None):
    if StartTime >= EndTime:
        raise ServiceError("InvalidParameterValueException",
                           "The parameter StartTime must be less than the parameter EndTime.")
    _validate(MetricDataQueries)
    max_points = MaxDatapoints or DEFAULT_MAX_DATAPOINTS
    fingerprint = hashlib.sha1(json.dumps([MetricDataQueries, StartTime, EndTime, ScanBy],
                                          sort_keys=True, default=str).encode()).hexdigest()[:16]
    offset = 0
    if NextToken:
        err = ServiceError("InvalidNextToken", "The specified NextToken is invalid.")
        tok = _untoken(NextToken, err)
        if not (isinstance(tok, dict) and tok.get("f") == fingerprint
                and isinstance(tok.get("o"), int) and tok["o"] >= 0):
            raise err
        offset = tok["o"]
    now = ctx.now()
    evaluated = await ctx.store.query(
        lambda cur: _run(cur, ctx, MetricDataQueries, StartTime, EndTime, now))
    ascending = ScanBy == "TimestampAscending"
    results = []
    skipped = 0          # datapoints before this page
    budget = max_points
    truncated = False
    for q, series_list in evaluated:
        for s in series_list:
            ts, vals = s.timestamps, s.values
            if len(ts):
                finite = np.isfinite(vals)
                ts, vals = ts[finite], vals[finite]
            if not ascending:
                ts, vals = ts[::-1], vals[::-1]
            n = len(ts)
            lo = min(max(offset - skipped, 0), n)
            skipped += n
            take = min(n - lo, budget)
            budget -= take
            label = q.get("Label")
            label = _dynamic_label(label, s, s.meta.get("period", 0) if s.meta else 0) if label \
                else (s.meta or {}).get("default_label", s.label)
            if len(series_list) > 1 and q.get("Label") and "${" not in q["Label"]:
                label = f"{q['Label']} {s.label}"
            status = "Complete"
            if lo + take < n:
                status = "PartialData"
                truncated = True
            results.append({
                "Id": q["Id"], "Label": label,
                "Timestamps": [float(t) for t in ts[lo:lo + take]],
                "Values": [float(v) for v in vals[lo:lo + take]],
                "StatusCode": status,
            })
        if not series_list:
            results.append({"Id": q["Id"], "Label": q.get("Label") or q["Id"],
                            "Timestamps": [], "Values": [], "StatusCode": "Complete"})
    out = {"MetricDataResults": results, "Messages": []}
    if truncated:
        out["NextToken"] = _token({"f": fingerprint, "o": offset + max_points})
    return out
