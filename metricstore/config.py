"""Server configuration: command-line flags, each also settable by METRICSTORE_* variables."""
from __future__ import annotations

import argparse
import os
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
    return p


def from_args(argv=None) -> tuple[str, Config]:
    a = parser().parse_args(argv)
    cfg = Config(host=a.host, port=a.port, data_dir=a.data_dir, account_id=a.account_id,
                 region=a.region, alarm_interval=a.alarm_interval, enable_reset=a.enable_reset,
                 allow_aws_namespaces=a.allow_aws_namespaces, log_level=a.log_level,
                 compact_interval=a.compact_interval, ingest_workers=a.ingest_workers,
                 public_url=a.public_url, credentials=a.credentials)
    return a.command, cfg
