"""CloudWatch dashboards: PutDashboard, GetDashboard, ListDashboards, DeleteDashboards.

Dashboards are global in AWS (their ARN has no region: arn:aws:cloudwatch::ACCOUNT:dashboard/NAME).
"""
from __future__ import annotations

import json
import re

from ..errors import ServiceError
from . import Context, operation
from .metrics import _token, _untoken

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def dashboard_arn(ctx: Context, name: str) -> str:
    partition = "aws-cn" if ctx.region.startswith("cn-") else "aws"
    return f"arn:{partition}:cloudwatch::{ctx.account}:dashboard/{name}"


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ServiceError("InvalidParameterValueException",
                           "The value for field DashboardName contains invalid characters. It can "
                           "only contain alphanumerics, dash (-) and underscore (_).\n")


def validate_body(body: str) -> list[dict]:
    """DashboardValidationMessages for a body; raises for a body that is not a dashboard."""
    def invalid(msgs):
        return ServiceError("DashboardInvalidInputError", "The input for the dashboard is invalid. "
                            + " ".join(m["Message"] for m in msgs))
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise invalid([{"DataPath": "", "Message": f"Should be a valid JSON object ({e.msg})"}]) from None
    except RecursionError:
        raise invalid([{"DataPath": "", "Message": "Should be a valid JSON object (nested too deeply)"}]) from None
    if not isinstance(doc, dict):
        raise invalid([{"DataPath": "", "Message": "Should be an object"}])
    msgs = []
    widgets = doc.get("widgets")
    if widgets is None:
        raise invalid([{"DataPath": "", "Message": "Should have required property 'widgets'"}])
    if not isinstance(widgets, list):
        raise invalid([{"DataPath": "/widgets", "Message": "Should be array"}])
    for i, w in enumerate(widgets):
        path = f"/widgets/{i}"
        if not isinstance(w, dict):
            raise invalid([{"DataPath": path, "Message": "Should be object"}])
        t = w.get("type")
        if t not in ("metric", "text", "log", "alarm", "explorer", "custom"):
            raise invalid([{"DataPath": f"{path}/type",
                            "Message": "Should be equal to one of the allowed values"}])
        props = w.get("properties")
        if t in ("metric", "text", "log", "alarm") and not isinstance(props, dict):
            raise invalid([{"DataPath": path, "Message": "Should have required property 'properties'"}])
        if t == "metric":
            if "metrics" not in props and "query" not in props:
                msgs.append({"DataPath": f"{path}/properties",
                             "Message": "Should have required property 'metrics'"})
        for k in ("x", "y", "width", "height"):
            if k in w and not isinstance(w[k], int):
                raise invalid([{"DataPath": f"{path}/{k}", "Message": "Should be integer"}])
    return msgs


@operation("cloudwatch", "PutDashboard")
async def put_dashboard(ctx: Context, DashboardName: str, DashboardBody: str):
    _check_name(DashboardName)
    msgs = validate_body(DashboardBody)
    now = ctx.server.clock.now_ms()
    size = len(DashboardBody.encode())

    def write(w):
        w.execute("INSERT OR REPLACE INTO dashboards VALUES (?, '', ?, ?, ?, ?)",
                  [ctx.account, DashboardName, DashboardBody, now, size])
    await ctx.store.write(write)
    return {"DashboardValidationMessages": msgs}


def _not_found(name: str) -> ServiceError:
    return ServiceError("DashboardNotFoundError", f"Dashboard {name} does not exist")


@operation("cloudwatch", "GetDashboard")
async def get_dashboard(ctx: Context, DashboardName: str):
    row = await ctx.store.read(lambda cur: cur.execute(
        "SELECT body FROM dashboards WHERE account = ? AND name = ?",
        [ctx.account, DashboardName]).fetchone())
    if row is None:
        raise _not_found(DashboardName)
    return {"DashboardArn": dashboard_arn(ctx, DashboardName), "DashboardBody": row[0],
            "DashboardName": DashboardName}


@operation("cloudwatch", "ListDashboards")
async def list_dashboards(ctx: Context, DashboardNamePrefix=None, NextToken=None):
    after = ""
    if NextToken:
        tok = _untoken(NextToken, ServiceError("InvalidNextToken", "The specified NextToken is invalid."))
        if not isinstance(tok, str):
            raise ServiceError("InvalidNextToken", "The specified NextToken is invalid.")
        after = tok
    prefix = DashboardNamePrefix or ""
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT name, last_modified, size FROM dashboards WHERE account = ? AND starts_with(name, ?)"
        " AND name > ? ORDER BY name LIMIT 1001", [ctx.account, prefix, after]).fetchall())
    entries = [{"DashboardName": n, "DashboardArn": dashboard_arn(ctx, n),
                "LastModified": lm / 1000.0, "Size": size} for n, lm, size in rows[:1000]]
    out = {"DashboardEntries": entries}
    if len(rows) > 1000:
        out["NextToken"] = _token(rows[999][0])
    return out


@operation("cloudwatch", "DeleteDashboards")
async def delete_dashboards(ctx: Context, DashboardNames):
    def write(w):
        for name in DashboardNames:
            if w.execute("SELECT 1 FROM dashboards WHERE account = ? AND name = ?",
                         [ctx.account, name]).fetchone() is None:
                raise _not_found(name)
        for name in DashboardNames:
            w.execute("DELETE FROM dashboards WHERE account = ? AND name = ?", [ctx.account, name])
            w.execute("DELETE FROM tags WHERE arn = ?", [dashboard_arn(ctx, name)])
    await ctx.store.write(write)
    return {}
