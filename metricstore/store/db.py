"""The DuckDB store: one write path with group commit, and read cursors off the event loop.

Writers hand a function ``fn(con) -> result`` to :meth:`Store.write`.  A single writer thread
takes every function waiting, runs them all in one transaction, commits, and only then
resolves the callers' futures, so an acknowledged write is a committed write (DuckDB syncs
its WAL on commit).  If one function of a batch fails, the batch is rolled back and each
function is re-run in a transaction of its own, so one bad request never loses another's
data.  Reads run in a small thread pool, each thread on its own cursor.

This module is the only one (with the SQL builders beside it) that imports duckdb.
"""
from __future__ import annotations

import asyncio
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


class Store:
    def __init__(self, path: str, read_threads: int = 2):
        self.path = path
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.con = duckdb.connect(path)
        self.con.execute("SET enable_progress_bar = false")
        self._apply_schema()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
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
    async def write(self, fn: Callable[[WriteContext], Any]) -> Any:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((fn, fut, loop))
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

        self._queue.put((fn, _Fut(), None))
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
            self._run_batch(batch)
            if stop:
                return

    def _run_batch(self, batch) -> None:
        ctx = WriteContext(self.con)
        results = []
        try:
            self.con.execute("BEGIN TRANSACTION")
            for fn, _, _ in batch:
                results.append(fn(ctx))
            self.con.execute("COMMIT")
        except Exception:
            self._rollback(ctx)
            if len(batch) == 1:
                fn, fut, loop = batch[0]
                self._run_single(fn, fut, loop)
                return
            for fn, fut, loop in batch:
                self._run_single(fn, fut, loop)
            return
        _committed(ctx)
        for (fn, fut, loop), r in zip(batch, results):
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

    # -- life cycle -------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._writer.join()
        self._readers.shutdown(wait=True)
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
