"""CloudWatch Logs: log groups, streams, events, filter patterns, retention, tags.

AWS references: API_CreateLogGroup, API_DescribeLogGroups, API_DescribeLogStreams,
API_PutLogEvents (and RejectedLogEventsInfo), API_GetLogEvents, API_FilterLogEvents,
API_PutRetentionPolicy, API_TagResource; quotas in cloudwatch_limits_cwl.html.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np

from query import filter_pattern
from query.errors import QueryError

from .. import emf
from ..errors import ServiceError
from ..store.logs import EventBatch, LogGroup
from . import Context, PrepareEnv, operation, prepare_step

MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 1_048_576
DAY_MS = 86_400_000
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                  2192, 2557, 2922, 3288, 3653)
PAGE_BYTES = 1_048_576


def invalid(message: str) -> ServiceError:
    return ServiceError("InvalidParameterException", message)


def not_found(message: str = "The specified log group does not exist.") -> ServiceError:
    return ServiceError("ResourceNotFoundException", message)


def group_arn(ctx: Context, g: LogGroup, star: bool = True) -> str:
    arn = f"arn:{_partition(g.region)}:logs:{g.region}:{g.account}:log-group:{g.name}"
    return arn + ":*" if star else arn


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws"


_ARN_RE = re.compile(r"^arn:aws[a-z-]*:logs:([^:]*):(\d{12}):log-group:([^:]+)(?::\*)?$")


def _resolve_group(ctx: Context, name: str | None = None, identifier: str | None = None,
                   required: bool = True) -> LogGroup | None:
    if name is not None and identifier is not None:
        raise ServiceError("ValidationException",
                           "LogGroup name and LogGroup ARN are mutually exclusive parameters.",
                           status=400)
    if identifier is not None:
        m = _ARN_RE.match(identifier)
        if m:
            region, account, name = m.groups()
            if account != ctx.account:
                raise not_found()
            g = ctx.server.logs.group(account, region, name)
        else:
            g = ctx.server.logs.group(ctx.account, ctx.region, identifier)
    elif name is not None:
        g = ctx.server.logs.group(ctx.account, ctx.region, name)
    else:
        if not required:
            return None
        raise invalid("Either logGroupName or logGroupIdentifier must be specified.")
    if g is None:
        raise not_found()
    return g


def _token(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def _untoken(token: str):
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError):
        raise invalid("The specified nextToken is invalid.") from None


# -- groups ----------------------------------------------------------------------------------

@operation("logs", "CreateLogGroup")
async def create_log_group(ctx: Context, logGroupName, kmsKeyId=None, tags=None,
                           logGroupClass=None, deletionProtectionEnabled=None):
    if logGroupName.startswith("aws/"):
        raise invalid("Log group names starting with 'aws/' are reserved for AWS services.")
    if tags is not None and len(tags) > 50:
        raise ServiceError("TooManyTagsException", "A resource can have no more than 50 tags.")
    logs = ctx.server.logs
    now = ctx.server.clock.now_ms()

    def write(w):
        g = logs.create_group(w, ctx.account, ctx.region, logGroupName, now, kmsKeyId,
                              logGroupClass or "STANDARD", bool(deletionProtectionEnabled))
        if g is None:
            raise ServiceError("ResourceAlreadyExistsException",
                               "The specified log group already exists")
        for k, v in (tags or {}).items():
            w.execute("INSERT INTO log_tags VALUES (?, ?, ?)", [g.id, k, v])
    await ctx.store.write(write)
    return {}


@operation("logs", "DeleteLogGroup")
async def delete_log_group(ctx: Context, logGroupName):
    g = _resolve_group(ctx, logGroupName)
    if g.deletion_protection:
        raise ServiceError("OperationAbortedException",
                           "Log group deletion is not allowed while deletion protection is enabled.")
    await ctx.store.write(lambda w: ctx.server.logs.delete_group(w, g))
    return {}


def _group_rows(ctx: Context, prefix=None, pattern=None, log_class=None):
    groups = [g for (acct, region, _), g in ctx.server.logs.groups.items()
              if acct == ctx.account and region == ctx.region]
    if prefix:
        groups = [g for g in groups if g.name.startswith(prefix)]
    if pattern:
        p = pattern.lower()
        groups = [g for g in groups if p in g.name.lower()]
    if log_class:
        groups = [g for g in groups if g.log_class == log_class]
    return sorted(groups, key=lambda g: g.name)


def _page(items, key, nextToken, limit):
    start = 0
    if nextToken:
        after = _untoken(nextToken)
        if not isinstance(after, str):
            raise invalid("The specified nextToken is invalid.")
        while start < len(items) and key(items[start]) <= after:
            start += 1
    page = items[start:start + limit]
    token = _token(key(page[-1])) if start + limit < len(items) and page else None
    return page, token


@operation("logs", "DescribeLogGroups")
async def describe_log_groups(ctx: Context, accountIdentifiers=None, logGroupNamePrefix=None,
                              logGroupNamePattern=None, nextToken=None, limit=None,
                              includeLinkedAccounts=None, logGroupClass=None,
                              logGroupIdentifiers=None):
    if logGroupNamePrefix is not None and logGroupNamePattern is not None:
        raise invalid("LogGroup name prefix and LogGroup name pattern are mutually exclusive "
                      "parameters.")
    groups = _group_rows(ctx, logGroupNamePrefix, logGroupNamePattern, logGroupClass)
    if logGroupIdentifiers:
        wanted = set()
        for ident in logGroupIdentifiers:
            m = _ARN_RE.match(ident)
            wanted.add(m.group(3) if m else ident)
        groups = [g for g in groups if g.name in wanted]
    page, token = _page(groups, lambda g: g.name, nextToken, limit or 50)
    ids = [g.id for g in page]
    stats = {}
    if ids:
        rows = await ctx.store.read(lambda cur: cur.execute(
            "SELECT g.id, (SELECT coalesce(sum(s.stored_bytes), 0) FROM log_streams s"
            " WHERE s.group_id = g.id), (SELECT count(*) FROM metric_filters f"
            " WHERE f.group_id = g.id) FROM log_groups g WHERE g.id IN (SELECT unnest(?))",
            [ids]).fetchall())
        stats = {r[0]: r[1:] for r in rows}
    out = []
    for g in page:
        stored, nfilters = stats.get(g.id, (0, 0))
        item = {"logGroupName": g.name, "creationTime": g.created, "metricFilterCount": nfilters,
                "arn": group_arn(ctx, g), "storedBytes": stored, "logGroupClass": g.log_class,
                "logGroupArn": group_arn(ctx, g, star=False),
                "deletionProtectionEnabled": g.deletion_protection}
        if g.retention is not None:
            item["retentionInDays"] = g.retention
        if g.kms_key_id:
            item["kmsKeyId"] = g.kms_key_id
        out.append(item)
    res = {"logGroups": out}
    if token:
        res["nextToken"] = token
    return res


@operation("logs", "ListLogGroups")
async def list_log_groups(ctx: Context, logGroupNamePattern=None, logGroupClass=None,
                          includeLinkedAccounts=None, accountIdentifiers=None, nextToken=None,
                          limit=None, dataSources=None, fieldIndexNames=None, logGroupTags=None):
    groups = _group_rows(ctx, None, None, logGroupClass)
    if logGroupNamePattern:
        try:
            rx = re.compile(logGroupNamePattern)
        except re.error:
            raise invalid(f"Invalid logGroupNamePattern {logGroupNamePattern}.") from None
        groups = [g for g in groups if rx.search(g.name)]
    page, token = _page(groups, lambda g: g.name, nextToken, limit or 50)
    res = {"logGroups": [{"logGroupName": g.name, "logGroupArn": group_arn(ctx, g, star=False),
                          "logGroupClass": g.log_class} for g in page]}
    if token:
        res["nextToken"] = token
    return res


@operation("logs", "PutRetentionPolicy")
async def put_retention_policy(ctx: Context, logGroupName, retentionInDays):
    if retentionInDays not in RETENTION_DAYS:
        raise invalid(
            f"1 validation error detected: Value '{retentionInDays}' at 'retentionInDays' failed "
            f"to satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(str(d) for d in RETENTION_DAYS)}]")
    g = _resolve_group(ctx, logGroupName)
    await ctx.store.write(lambda w: ctx.server.logs.set_retention(w, g, retentionInDays))
    return {}


@operation("logs", "DeleteRetentionPolicy")
async def delete_retention_policy(ctx: Context, logGroupName):
    g = _resolve_group(ctx, logGroupName)
    await ctx.store.write(lambda w: ctx.server.logs.set_retention(w, g, None))
    return {}


# -- streams ---------------------------------------------------------------------------------

@operation("logs", "CreateLogStream")
async def create_log_stream(ctx: Context, logGroupName, logStreamName):
    g = _resolve_group(ctx, logGroupName)
    now = ctx.server.clock.now_ms()

    def write(w):
        if ctx.server.logs.create_stream(w, g.id, logStreamName, now) is None:
            raise ServiceError("ResourceAlreadyExistsException",
                               "The specified log stream already exists")
    await ctx.store.write(write)
    return {}


@operation("logs", "DeleteLogStream")
async def delete_log_stream(ctx: Context, logGroupName, logStreamName):
    g = _resolve_group(ctx, logGroupName)
    if ctx.server.logs.stream_id(g.id, logStreamName) is None:
        raise not_found("The specified log stream does not exist.")
    await ctx.store.write(lambda w: ctx.server.logs.delete_stream(w, g.id, logStreamName))
    return {}


@operation("logs", "DescribeLogStreams")
async def describe_log_streams(ctx: Context, logGroupName=None, logGroupIdentifier=None,
                               logStreamNamePrefix=None, orderBy=None, descending=None,
                               nextToken=None, limit=None):
    g = _resolve_group(ctx, logGroupName, logGroupIdentifier)
    if orderBy == "LastEventTime" and logStreamNamePrefix is not None:
        raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    limit = limit or 50
    by_time = orderBy == "LastEventTime"
    order = ("coalesce(last_ts, -1)" if by_time else "name") + (" DESC" if descending else "")
    order += ", id" + (" DESC" if descending else "")
    offset = 0
    if nextToken:
        tok = _untoken(nextToken)
        if not isinstance(tok, int) or tok < 0:
            raise invalid("The specified nextToken is invalid.")
        offset = tok
    sql = ("SELECT name, created, first_ts, last_ts, last_ingest, stored_bytes FROM log_streams"
           " WHERE group_id = ?" + (" AND starts_with(name, ?)" if logStreamNamePrefix else "")
           + f" ORDER BY {order} LIMIT ? OFFSET ?")
    params = [g.id] + ([logStreamNamePrefix] if logStreamNamePrefix else []) + [limit + 1, offset]
    rows = await ctx.store.read(lambda cur: cur.execute(sql, params).fetchall())
    out = []
    for name, created, first, last, ingest, stored in rows[:limit]:
        item = {"logStreamName": name, "creationTime": created,
                "arn": f"{group_arn(ctx, g, star=False)}:log-stream:{name}", "storedBytes": 0}
        if first is not None:
            item.update(firstEventTimestamp=first, lastEventTimestamp=last,
                        lastIngestionTime=ingest)
        out.append(item)
    res = {"logStreams": out}
    if len(rows) > limit:
        res["nextToken"] = _token(offset + limit)
    return res


# -- PutLogEvents ------------------------------------------------------------------------------

@prepare_step("logs", "PutLogEvents")
def prepare_put_log_events(env: PrepareEnv, logGroupName, logStreamName, logEvents,
                           sequenceToken=None, entity=None):
    """Validate a PutLogEvents batch (pure): order, sizes; find too-new/too-old events."""
    n = len(logEvents)
    ts = np.fromiter((e["timestamp"] for e in logEvents), dtype=np.int64, count=n)
    if n > 1 and np.any(np.diff(ts) < 0):
        raise invalid("Log events in a single PutLogEvents request must be in chronological order.")
    messages = [e["message"] for e in logEvents]
    sizes = np.fromiter((len(m) if m.isascii() else len(m.encode("utf-8")) for m in messages),
                        dtype=np.int64, count=n)
    if n and int(sizes.max()) + EVENT_OVERHEAD > MAX_EVENT_BYTES:
        i = int(np.argmax(sizes))
        raise invalid(f"Log event too large: {int(sizes[i]) + EVENT_OVERHEAD} bytes exceeds limit "
                      f"of {MAX_EVENT_BYTES}")
    total = int(sizes.sum()) + EVENT_OVERHEAD * n
    if total > MAX_BATCH_BYTES:
        raise invalid(f"Upload too large: {total} bytes exceeds limit of {MAX_BATCH_BYTES}")
    now_ms = int(env.now * 1000)
    # events are sorted, so the too-old ones lead and the too-new ones trail
    too_old_end = int(np.searchsorted(ts, now_ms - 14 * DAY_MS, side="left"))
    too_new_start = int(np.searchsorted(ts, now_ms + 2 * 3600_000, side="right"))
    # Embedded Metric Format: parsed here, on an ingest worker for large bodies, so the
    # single writer only inserts the samples (None when no message mentions "_aws")
    metrics = emf.extract(messages, ts, now_ms, env.allow_aws_namespaces)
    return {"group": logGroupName, "stream": logStreamName, "ts": ts, "messages": messages,
            "sizes": sizes, "too_old_end": too_old_end, "too_new_start": too_new_start,
            "emf": metrics}


@operation("logs", "PutLogEvents")
async def put_log_events(ctx: Context, prepared=None, **params):
    p = prepared if prepared is not None else prepare_put_log_events(ctx.prepare_env(), **params)
    logs = ctx.server.logs
    g = _resolve_group(ctx, p["group"])
    sid = logs.stream_id(g.id, p["stream"])
    if sid is None:
        raise not_found("The specified log stream does not exist.")
    ts = p["ts"]
    n = len(ts)
    now_ms = ctx.server.clock.now_ms()
    lo, hi = p["too_old_end"], p["too_new_start"]
    info = {}
    if lo > 0:
        info["tooOldLogEventEndIndex"] = lo
    if hi < n:
        info["tooNewLogEventStartIndex"] = hi
    if g.retention is not None:
        expired_end = int(np.searchsorted(ts, now_ms - g.retention * DAY_MS, side="left"))
        if expired_end > lo:
            info["expiredLogEventEndIndex"] = expired_end
            lo = expired_end
    lo = min(lo, hi)
    if hi > lo and ts[hi - 1] - ts[lo] > DAY_MS:
        raise invalid("The batch of log events in a single PutLogEvents request cannot span more "
                      "than 24 hours.")
    metrics = p.get("emf")
    batch = EventBatch(ts[lo:hi], p["messages"][lo:hi], int(p["sizes"][lo:hi].sum()),
                       emf=metrics.between(lo, hi) if metrics is not None else None)
    if hi > lo:
        await ctx.server.put_log_events(ctx.account, ctx.region, g, sid, batch)
    out = {"nextSequenceToken": f"{now_ms:056d}"}
    if info:
        out["rejectedLogEventsInfo"] = info
    return out


# -- reading events ------------------------------------------------------------------------------

def _pos(ts: int, seq: int) -> str:
    return f"{ts:028d}{seq:028d}"


def _unpos(token: str, direction: str) -> tuple[int, int]:
    if not token.startswith(direction + "/") or len(token) != 58 or not token[2:].isdigit():
        raise invalid("The specified nextToken is invalid.")
    return int(token[2:30]), int(token[30:])


def _take_page(rows, limit):
    out, size = [], 0
    for r in rows[:limit]:
        size += len(r[1].encode("utf-8")) + EVENT_OVERHEAD
        if out and size > PAGE_BYTES:
            break
        out.append(r)
    return out


@operation("logs", "GetLogEvents")
async def get_log_events(ctx: Context, logStreamName, logGroupName=None, logGroupIdentifier=None,
                         startTime=None, endTime=None, nextToken=None, limit=None,
                         startFromHead=None, unmask=None):
    g = _resolve_group(ctx, logGroupName, logGroupIdentifier)
    sid = ctx.server.logs.stream_id(g.id, logStreamName)
    if sid is None:
        raise not_found("The specified log stream does not exist.")
    limit = limit or 10_000
    where = ["stream_id = $sid"]
    params = {"sid": sid, "lim": limit}
    if startTime is not None:
        where.append("ts >= $start")
        params["start"] = startTime
    if endTime is not None:
        where.append("ts < $end")
        params["end"] = endTime
    if nextToken:
        direction = nextToken[:1]
        if direction not in ("f", "b"):
            raise invalid("The specified nextToken is invalid.")
        pts, pseq = _unpos(nextToken, direction)
        params["pts"], params["pseq"] = pts, pseq
        forward = direction == "f"
        where.append("(ts, seq) > ($pts, $pseq)" if forward else "(ts, seq) < ($pts, $pseq)")
    else:
        forward = bool(startFromHead)
    sql = (f"SELECT ts, message, ingest, seq FROM log_events WHERE {' AND '.join(where)}"
           f" ORDER BY ts {'ASC' if forward else 'DESC'}, seq {'ASC' if forward else 'DESC'}"
           " LIMIT $lim")
    rows = await ctx.store.read(lambda cur: cur.execute(sql, params).fetchall())
    rows = _take_page(rows, limit)
    if not forward:
        rows.reverse()
    events = [{"timestamp": r[0], "message": r[1], "ingestionTime": r[2]} for r in rows]
    if rows:
        fwd = "f/" + _pos(rows[-1][0], rows[-1][3])
        bwd = "b/" + _pos(rows[0][0], rows[0][3])
    elif nextToken:
        # the end of the stream in that direction: AWS hands the same token back
        fwd = nextToken if nextToken.startswith("f/") else "f/" + nextToken[2:]
        bwd = nextToken if nextToken.startswith("b/") else "b/" + nextToken[2:]
    else:
        fwd = "f/" + _pos(max((startTime or 0) - 1, 0), 0)
        bwd = "b/" + _pos(endTime if endTime is not None else 10 ** 27, 0)
    return {"events": events, "nextForwardToken": fwd, "nextBackwardToken": bwd}


def compile_filter(pattern: str | None):
    """(sql, params) of a filter pattern over ``message``, or InvalidParameterException."""
    if not pattern:
        return "TRUE", []
    try:
        return filter_pattern.compile_predicate(pattern, "message")
    except QueryError as e:
        raise invalid(f"Invalid filter pattern: {e.with_text(pattern).render()}") from None


@operation("logs", "FilterLogEvents")
async def filter_log_events(ctx: Context, logGroupName=None, logGroupIdentifier=None,
                            logStreamNames=None, logStreamNamePrefix=None, startTime=None,
                            endTime=None, filterPattern=None, nextToken=None, limit=None,
                            startFromHead=None, interleaved=None, unmask=None):
    g = _resolve_group(ctx, logGroupName, logGroupIdentifier)
    if logStreamNames is not None and logStreamNamePrefix is not None:
        raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    pred, pred_params = compile_filter(filterPattern)
    limit = limit or 10_000
    where = ["group_id = ?"]
    params: list = [g.id]
    streams = ctx.server.logs.streams
    if logStreamNames is not None:
        ids = [streams.get((g.id, n)) for n in logStreamNames]
        missing = [n for n, i in zip(logStreamNames, ids) if i is None]
        if missing:
            raise not_found("The specified log stream does not exist.")
        where.append("stream_id IN (SELECT unnest(?))")
        params.append(ids)
    elif logStreamNamePrefix is not None:
        ids = [sid for (gid, name), sid in streams.items()
               if gid == g.id and name.startswith(logStreamNamePrefix)]
        where.append("stream_id IN (SELECT unnest(?))")
        params.append(ids)
    if startTime is not None:
        where.append("ts >= ?")
        params.append(startTime)
    if endTime is not None:
        where.append("ts <= ?")
        params.append(endTime)
    fingerprint = hashlib.sha1(json.dumps(
        [g.id, logStreamNames, logStreamNamePrefix, startTime, endTime, filterPattern],
        default=str).encode()).hexdigest()[:12]
    if nextToken:
        tok = _untoken(nextToken)
        if not (isinstance(tok, list) and len(tok) == 3 and tok[0] == fingerprint
                and all(isinstance(x, int) for x in tok[1:])):
            raise invalid("The specified nextToken is invalid.")
        where.append("(ts, seq) > (?, ?)")
        params.extend(tok[1:])
    where.append(f"({pred})")
    params.extend(pred_params)
    params.append(limit + 1)
    sql = (f"SELECT ts, message, ingest, seq, stream_id FROM log_events WHERE {' AND '.join(where)}"
           " ORDER BY ts, seq LIMIT ?")
    rows = await ctx.store.read(lambda cur: cur.execute(sql, params).fetchall())
    page = _take_page(rows, limit)
    names = {sid: name for (gid, name), sid in streams.items() if gid == g.id}
    events = [{"logStreamName": names.get(r[4], ""), "timestamp": r[0], "message": r[1],
               "ingestionTime": r[2], "eventId": f"{r[3]:056d}"} for r in page]
    searched = sorted({names.get(r[4], "") for r in page})
    res = {"events": events,
           "searchedLogStreams": [{"logStreamName": n, "searchedCompletely": True}
                                  for n in searched]}
    if len(page) < len(rows):
        res["nextToken"] = _token([fingerprint, page[-1][0], page[-1][3]])
    return res


# -- tags --------------------------------------------------------------------------------------

async def _set_tags(ctx: Context, g: LogGroup, tags: dict) -> None:
    def write(w):
        for k, v in tags.items():
            w.execute("INSERT OR REPLACE INTO log_tags VALUES (?, ?, ?)", [g.id, k, v])
        n = w.execute("SELECT count(*) FROM log_tags WHERE group_id = ?", [g.id]).fetchone()[0]
        if n > 50:
            raise ServiceError("TooManyTagsException",
                               "A resource can have no more than 50 tags.")
    await ctx.store.write(write)


async def _del_tags(ctx: Context, g: LogGroup, keys) -> None:
    def write(w):
        for k in keys:
            w.execute("DELETE FROM log_tags WHERE group_id = ? AND key = ?", [g.id, k])
    await ctx.store.write(write)


async def _get_tags(ctx: Context, g: LogGroup) -> dict:
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT key, value FROM log_tags WHERE group_id = ? ORDER BY key", [g.id]).fetchall())
    return dict(rows)


def _group_by_arn(ctx: Context, arn: str) -> LogGroup:
    m = _ARN_RE.match(arn)
    if not m:
        raise invalid(f"Invalid resource ARN: {arn}")
    return _resolve_group(ctx, identifier=arn)


@operation("logs", "TagResource")
async def tag_resource(ctx: Context, resourceArn, tags):
    await _set_tags(ctx, _group_by_arn(ctx, resourceArn), tags)
    return {}


@operation("logs", "UntagResource")
async def untag_resource(ctx: Context, resourceArn, tagKeys):
    await _del_tags(ctx, _group_by_arn(ctx, resourceArn), tagKeys)
    return {}


@operation("logs", "ListTagsForResource")
async def list_tags_for_resource(ctx: Context, resourceArn):
    return {"tags": await _get_tags(ctx, _group_by_arn(ctx, resourceArn))}


@operation("logs", "TagLogGroup")
async def tag_log_group(ctx: Context, logGroupName, tags):
    await _set_tags(ctx, _resolve_group(ctx, logGroupName), tags)
    return {}


@operation("logs", "UntagLogGroup")
async def untag_log_group(ctx: Context, logGroupName, tags):
    await _del_tags(ctx, _resolve_group(ctx, logGroupName), tags)
    return {}


@operation("logs", "ListTagsLogGroup")
async def list_tags_log_group(ctx: Context, logGroupName):
    return {"tags": await _get_tags(ctx, _resolve_group(ctx, logGroupName))}
