"""Operations: one plain async function per AWS action, ``fn(ctx, **params) -> dict``.

They receive validated Python values (see ``codecs/shapes.py``) and a :class:`Context`,
raise :class:`~metricstore.errors.ServiceError`, and know nothing about the wire.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

OPERATIONS: dict[tuple[str, str], Callable[..., Awaitable[dict | None]]] = {}

# Pure, CPU-heavy first halves of hot operations (validation and conversion to columns).
# ``prepare(env, **params) -> picklable`` may run in a worker process; the operation then
# receives the result as ``prepared=``.  See metricstore/ingest.py.
PREPARE: dict[tuple[str, str], Callable[..., Any]] = {}


@dataclass(frozen=True)
class PrepareEnv:
    """What a prepare step may know of the server (it runs in another process)."""

    now: float
    allow_aws_namespaces: bool = False


def prepare_step(service: str, name: str):
    def register(fn):
        PREPARE[(service, name)] = fn
        return fn
    return register


def operation(service: str, name: str):
    def register(fn):
        OPERATIONS[(service, name)] = fn
        return fn
    return register


@dataclass
class Context:
    """Per-request context: who is calling, and the server's parts."""

    account: str
    region: str
    server: Any          # metricstore.app.Server: store, metrics, clock, config

    @property
    def store(self):
        return self.server.store

    @property
    def metrics(self):
        return self.server.metrics

    def now(self) -> float:
        return self.server.clock.now()

    def prepare_env(self) -> PrepareEnv:
        return PrepareEnv(self.now(), self.server.config.allow_aws_namespaces)

    def arn(self, service: str, resource: str) -> str:
        partition = "aws-cn" if self.region.startswith("cn-") else (
            "aws-us-gov" if self.region.startswith("us-gov-") else "aws")
        return f"arn:{partition}:{service}:{self.region}:{self.account}:{resource}"


def load_all() -> None:
    """Import every operations module so that its functions register."""
    from . import dashboards, insights, logs, metrics, tags  # noqa: F401
    from . import alarms, sns  # noqa: F401
    from . import logs_metrics  # noqa: F401
