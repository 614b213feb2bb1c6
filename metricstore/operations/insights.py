"""Logs Insights API: StartQuery, GetQueryResults, StopQuery, DescribeQueries, GetLogRecord,
and saved queries (Put/Describe/DeleteQueryDefinition).

A query is parsed and compiled when it is started (syntax errors are MalformedQueryException
at once, as in AWS), then runs in the background on its own DuckDB cursor so that StopQuery
and the deadline can interrupt it.  Queries and their results are rows of ordinary tables,
so they survive a restart (a query that was running when the server stopped is Failed).
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from query import insights_compile, insights_format, insights_parser
from query.errors import QueryError

from ..errors import ServiceError
from ..store.db import Store
from . import Context, operation
from .logs import _ARN_RE, _token, _untoken, invalid, not_found

log = logging.getLogger("metricstore.insights")

DDL = """
CREATE TABLE IF NOT EXISTS insights_queries (
    query_id     VARCHAR PRIMARY KEY,
    account      VARCHAR NOT NULL,
    region       VARCHAR NOT NULL,
    group_names  VARCHAR NOT NULL,     -- JSON list
    query_string VARCHAR NOT NULL,
    start_s      BIGINT NOT NULL,
    end_s        BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    status       VARCHAR NOT NULL,
    results      VARCHAR,              -- JSON: GetQueryResults "results"
    statistics   VARCHAR,              -- JSON
    duration_ms  BIGINT
);
CREATE TABLE IF NOT EXISTS query_definitions (
    id           VARCHAR PRIMARY KEY,
    account      VARCHAR NOT NULL,
    region       VARCHAR NOT NULL,
    name         VARCHAR NOT NULL,
    query_string VARCHAR NOT NULL,
    group_names  VARCHAR NOT NULL,
    last_modified BIGINT NOT NULL
);
"""

MAX_CONCURRENT = 100          # concurrent queries per account (AWS quota)
QUERY_TIMEOUT_S = 3600        # AWS: queries time out after 60 minutes
RESULT_ROWS_MAX = 10_000


class QueryRunner:
    """Runs compiled queries off the event loop, each on its own cursor (interruptible)."""

    def __init__(self, store: Store, workers: int = 2, timeout_s: float = QUERY_TIMEOUT_S):
        self.store = store
        self.timeout_s = timeout_s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ms-insights")
        self._running: dict[str, object] = {}      # query id -> cursor
        self._stopped: set[str] = set()
        # query id -> run()'s outcome until the row holding it is committed, so that
        # GetQueryResults need not wait for that write (nor the query for a "Running" one)
        self.finished: dict[str, dict] = {}
        self._lock = threading.Lock()
        store.extend_schema(DDL)
        store.con.execute("UPDATE insights_queries SET status = 'Failed'"
                          " WHERE status IN ('Scheduled', 'Running')")

    def active(self, account: str) -> int:
        with self._lock:
            return sum(1 for a in self._running.values() if a[1] == account)

    def run(self, qid: str, account: str, compiled, scanned) -> dict:
        """Run ``compiled``; ``scanned(cursor)`` gives (recordsScanned, bytesScanned)."""
        cur = self.store.con.cursor()
        cur.execute("SET enable_progress_bar = false")
        with self._lock:
            if qid in self._stopped:
                return {"status": "Cancelled"}
            self._running[qid] = (cur, account)
        timer = threading.Timer(self.timeout_s, self._timeout, args=(qid,))
        timer.start()
        started = time.monotonic()
        try:
            rows = cur.execute(compiled.sql, compiled.params).fetchall()
            scanned, nbytes = scanned(cur)
            # the result's last column when the compiler could fold it in (see Compiled)
            matched = rows[0][-1] if compiled.matched_column and rows else None
            if matched is None:
                matched = scanned if compiled.matched_all else cur.execute(
                    compiled.count_sql, compiled.count_params).fetchone()[0]
            results = insights_format.format_rows(compiled, rows)
            stats = {"recordsMatched": float(matched), "recordsScanned": float(scanned),
                     "bytesScanned": float(nbytes or 0)}
            return {"status": "Complete", "results": results, "statistics": stats,
                    "duration_ms": int((time.monotonic() - started) * 1000)}
        except Exception as e:  # noqa: BLE001 - reported as the query's status
            with self._lock:
                why = "Cancelled" if qid in self._stopped else (
                    "Timeout" if qid in getattr(self, "_timed_out", set()) else "Failed")
            if why == "Failed":
                log.warning("query %s failed: %s", qid, e)
            return {"status": why}
        finally:
            timer.cancel()
            with self._lock:
                self._running.pop(qid, None)
            cur.close()

    def status(self, qid: str, row_status: str) -> tuple[str, dict | None]:
        """A query's status, newer than its row's while the row lags behind (the row says
        Scheduled until the outcome is written), and its outcome if finished."""
        out = self.finished.get(qid)
        if out is not None:
            return out["status"], out
        with self._lock:
            running = qid in self._running
        return ("Running" if running and row_status == "Scheduled" else row_status), None

    def _timeout(self, qid: str) -> None:
        with self._lock:
            self.__dict__.setdefault("_timed_out", set()).add(qid)
            entry = self._running.get(qid)
        if entry:
            entry[0].interrupt()

    def stop(self, qid: str) -> bool:
        with self._lock:
            entry = self._running.get(qid)
            self._stopped.add(qid)
        if entry:
            entry[0].interrupt()
            return True
        return False

    async def submit(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        with self._lock:
            entries = list(self._running.values())
        for cur, _ in entries:
            cur.interrupt()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _runner(ctx: Context) -> QueryRunner:
    return ctx.server.insights


def _groups_for(ctx: Context, logGroupName, logGroupNames, logGroupIdentifiers):
    given = [x for x in (logGroupName, logGroupNames, logGroupIdentifiers) if x is not None]
    if len(given) != 1:
        raise invalid("Exactly one of logGroupName, logGroupNames or logGroupIdentifiers must be "
                      "specified.")
    names = [logGroupName] if logGroupName is not None else list(given[0])
    groups = []
    for ident in names:
        m = _ARN_RE.match(ident)
        region, account, name = (m.groups() if m else (ctx.region, ctx.account, ident))
        g = ctx.server.logs.group(account, region, name) if account == ctx.account else None
        if g is None:
            raise not_found(
                f"Log group '{name}' does not exist for account ID '{ctx.account}' (Service: "
                f"AWSLogs; Status Code: 400; Error Code: ResourceNotFoundException; Request ID: "
                f"{uuid.uuid4()}; Proxy: null)")
        groups.append(g)
    return groups


def events_source(field_sql, gids: list[int], lo_ms: int, hi_ms: int):
    """The compiler's Source over the events of groups ``gids`` with ``lo_ms <= ts <=
    hi_ms``.  The relation is log_events itself (every column: ts, ingest, seq, message,
    the ids and the materialized field columns f_<n>, which Server.log_field_sql hands the
    compiler); the stream and group names are looked up only when a query uses them, and
    @ptr is built for the rows a query returns, not for every event."""
    ids = ", ".join("?" * len(gids))
    return insights_compile.Source(
        f"SELECT * FROM log_events WHERE group_id IN ({ids}) AND ts >= ? AND ts <= ?",
        field_sql, (*gids, lo_ms, hi_ms),
        system_sql={"log_stream": "(SELECT s.name FROM log_streams s WHERE s.id = stream_id)",
                    "log_group": "(SELECT g.account || ':' || g.name FROM log_groups g"
                                 " WHERE g.id = group_id)",
                    "ptr": "printf('%x-%x', group_id, seq)"},
        carried=("group_id",))


def malformed(err: QueryError, text: str) -> ServiceError:
    err.with_text(text)
    start = err.span.start if err.span else 0
    end = err.span.end if err.span else 0
    return ServiceError("MalformedQueryException", err.render(),
                        extra={"queryCompileError": {"location": {"startCharOffset": start,
                                                                  "endCharOffset": end},
                                                     "message": err.message}})


@operation("logs", "StartQuery")
async def start_query(ctx: Context, startTime, endTime, queryString, queryLanguage=None,
                      logGroupName=None, logGroupNames=None, logGroupIdentifiers=None,
                      limit=None):
    if queryLanguage not in (None, "CWLI"):
        raise invalid(f"Query language {queryLanguage} is not supported; use CWLI.")
    if startTime > endTime:
        raise invalid("startTime must be less than or equal to endTime.")
    groups = _groups_for(ctx, logGroupName, logGroupNames, logGroupIdentifiers)
    runner = _runner(ctx)
    if runner.active(ctx.account) >= MAX_CONCURRENT:
        raise ServiceError("LimitExceededException",
                           f"Account maximum query concurrency limit of [{MAX_CONCURRENT}] reached.")
    now_ms = ctx.server.clock.now_ms()
    # AWS's end second is inclusive: every event up to endTime + 999 ms counts.
    gids, lo_ms, hi_ms = [g.id for g in groups], startTime * 1000, endTime * 1000 + 999
    try:
        q = insights_parser.parse(queryString)
        compiled = insights_compile.compile_query(
            q, events_source(ctx.server.log_field_sql, gids, lo_ms, hi_ms),
            limit_default=limit or 1000, limit_max=RESULT_ROWS_MAX, now_ms=now_ms)
    except QueryError as e:
        raise malformed(e, queryString) from None
    qid = str(uuid.uuid4())
    names = [g.name for g in groups]

    def insert(w):
        w.execute("INSERT INTO insights_queries (query_id, account, region, group_names,"
                  " query_string, start_s, end_s, created, status) VALUES"
                  " (?, ?, ?, ?, ?, ?, ?, ?, 'Scheduled')",
                  [qid, ctx.account, ctx.region, json.dumps(names), queryString, startTime,
                   endTime, now_ms])
    await ctx.store.write(insert)

    async def background():
        logs = ctx.server.logs
        out = await runner.submit(runner.run, qid, ctx.account, compiled,
                                  lambda cur: logs.scanned(cur, gids, lo_ms, hi_ms))
        runner.finished[qid] = out

        def finish(w):
            w.execute("UPDATE insights_queries SET status = ?, results = ?, statistics = ?,"
                      " duration_ms = ? WHERE query_id = ?",
                      [out["status"], json.dumps(out.get("results", [])),
                       json.dumps(out.get("statistics") or {}), out.get("duration_ms"), qid])
        try:
            await ctx.store.write(finish)
        finally:
            runner.finished.pop(qid, None)
    task = asyncio.get_running_loop().create_task(background())
    ctx.server.background.add(task)
    task.add_done_callback(ctx.server.background.discard)
    return {"queryId": qid}


async def _query_row(ctx: Context, qid: str):
    row = await ctx.store.read(lambda cur: cur.execute(
        "SELECT status, results, statistics, query_string, created, group_names, duration_ms"
        " FROM insights_queries WHERE query_id = ? AND account = ?", [qid, ctx.account]).fetchone())
    if row is None:
        raise not_found("The specified query does not exist.")
    return row


@operation("logs", "GetQueryResults")
async def get_query_results(ctx: Context, queryId, nextToken=None, maxItems=None):
    status, results, stats, *_ = await _query_row(ctx, queryId)
    status, out = _runner(ctx).status(queryId, status)
    if out is not None:
        rows, stats = out.get("results", []), out.get("statistics")
    else:
        rows = json.loads(results) if results else []
        stats = json.loads(stats) if stats else None
    offset = 0
    if nextToken:
        tok = _untoken(nextToken)
        if not isinstance(tok, int) or tok < 0:
            raise invalid("The specified nextToken is invalid.")
        offset = tok
    size = maxItems or RESULT_ROWS_MAX
    out = {"queryLanguage": "CWLI", "results": rows[offset:offset + size], "status": status,
           "statistics": stats or
           {"recordsMatched": 0.0, "recordsScanned": 0.0, "bytesScanned": 0.0}}
    if offset + size < len(rows):
        out["nextToken"] = _token(offset + size)
    return out


@operation("logs", "StopQuery")
async def stop_query(ctx: Context, queryId):
    status, *_ = await _query_row(ctx, queryId)
    status, _ = _runner(ctx).status(queryId, status)
    if status not in ("Scheduled", "Running"):
        raise invalid(f"Query {queryId} is not running (status {status}).")
    return {"success": _runner(ctx).stop(queryId) or status == "Scheduled"}


@operation("logs", "DescribeQueries")
async def describe_queries(ctx: Context, logGroupName=None, status=None, maxResults=None,
                           nextToken=None, queryLanguage=None):
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT query_id, query_string, status, created, group_names, duration_ms"
        " FROM insights_queries WHERE account = ? AND region = ? ORDER BY created DESC, query_id",
        [ctx.account, ctx.region]).fetchall())
    items = []
    runner = _runner(ctx)
    for qid, text, st, created, names, duration in rows:
        st, out = runner.status(qid, st)
        if out is not None:
            duration = out.get("duration_ms")
        names = json.loads(names)
        if status and st != status:
            continue
        if logGroupName and logGroupName not in names:
            continue
        item = {"queryLanguage": "CWLI", "queryId": qid, "queryString": text, "status": st,
                "createTime": created, "logGroupName": names[0] if names else ""}
        if duration is not None:
            item["queryDuration"] = duration
        items.append(item)
    offset = 0
    if nextToken:
        tok = _untoken(nextToken)
        if not isinstance(tok, int) or tok < 0:
            raise invalid("The specified nextToken is invalid.")
        offset = tok
    size = maxResults or 1000
    out = {"queries": items[offset:offset + size]}
    if offset + size < len(items):
        out["nextToken"] = _token(offset + size)
    return out


@operation("logs", "GetLogRecord")
async def get_log_record(ctx: Context, logRecordPointer, unmask=None):
    try:
        gid_hex, seq_hex = logRecordPointer.split("-")
        gid, seq = int(gid_hex, 16), int(seq_hex, 16)
    except ValueError:
        raise invalid("The specified log record pointer is invalid.") from None
    row = await ctx.store.read(lambda cur: cur.execute(
        "SELECT e.ts, e.ingest, e.message, s.name, g.account, g.name FROM log_events e"
        " JOIN log_streams s ON s.id = e.stream_id JOIN log_groups g ON g.id = e.group_id"
        " WHERE e.group_id = ? AND e.seq = ?", [gid, seq]).fetchone())
    if row is None or row[4] != ctx.account:
        raise not_found("The specified log record does not exist.")
    ts, ingest, message, stream, account, group = row
    record = {"@timestamp": str(ts), "@ingestionTime": str(ingest), "@message": message,
              "@logStream": stream, "@log": f"{account}:{group}"}
    try:
        doc = json.loads(message)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for k, v in _flatten(doc):
            record.setdefault(k, v)
    return {"logRecord": record}


def _flatten(doc, prefix="", depth=0):
    if depth > 20:
        return
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for k, v in items:
        key = f"{prefix}{k}"
        if isinstance(v, (dict, list)):
            yield from _flatten(v, key + ".", depth + 1)
        elif v is not None:
            yield key, insights_format.format_value(v) if not isinstance(v, str) else v


# -- saved queries -------------------------------------------------------------------------------

@operation("logs", "PutQueryDefinition")
async def put_query_definition(ctx: Context, name, queryString, queryLanguage=None,
                               queryDefinitionId=None, logGroupNames=None, clientToken=None,
                               parameters=None):
    now = ctx.server.clock.now_ms()
    qdid = queryDefinitionId or str(uuid.uuid4())

    def write(w):
        if queryDefinitionId is not None:
            hit = w.execute("SELECT 1 FROM query_definitions WHERE id = ? AND account = ?",
                            [qdid, ctx.account]).fetchone()
            if hit is None:
                raise not_found("The specified query definition does not exist.")
        n = w.execute("SELECT count(*) FROM query_definitions WHERE account = ? AND region = ?",
                      [ctx.account, ctx.region]).fetchone()[0]
        if queryDefinitionId is None and n >= 1000:
            raise ServiceError("LimitExceededException",
                               "You have reached the maximum number of saved queries (1000).")
        w.execute("INSERT OR REPLACE INTO query_definitions VALUES (?, ?, ?, ?, ?, ?, ?)",
                  [qdid, ctx.account, ctx.region, name, queryString,
                   json.dumps(logGroupNames or []), now])
    await ctx.store.write(write)
    return {"queryDefinitionId": qdid}


@operation("logs", "DescribeQueryDefinitions")
async def describe_query_definitions(ctx: Context, queryLanguage=None,
                                     queryDefinitionNamePrefix=None, maxResults=None,
                                     nextToken=None):
    rows = await ctx.store.read(lambda cur: cur.execute(
        "SELECT id, name, query_string, last_modified, group_names FROM query_definitions"
        " WHERE account = ? AND region = ? AND starts_with(name, ?) ORDER BY name, id",
        [ctx.account, ctx.region, queryDefinitionNamePrefix or ""]).fetchall())
    offset = 0
    if nextToken:
        tok = _untoken(nextToken)
        if not isinstance(tok, int) or tok < 0:
            raise invalid("The specified nextToken is invalid.")
        offset = tok
    size = maxResults or 1000
    defs = [{"queryLanguage": "CWLI", "queryDefinitionId": i, "name": n, "queryString": q,
             "lastModified": lm, "logGroupNames": json.loads(g)}
            for i, n, q, lm, g in rows[offset:offset + size]]
    out = {"queryDefinitions": defs}
    if offset + size < len(rows):
        out["nextToken"] = _token(offset + size)
    return out


@operation("logs", "DeleteQueryDefinition")
async def delete_query_definition(ctx: Context, queryDefinitionId):
    def write(w):
        hit = w.execute("SELECT 1 FROM query_definitions WHERE id = ? AND account = ?",
                        [queryDefinitionId, ctx.account]).fetchone()
        if hit is None:
            raise not_found("The specified query definition does not exist.")
        w.execute("DELETE FROM query_definitions WHERE id = ?", [queryDefinitionId])
    await ctx.store.write(write)
    return {"success": True}
