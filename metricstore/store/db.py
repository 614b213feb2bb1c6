"""The DuckDB store: one write path with group commit, and read cursors off the event loop.

Writers hand a function ``fn(con) -> result`` to :meth:`Store.write`.  A single writer thread
takes every function waiting, runs them all in one transaction, commits, and only then
resolves the callers' futures, so an acknowledged write is a committed write (DuckDB syncs
its WAL on commit).  If one function of a batch fails, the batch is rolled back and each
function is re-run in a transaction of its own, so one bad request never loses another's
data.  Reads run in a small thread pool, each thread on its own cursor.

Back-pressure: the writes waiting for the writer (queued or in the running batch) are
bounded by count and by the request bytes they hold.  A write made while an API request is
being handled (dispatch sets :data:`ADMISSION`) is refused with :class:`WriteQueueFull` when
the bound is reached; background writes (maintenance, alarm ticks, deliveries) always queue.
Metric queries (:meth:`Store.query`) run on their own threads, at most N at once with a
bounded wait, and are interrupted (``interrupt()`` on their cursor) at their deadline.

This module is the only one (with the SQL builders beside it) that imports duckdb.
"""
from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import logging
import os
import queue
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Callable

import duckdb
import numpy as np

log = logging.getLogger("metricstore.store")

# duckdb tries `import pandas` for every Python value it binds; without pandas each failed
# import walks sys.path again (~0.1 ms a value, measured in bench/RESULTS.md). Cache the miss.
if importlib.util.find_spec("pandas") is None and "pandas" not in sys.modules:
    import pyarrow
    pyarrow.array(np.zeros(0))   # let pyarrow settle its own pandas probe first
    sys.modules["pandas"] = None

_STOP = object()


class WriteQueueFull(Exception):
    """The write queue is at its bound: the request is refused (AWS: throttled)."""


class QueryBusy(Exception):
    """Every query slot is taken and the wait line is full (AWS: throttled)."""


class QueryTimeout(Exception):
    """A query ran (or waited) past its deadline and was interrupted."""

    def __init__(self, seconds: float):
        super().__init__(f"query exceeded {seconds:g} s")
        self.seconds = seconds


class Admission:
    """Marks writes as made on behalf of an API request (so they may be refused) and says
    how many bytes that request holds in memory while its write waits.  ``active`` is
    cleared when the request ends, so background work it spawned is never refused."""

    __slots__ = ("weight", "active")

    def __init__(self, weight: int = 0):
        self.weight = weight
        self.active = True


ADMISSION: contextvars.ContextVar[Admission | None] = contextvars.ContextVar(
    "metricstore_admission", default=None)


def quote_ident(name: str) -> str:
    """The one way an identifier reaches SQL text."""
    return '"' + name.replace('"', '""') + '"'


def int_list(ids) -> str:
    """``(1, 2, 3)`` for an IN filter over ids of the store's own making.

    Only Python/numpy integers pass (anything else raises), so no user text can reach SQL
    this way. Inlined, DuckDB pushes the filter into the scan and prunes row groups by their
    zone maps, which a bound list parameter does not allow.
    """
    vals = [int(i) for i in ids if isinstance(i, (int, np.integer)) or _not_int(i)]
    return "(" + ", ".join(map(str, vals)) + ")" if vals else "(NULL)"


def _not_int(value) -> bool:
    raise TypeError(f"int_list takes integers, not {type(value).__name__}")


class WriteContext:
    """What a write function receives: the connection, and per-batch hooks."""

    __slots__ = ("con", "_rollback_hooks", "_commit_hooks")

    def __init__(self, con):
        self.con = con
        self._rollback_hooks: list[Callable[[], None]] = []
        self._commit_hooks: list[Callable[[], None]] = []

    def on_commit(self, fn: Callable[[], None]) -> None:
        """Publish in-memory state (caches readers use) once the transaction committed."""
        self._commit_hooks.append(fn)

    def on_rollback(self, fn: Callable[[], None]) -> None:
        """Undo in-memory state (caches) if the transaction does not commit."""
        self._rollback_hooks.append(fn)

    def execute(self, sql: str, params=None):
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)


class _QueryJob:
    """One running metric query: its cursor while it runs, so that a deadline can interrupt
    it (and only it: the thread's cursor serves the next query as soon as this one ends)."""

    __slots__ = ("cursor", "cancelled", "lock")

    def __init__(self):
        self.cursor = None
        self.cancelled = False
        self.lock = threading.Lock()

    def attach(self, cur) -> None:
        with self.lock:
            self.cursor = cur

    def detach(self) -> None:
        with self.lock:
            self.cursor = None

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            if self.cursor is not None:
                try:
                    self.cursor.interrupt()
                except duckdb.Error:  # pragma: no cover - connection already closed
                    pass


class _GuardedCursor:
    """A cursor whose ``execute`` refuses to start once its query was cancelled: an
    ``interrupt()`` that lands between two statements would otherwise be lost."""

    __slots__ = ("_cur", "_job")

    def __init__(self, cur, job: _QueryJob):
        self._cur = cur
        self._job = job

    def execute(self, *args, **kw):
        if self._job.cancelled:
            raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")
        return self._cur.execute(*args, **kw)

    def __getattr__(self, name):
        return getattr(self._cur, name)


class Store:
    def __init__(self, path: str, read_threads: int = 2, *, max_queued_writes: int = 0,
                 max_queued_write_bytes: int = 0, max_concurrent_queries: int = 4,
                 max_queued_queries: int = 64, query_timeout: float = 30.0,
                 memory_limit: str | None = None):
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # memory_limit bounds DuckDB's buffer pool (default: 80 % of RAM): past it, cached
        # blocks of the file are evicted and large operators spill to disk
        try:
            self.con = duckdb.connect(path, config={"memory_limit": memory_limit}
                                      if memory_limit else {})
        except duckdb.ParserException as e:     # a malformed limit, e.g. "lots"
            raise ValueError(f"memory limit {memory_limit!r}: {e}") from None
        self.con.execute("SET enable_progress_bar = false")
        self._apply_schema()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # write back-pressure (0 = unbounded): writes queued or in the running batch
        self.max_queued_writes = max_queued_writes
        self.max_queued_write_bytes = max_queued_write_bytes
        self._pending_lock = threading.Lock()
        self.pending_writes = 0
        self.pending_write_bytes = 0
        # metric queries: their own threads, a slot count, a bounded wait line, a deadline
        self.max_concurrent_queries = max(1, max_concurrent_queries)
        self.max_queued_queries = max(0, max_queued_queries)
        self.query_timeout = query_timeout
        self._query_slots: asyncio.Semaphore | None = None   # made on the serving loop
        self.queries_waiting = 0
        self._queries = ThreadPoolExecutor(max_workers=self.max_concurrent_queries,
                                           thread_name_prefix="ms-query")
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="ms-read")
        self._writer = threading.Thread(target=self._write_loop, name="ms-writer", daemon=True)
        self._closed = False
        self._init_hooks: list[Callable] = []
        self._writer.start()

    # -- schema -----------------------------------------------------------------------
    def _apply_schema(self) -> None:
        self.extend_schema(resources.files("metricstore.store").joinpath("schema.sql").read_text())

    def extend_schema(self, ddl: str) -> None:
        """Run a DDL script (statements separated by ';', '--' comment lines allowed)."""
        text = "\n".join(ln for ln in ddl.splitlines() if not ln.strip().startswith("--"))
        for stmt in text.split(";"):
            if stmt.strip():
                self.con.execute(stmt)

    # -- writes -----------------------------------------------------------------------
    def admit(self, weight: int = 0) -> None:
        """Raise :class:`WriteQueueFull` if a request's write of ``weight`` bytes would pass
        the bound (an empty queue always admits, however big the write)."""
        n, b = self.pending_writes, self.pending_write_bytes
        if n and ((self.max_queued_writes and n >= self.max_queued_writes)
                  or (self.max_queued_write_bytes and b + weight > self.max_queued_write_bytes)):
            raise WriteQueueFull(f"{n} writes ({b} bytes) are waiting")

    def _enqueue(self, item, weight: int) -> None:
        with self._pending_lock:
            self.pending_writes += 1
            self.pending_write_bytes += weight
        self._queue.put(item)

    def _done(self, weight: int) -> None:
        with self._pending_lock:
            self.pending_writes -= 1
            self.pending_write_bytes -= weight

    async def write(self, fn: Callable[[WriteContext], Any]) -> Any:
        ticket = ADMISSION.get()
        weight = 0
        if ticket is not None and ticket.active:
            weight = ticket.weight
            self.admit(weight)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._enqueue((fn, fut, loop, weight), weight)
        return await fut

    def write_sync(self, fn: Callable[[WriteContext], Any]) -> Any:
        """Blocking write from a non-event-loop thread (scheduled jobs, tests)."""
        done = threading.Event()
        box: dict = {}

        class _Fut:
            def done(self_inner):
                return False

            def set_result(self_inner, r):
                box["r"] = r
                done.set()

            def set_exception(self_inner, e):
                box["e"] = e
                done.set()

        self._enqueue((fn, _Fut(), None, 0), 0)
        done.wait()
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            stop = False
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                self._run_batch(batch)
            finally:
                for item in batch:
                    self._done(item[3])
            if stop:
                return

    def _run_batch(self, batch) -> None:
        ctx = WriteContext(self.con)
        results = []
        try:
            self.con.execute("BEGIN TRANSACTION")
            for fn, _, _, _ in batch:
                results.append(fn(ctx))
            self.con.execute("COMMIT")
        except Exception:
            self._rollback(ctx)
            for fn, fut, loop, _ in batch:
                self._run_single(fn, fut, loop)
            return
        _committed(ctx)
        for (fn, fut, loop, _), r in zip(batch, results):
            _resolve(fut, loop, r, None)

    def _run_single(self, fn, fut, loop) -> None:
        ctx = WriteContext(self.con)
        try:
            self.con.execute("BEGIN TRANSACTION")
            r = fn(ctx)
            self.con.execute("COMMIT")
        except Exception as e:  # noqa: BLE001 - handed to the caller
            self._rollback(ctx)
            _resolve(fut, loop, None, e)
            return
        _committed(ctx)
        _resolve(fut, loop, r, None)

    def _rollback(self, ctx: WriteContext) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        for hook in reversed(ctx._rollback_hooks):
            try:
                hook()
            except Exception:  # pragma: no cover
                log.exception("rollback hook failed")

    # -- reads ------------------------------------------------------------------------
    def cursor(self):
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self.con.cursor()
            cur.execute("SET enable_progress_bar = false")
        return cur

    async def read(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(cursor)`` on a read thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self.cursor()))

    def read_sync(self, fn: Callable[[Any], Any]) -> Any:
        return fn(self.cursor())

    async def query(self, fn: Callable[[Any], Any]) -> Any:
        """Run a metric query ``fn(cursor)`` under the query limits: at most
        ``max_concurrent_queries`` at once, at most ``max_queued_queries`` waiting for a slot
        (else :class:`QueryBusy`), and one deadline of ``query_timeout`` seconds for the wait
        and the run together, after which the query's DuckDB statement is interrupted and
        :class:`QueryTimeout` raised."""
        loop = asyncio.get_running_loop()
        if self._query_slots is None:
            self._query_slots = asyncio.Semaphore(self.max_concurrent_queries)
        slots = self._query_slots
        deadline = loop.time() + self.query_timeout
        if slots.locked():
            if self.queries_waiting >= self.max_queued_queries:
                raise QueryBusy(f"{self.max_concurrent_queries} queries running, "
                                f"{self.queries_waiting} waiting")
            self.queries_waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), deadline - loop.time())
            except asyncio.TimeoutError:
                raise QueryTimeout(self.query_timeout) from None
            finally:
                self.queries_waiting -= 1
        else:
            await slots.acquire()
        job = _QueryJob()
        try:
            fut = loop.run_in_executor(self._queries, self._run_query, fn, job)
        except BaseException:
            slots.release()
            raise
        # the slot frees when the thread does (not when we stop waiting): never more than N
        # DuckDB queries at once, even while an interrupted one unwinds
        fut.add_done_callback(lambda _f: slots.release())
        try:
            return await asyncio.wait_for(asyncio.shield(fut), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            self._interrupt_until_done(job, fut, loop)
            raise QueryTimeout(self.query_timeout) from None
        except asyncio.CancelledError:
            self._interrupt_until_done(job, fut, loop)
            raise

    def _run_query(self, fn, job: _QueryJob):
        cur = self.cursor()
        job.attach(cur)
        try:
            if job.cancelled:
                raise QueryTimeout(self.query_timeout)
            return fn(_GuardedCursor(cur, job))
        except duckdb.InterruptException:
            if job.cancelled:
                raise QueryTimeout(self.query_timeout) from None
            raise
        finally:
            job.detach()

    @staticmethod
    def _interrupt_until_done(job: _QueryJob, fut, loop) -> None:
        """Interrupt now, and again every 50 ms while the thread still runs (Python work
        between two statements cannot be interrupted; the next statement is refused)."""
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())   # no "never retrieved"

        def again():
            if not fut.done():
                job.cancel()
                loop.call_later(0.05, again)
        again()

    # -- life cycle -------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        self._readers.shutdown(wait=True)
        self._queries.shutdown(wait=True)
        try:
            self.con.execute("CHECKPOINT")
        except duckdb.Error:  # pragma: no cover
            log.exception("checkpoint at close failed")
        self.con.close()


def _committed(ctx: WriteContext) -> None:
    for hook in ctx._commit_hooks:
        try:
            hook()
        except Exception:  # pragma: no cover
            log.exception("commit hook failed")


def _resolve(fut, loop, result, exc) -> None:
    if loop is None:
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)
        return

    def _set():
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    loop.call_soon_threadsafe(_set)
