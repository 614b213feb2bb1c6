"""The application: ``make_app(config)`` builds the aiohttp app and its life cycle.

One port, like an AWS endpoint: every AWS request is ``POST``ed (or, for legacy query
clients, ``GET``) to any path and routed by its shape in :mod:`.dispatch`.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil

from aiohttp import web

from . import dispatch
from .clock import Clock
from .config import Config
from .errors import ServiceError
from .operations import load_all
from .store.db import Store
from .store.logs import EventBatch, LogGroup, LogsStore
from .store.metrics import MetricBatch, MetricsStore

log = logging.getLogger("metricstore")

#: Seconds between two Logs Insights field backfill steps (each one bounded chunk).
FIELD_STEP_PAUSE = 0.05

from .dispatch import SERVER


class Server:
    """The server's parts, handed to operations through their Context."""

    def __init__(self, config: Config, clock: Clock | None = None):
        self.config = config
        self.clock = clock or Clock()
        self.store: Store | None = None
        self.metrics: MetricsStore | None = None
        self._tasks: list[asyncio.Task] = []
        self.ingest = None
        # Called inside the PutLogEvents transaction with the accepted events, so that
        # metrics derived from logs (metric filters, EMF) commit together with them:
        # hook(w, account, region, group, stream_id, batch, first_seq, now_ms)
        self.log_hooks: list = []
        # Logs Insights: discovered field name -> (SQL over the events relation, params) or
        # None for JSON extraction at query time (query/insights_compile.Source.field_sql)
        # (a materialized field's column, see LogsStore and log_field_sql below)
        self.log_field_sql = self._log_field_sql
        self._field_wake = asyncio.Event()   # a query wants a field column: wake maintenance
        self.insights = None
        self.background: set = set()      # fire-and-forget tasks (queries), kept referenced

    def open(self) -> None:
        if self.config.ingest_workers > 0:
            from .ingest import IngestPool
            self.ingest = IngestPool(self.config.ingest_workers)
            self.ingest.warm()
        c = self.config
        self.store = Store(c.db_path, max_queued_writes=c.max_queued_writes,
                           max_queued_write_bytes=c.max_queued_write_bytes,
                           max_concurrent_queries=c.max_concurrent_queries,
                           max_queued_queries=c.max_queued_queries,
                           query_timeout=c.query_timeout, memory_limit=c.memory_limit)
        self.metrics = MetricsStore(self.store)
        self.logs = LogsStore(self.store, self._max_log_fields())
        from .operations.insights import QueryRunner
        self.insights = QueryRunner(self.store)
        from .operations.logs_metrics import LogMetrics
        self.log_hooks.append(LogMetrics(self))     # metric filters and EMF → metrics
        from alarms.scheduler import AlarmService
        self.alarms = AlarmService(self)

    @staticmethod
    def _max_log_fields() -> int:
        """Cap on Logs Insights field columns (METRICSTORE_LOG_FIELD_COLUMNS, default 500; 0:
        no new columns, the ones a store has are still used).  A column is made only for a
        field some query has read (LogsStore.field_sql / materialize_step)."""
        try:
            return max(0, int(os.environ.get("METRICSTORE_LOG_FIELD_COLUMNS", "500")))
        except ValueError:
            return 500

    def _log_field_sql(self, name: str):
        """A discovered field's materialized column (where filled), or None; a field without
        one is recorded as wanted, and the maintenance task woken to add it."""
        logs = getattr(self, "logs", None)
        if logs is None:
            return None
        out = logs.field_sql(name)
        if out is None and logs.wanted:
            self._field_wake.set()
        return out

    def close(self) -> None:
        if self.insights is not None:
            self.insights.close()
            self.insights = None
        if self.ingest is not None:
            self.ingest.close()
            self.ingest = None
        if self.store is not None:
            self.store.close()
            self.store = None

    async def put_metrics(self, account: str, region: str, batch: MetricBatch) -> int:
        now_ms = self.clock.now_ms()
        return await self.store.write(
            lambda w: self.metrics.insert(w, account, region, batch, now_ms))

    async def put_log_events(self, account: str, region: str, group: LogGroup, stream_id: int,
                             batch: EventBatch) -> int:
        now_ms = self.clock.now_ms()

        def write(w):
            first = self.logs.append(w, group.id, stream_id, batch, now_ms)
            for hook in self.log_hooks:
                hook(w, account, region, group, stream_id, batch, first, now_ms)
            return first
        return await self.store.write(write)

    async def maintenance(self) -> None:
        """Compaction (hot → clustered), AWS's roll-up tiers and log retention every
        compact_interval, off the event loop; in between, while Logs Insights field columns
        are wanted or being backfilled, one bounded step (LogsStore.materialize_step) every
        FIELD_STEP_PAUSE seconds, so that other writes get the writer in between."""
        loop = asyncio.get_running_loop()
        due = loop.time() + self.config.compact_interval
        while True:
            delay = max(0.0, due - loop.time())
            if self.logs.field_work():
                delay = min(delay, FIELD_STEP_PAUSE)
            try:
                await asyncio.wait_for(self._field_wake.wait(), delay)
            except asyncio.TimeoutError:
                pass
            self._field_wake.clear()
            try:
                logs = self.logs
                if logs.field_work():
                    await self.store.write(logs.materialize_step)
                if loop.time() >= due:
                    due = loop.time() + self.config.compact_interval
                    await self.store.write(lambda w: self.metrics.rollup(w, self.clock.now_ms()))
                    await self.store.write(lambda w: self.logs.expire(w, self.clock.now_ms()))
            except Exception:  # pragma: no cover - logged, retried next round
                log.exception("maintenance failed")
                await asyncio.sleep(1.0)

    async def reset(self) -> None:
        """Wipe all state (only with --enable-reset)."""
        def wipe(w):
            tables = [r[0] for r in w.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
            for t in tables:
                w.con.execute(f'DELETE FROM "{t}"')
            self.metrics = MetricsStore(self.store)
            self.logs = LogsStore(self.store, self._max_log_fields())
        await self.store.write(wipe)
        self.alarms.reload()


async def health(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    ok = server.store is not None
    return web.json_response({"status": "ok" if ok else "starting", "service": "metricstore"},
                             status=200 if ok else 503)


async def require_admin(request: web.Request) -> web.Response | None:
    """With auth on, administrative endpoints need a request signed by an admin key
    (``metricstore_admin = true``); the refusal, or None when allowed."""
    server = request.app[SERVER]
    keys = server.config.keys
    if keys is None:
        return None
    from . import auth
    from .codecs import RequestInfo
    body = await request.read()
    req = RequestInfo(request.method, request.path, request.headers, body, dict(request.query),
                      raw_body=body, raw_path=request.raw_path,
                      raw_headers=request.headers)
    try:
        key, _ = auth.verify(req, keys, server.clock.now())
    except ServiceError as e:
        return web.json_response({"__type": e.code, "message": e.message}, status=e.status)
    if not key.admin:
        return web.json_response({"__type": "AccessDeniedException", "message":
                                  f"{key.access_key} is not an admin key "
                                  f"(metricstore_admin = true)."}, status=403)
    return None


async def reset(request: web.Request) -> web.Response:
    server = request.app[SERVER]
    if not server.config.enable_reset:
        raise web.HTTPNotFound()
    refused = await require_admin(request)
    if refused is not None:
        return refused
    await server.reset()
    return web.json_response({"status": "reset"})


async def move_clock(request: web.Request) -> web.Response:
    """Tests move time instead of sleeping: ``{"advance": seconds}`` (only with
    --enable-reset)."""
    server = request.app[SERVER]
    if not server.config.enable_reset:
        raise web.HTTPNotFound()
    refused = await require_admin(request)
    if refused is not None:
        return refused
    body = await request.json()
    server.clock.offset += float(body.get("advance", 0))
    return web.json_response({"now": server.clock.now()})


def make_app(config: Config, clock: Clock | None = None) -> web.Application:
    load_all()
    if config.keys is None and config.credentials:
        config.load_keys()
    # auto_decompress off: SigV4 signs the body as sent (compressed); dispatch decompresses
    # it itself, bounded (codecs.decompress).  dispatch reads API bodies itself, bounded per
    # operation; client_max_size bounds every other request.read() (admin endpoints)
    app = web.Application(client_max_size=dispatch.MAX_WIRE_BODY,
                          handler_args={"auto_decompress": False})
    server = Server(config, clock)
    app[SERVER] = server

    async def lifecycle(app):
        server.open()
        task = asyncio.create_task(server.maintenance())
        await server.alarms.start()
        yield
        await server.alarms.stop()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        server.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/health", health)
    app.router.add_post("/_metricstore/reset", reset)
    app.router.add_post("/_metricstore/clock", move_clock)
    from .sns_links import setup_routes as sns_routes
    sns_routes(app)
    app.router.add_route("*", "/{tail:.*}", dispatch.handle)
    return app
