"""Decoding hot requests on every core.

Python runs one core per process, and decoding plus validating a 1,000-datum PutMetricData
body costs milliseconds.  So the server keeps a pool of worker processes: for an operation
with a prepare step (``operations.PREPARE``) and a large body, the worker runs the same codec
and the same prepare function the server would, and hands back compact numpy columns.  The
server process keeps HTTP and the single DuckDB writer, so "200 means committed" is
unchanged: the worker only computes, the writer still commits before the reply.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .codecs import RequestInfo
from .codecs.cbor import CBOR
from .codecs.json import JSON
from .codecs.query_xml import QUERY
from .errors import ServiceError
from .operations import PREPARE, PrepareEnv, load_all

log = logging.getLogger("metricstore.ingest")

CODECS = {c.name: c for c in (JSON, CBOR, QUERY)}
OFFLOAD_MIN_BYTES = 16 * 1024


def _watch_parent(parent: int) -> None:
    """Exit when the server process is gone (a SIGKILLed server leaves no orphans)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(0)


def _warm() -> None:
    """Worker initializer: import operations and compile the hot readers once."""
    if not getattr(_warm, "watching", False):
        _warm.watching = True
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    load_all()
    from . import services
    from .codecs.shapes import _fast_input_reader
    _fast_input_reader(services.service("cloudwatch"), "PutMetricData")
    _fast_input_reader(services.service("logs"), "PutLogEvents")


def prepare_request(codec_name: str, method: str, path: str, headers: dict, body: bytes,
                    query: dict, service: str, operation: str, env: PrepareEnv):
    """Decode, validate and prepare one request (runs in a worker process)."""
    codec = CODECS[codec_name]
    req = RequestInfo(method, path, headers, body, query)
    try:
        call = codec.decode(req)
        params = codec.read_params(call, req)
        return ("ok", PREPARE[(service, operation)](env, **params))
    except ServiceError as e:
        return ("err", e.code, e.message, e.status, e.sender, e.query_code, e.namespace)


class IngestPool:
    def __init__(self, workers: int):
        self.workers = workers
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, initializer=_warm,
                                   mp_context=multiprocessing.get_context("spawn"))

    def warm(self) -> None:
        for f in [self._pool.submit(_warm) for _ in range(self.workers)]:
            f.result()

    async def prepare(self, codec_name: str, req: RequestInfo, service: str, operation: str,
                      env: PrepareEnv):
        loop = asyncio.get_running_loop()
        headers = {k: v for k, v in req.headers.items()}
        try:
            out = await loop.run_in_executor(
                self._pool, prepare_request, codec_name, req.method, req.path, headers, req.body,
                req.query, service, operation, env)
        except BrokenProcessPool:
            log.error("ingest worker died; restarting the pool and decoding in-process")
            self._pool = self._new()
            out = prepare_request(codec_name, req.method, req.path, headers, req.body,
                                  req.query, service, operation, env)
        if out[0] == "ok":
            return out[1]
        _, code, message, status, sender, query_code, namespace = out
        raise ServiceError(code, message, status=status, sender=sender, query_code=query_code,
                           namespace=namespace)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
