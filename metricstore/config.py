"""Server configuration: command-line flags, each also settable by METRICSTORE_* variables."""
from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, field


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 4566
    data_dir: str = "./data"
    account_id: str = "000000000000"
    region: str = "us-east-1"
    alarm_interval: int = 60
    enable_reset: bool = False
    allow_aws_namespaces: bool = False
    compact_interval: float = 30.0
    ingest_workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    log_level: str = "INFO"
    public_url: str | None = None       # how webhooks reach us (SNS SubscribeURL, SigningCertURL)
    credentials: str | None = None      # AWS shared-credentials file: SigV4 auth on
    webhook_allow: str = ""             # webhook destinations (alarms/webhooks.py): allowed ...
    webhook_deny: str | None = None     # ... and refused (None: link-local, metadata, 0.0.0.0)
    # back-pressure (README "Security, limits and promises")
    max_queued_writes: int = 4096            # writes waiting for the writer, by count (0: no bound)
    max_queued_write_bytes: int = 256 * 1024 * 1024   # ... and by request bytes held (0: no bound)
    max_concurrent_queries: int = 4          # GetMetricData/GetMetricStatistics running at once
    max_queued_queries: int = 64             # ... waiting for a slot; beyond: Throttling
    query_timeout: float = 30.0              # seconds (wait + run) before a query is interrupted
    memory_limit: str | None = None          # DuckDB buffer pool bound, e.g. "1GB" (None: 80 % RAM)
    keys: dict | None = field(default=None, repr=False)   # loaded from ``credentials``

    def load_keys(self) -> None:
        """Read the credentials file (auth on) — raises on a malformed file."""
        if self.credentials:
            from .auth import load_credentials
            self.keys = load_credentials(self.credentials)
        else:
            self.keys = None

    @property
    def public_base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def db_path(self) -> str:
        if self.data_dir == ":memory:":
            return ":memory:"
        return os.path.join(self.data_dir, "metricstore.duckdb")


def _env_bool(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    if v is None:
        return default
    return v.strip().lower() in ("1", "true", "yes", "on")


def _memory_size(text: str) -> str:
    """A DuckDB memory size such as ``512MB`` or ``2GiB``."""
    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(B|[KMGT]i?B)\s*", text, re.IGNORECASE):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 512MB or 2GiB")
    return text.strip()


def parser() -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog="metricstore")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the server")
    s.add_argument("--host", default=env("METRICSTORE_HOST", Config.host))
    s.add_argument("--port", type=int, default=int(env("METRICSTORE_PORT", Config.port)))
    s.add_argument("--data-dir", default=env("METRICSTORE_DATA_DIR", Config.data_dir))
    s.add_argument("--account-id", default=env("METRICSTORE_ACCOUNT_ID", Config.account_id))
    s.add_argument("--region", default=env("METRICSTORE_REGION", Config.region))
    s.add_argument("--alarm-interval", type=int,
                   default=int(env("METRICSTORE_ALARM_INTERVAL", Config.alarm_interval)))
    s.add_argument("--enable-reset", action="store_true",
                   default=_env_bool("METRICSTORE_ENABLE_RESET", False))
    s.add_argument("--allow-aws-namespaces", action="store_true",
                   default=_env_bool("METRICSTORE_ALLOW_AWS_NAMESPACES", False),
                   help="accept PutMetricData into AWS/* namespaces (AWS itself refuses them)")
    s.add_argument("--compact-interval", type=float,
                   default=float(env("METRICSTORE_COMPACT_INTERVAL", Config.compact_interval)),
                   help="seconds between store compaction/roll-up rounds")
    s.add_argument("--ingest-workers", type=int,
                   default=int(env("METRICSTORE_INGEST_WORKERS", os.cpu_count() or 1)),
                   help="processes that decode large PutMetricData bodies (0: in the server)")
    s.add_argument("--log-level", default=env("METRICSTORE_LOG_LEVEL", Config.log_level))
    s.add_argument("--public-url", default=env("METRICSTORE_PUBLIC_URL"),
                   help="base URL in SNS messages (SubscribeURL, SigningCertURL); default "
                        "http://HOST:PORT")
    s.add_argument("--credentials", default=env("METRICSTORE_CREDENTIALS") or None,
                   help="AWS shared-credentials file ([profile] sections with aws_access_key_id,"
                        " aws_secret_access_key, aws_account_id, optional metricstore_admin = "
                        "true): verify SigV4 signatures; the account comes from the key")
    s.add_argument("--webhook-allow", default=env("METRICSTORE_WEBHOOK_ALLOW", ""),
                   help="SNS webhook destinations allowed (CIDRs, addresses, host names, "
                        ".domains; comma-separated); when set, only these")
    s.add_argument("--webhook-deny", default=env("METRICSTORE_WEBHOOK_DENY"),
                   help="SNS webhook destinations refused (default: 169.254.0.0/16, fe80::/10, "
                        "fd00:ec2::254, 0.0.0.0/8, ::; '' refuses nothing)")
    s.add_argument("--max-queued-writes", type=int,
                   default=int(env("METRICSTORE_MAX_QUEUED_WRITES", Config.max_queued_writes)),
                   help="writes waiting for the writer before requests are throttled (0: no "
                        "bound)")
    s.add_argument("--max-queued-write-bytes", type=int,
                   default=int(env("METRICSTORE_MAX_QUEUED_WRITE_BYTES",
                                   Config.max_queued_write_bytes)),
                   help="request bytes held by waiting writes before requests are throttled "
                        "(0: no bound)")
    s.add_argument("--max-concurrent-queries", type=int,
                   default=int(env("METRICSTORE_MAX_CONCURRENT_QUERIES",
                                   Config.max_concurrent_queries)),
                   help="GetMetricData/GetMetricStatistics queries running at once")
    s.add_argument("--max-queued-queries", type=int,
                   default=int(env("METRICSTORE_MAX_QUEUED_QUERIES", Config.max_queued_queries)),
                   help="metric queries waiting for a slot before requests are throttled")
    s.add_argument("--query-timeout", type=float,
                   default=float(env("METRICSTORE_QUERY_TIMEOUT", Config.query_timeout)),
                   help="seconds a metric query may wait and run before it is interrupted")
    s.add_argument("--memory-limit", type=_memory_size, default=env("METRICSTORE_MEMORY_LIMIT"),
                   help="DuckDB memory limit, e.g. 1GB (default: DuckDB's, 80%% of RAM): "
                        "cached data blocks are evicted past it, large queries spill to disk")
    return p


def from_args(argv=None) -> tuple[str, Config]:
    a = parser().parse_args(argv)
    cfg = Config(host=a.host, port=a.port, data_dir=a.data_dir, account_id=a.account_id,
                 region=a.region, alarm_interval=a.alarm_interval, enable_reset=a.enable_reset,
                 allow_aws_namespaces=a.allow_aws_namespaces, log_level=a.log_level,
                 compact_interval=a.compact_interval, ingest_workers=a.ingest_workers,
                 public_url=a.public_url, credentials=a.credentials,
                 webhook_allow=a.webhook_allow, webhook_deny=a.webhook_deny,
                 max_queued_writes=a.max_queued_writes,
                 max_queued_write_bytes=a.max_queued_write_bytes,
                 max_concurrent_queries=a.max_concurrent_queries,
                 max_queued_queries=a.max_queued_queries, query_timeout=a.query_timeout,
                 memory_limit=a.memory_limit)
    return a.command, cfg
