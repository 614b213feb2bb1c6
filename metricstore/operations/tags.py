"""CloudWatch resource tags (TagResource, UntagResource, ListTagsForResource).

Resources are looked up through RESOURCE_EXISTS, keyed by the ARN's resource type, so later
resource kinds (alarms, insight rules) register without touching this module.
"""
from __future__ import annotations

import re

from ..errors import ServiceError
from . import Context, operation

RESOURCE_EXISTS: dict = {}   # resource type -> fn(cursor, ctx, name) -> bool

_ARN = re.compile(r"^arn:aws[a-z-]*:cloudwatch:[^:]*:(\d{12}):(dashboard|alarm|insight-rule)[/:](.+)$")


def _exists_dashboard(cur, ctx, name):
    return cur.execute("SELECT 1 FROM dashboards WHERE account = ? AND name = ?",
                       [ctx.account, name]).fetchone() is not None


RESOURCE_EXISTS["dashboard"] = _exists_dashboard


async def _check(ctx: Context, arn: str) -> None:
    m = _ARN.match(arn)
    if not m:
        raise ServiceError("InvalidParameterValueException",
                           f"The value {arn} for parameter ResourceARN is not a valid ARN.")
    acct, kind, name = m.groups()
    check = RESOURCE_EXISTS.get(kind)
    if acct != ctx.account or check is None or not await ctx.store.read(
            lambda cur: check(cur, ctx, name)):
        raise ServiceError("ResourceNotFoundException", "The specified resource does not exist.")


@operation("cloudwatch", "TagResource")
async def tag_resource(ctx: Context, ResourceARN: str, Tags):
    await _check(ctx, ResourceARN)

    def write(w):
        for t in Tags:
            w.execute("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)",
                      [ResourceARN, t["Key"], t["Value"]])
        n = w.execute("SELECT count(*) FROM tags WHERE arn = ?", [ResourceARN]).fetchone()[0]
        if n > 50:
            raise ServiceError("LimitExceededFault", "The maximum number of tags (50) for this "
                               "resource has been exceeded.")
    await ctx.store.write(write)
    return {}


@operation("cloudwatch", "UntagResource")
async def untag_resource(ctx: Context, ResourceARN: str, TagKeys):
    await _check(ctx, ResourceARN)

    def write(w):
        for k in TagKeys:
            w.execute("DELETE FROM tags WHERE arn = ? AND key = ?", [ResourceARN, k])
    await ctx.store.write(write)
    return {}


@operation("cloudwatch", "ListTagsForResource")
async def list_tags_for_resource(ctx: Context, ResourceARN: str):
    await _check(ctx, ResourceARN)
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT key, value FROM tags WHERE arn = ? ORDER BY key", [ResourceARN]).fetchall())
    return {"Tags": [{"Key": k, "Value": v} for k, v in rows]}
