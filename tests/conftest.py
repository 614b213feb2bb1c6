"""Shared fixtures: a live metricstore on an ephemeral port, and real AWS clients for it.

CloudWatch clients come in the three protocols real SDKs send: ``json`` (botocore's
default), ``query`` and ``cbor`` (forced through a botocore data-path override of the model's
``protocols`` list, the mechanism wire-protocols.md §1.5 describes; it works for the CLI via
AWS_DATA_PATH too).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CREDS = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret",
         "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
PROTOCOLS = {"json": None, "query": ["query"], "cbor": ["smithy-rpc-v2-cbor"]}

for k, v in CREDS.items():
    os.environ.setdefault(k, v)
os.environ.pop("AWS_PROFILE", None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real ``metricstore serve`` process."""

    def __init__(self, data_dir: Path, extra_args=(), env=None):
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.env = env or {}
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    #: how the server process is launched (before ``serve …``)
    launcher = ("-m", "metricstore")

    def start(self, timeout: float = 30.0) -> "LiveServer":
        env = dict(os.environ, **self.env)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, *self.launcher, "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), "--enable-reset", *self.extra_args],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become healthy")

    def stop(self, sig=signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self._log.close()
        return rc

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def reset(self) -> None:
        req = urllib.request.Request(self.url + "/_metricstore/reset", method="POST", data=b"")
        urllib.request.urlopen(req, timeout=30).read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def open_server(tmp_path):
    """``open_server(now)``: a Server opened in this process on ``tmp_path`` (no HTTP, no
    ingest workers), its clock fixed at ``now`` (epoch seconds); closed after the test."""
    from metricstore.app import Server
    from metricstore.clock import FixedClock
    from metricstore.config import Config
    opened = []

    def make(now: float):
        srv = Server(Config(data_dir=str(tmp_path), ingest_workers=0), FixedClock(now))
        srv.open()
        opened.append(srv)
        return srv
    yield make
    for srv in opened:
        srv.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = LiveServer(tmp_path_factory.mktemp("data")).start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-5000:]


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """Data-path override directories that force a CloudWatch protocol."""
    import botocore.loaders
    model = botocore.loaders.Loader().load_service_model("cloudwatch", "service-2")
    dirs = {}
    for name, protocols in PROTOCOLS.items():
        if protocols is None:
            dirs[name] = None
            continue
        d = tmp_path_factory.mktemp(f"model-{name}")
        target = d / "cloudwatch" / "2010-08-01"
        target.mkdir(parents=True)
        m = dict(model, metadata=dict(model["metadata"], protocols=protocols,
                                      protocol=protocols[0]))
        (target / "service-2.json").write_text(json.dumps(m))
        dirs[name] = d
    return dirs


def make_client(service: str, url: str, protocol: str = "json", model_dirs=None, **kw):
    import boto3
    import botocore.session
    from botocore.config import Config
    bs = botocore.session.get_session()
    if protocol != "json" and model_dirs is not None:
        bs.get_component("data_loader").search_paths.insert(0, str(model_dirs[protocol]))
    session = boto3.Session(botocore_session=bs, region_name=kw.pop("region_name", "us-east-1"))
    cfg = Config(retries={"max_attempts": 1}, read_timeout=60,
                 parameter_validation=kw.pop("validate", True))
    client = session.client(service, endpoint_url=url, config=cfg, **kw)
    if service == "cloudwatch":
        assert client.meta.service_model.resolved_protocol == {
            "json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor"}[protocol]
    return client


@pytest.fixture(params=list(PROTOCOLS))
def cw(request, server, model_dirs):
    """A boto3 CloudWatch client in each protocol."""
    client = make_client("cloudwatch", server.url, request.param, model_dirs)
    client.protocol = request.param
    return client


@pytest.fixture(params=list(PROTOCOLS))
def cw_raw(request, server, model_dirs):
    """Like ``cw`` but without client-side parameter validation (to send bad requests)."""
    client = make_client("cloudwatch", server.url, request.param, model_dirs, validate=False)
    client.protocol = request.param
    return client


@pytest.fixture
def cw_json(server):
    return make_client("cloudwatch", server.url)


def run_aws(server_url: str, *args, protocol="json", model_dirs=None, check=True, env=None):
    """Run the real ``aws`` CLI against the server; returns (rc, stdout, stderr)."""
    aws = Path(sys.executable).parent / "aws"
    cmd = [str(aws) if aws.exists() else "aws", "--endpoint-url", server_url, "--output", "json",
           *args]
    e = dict(os.environ, **(env or {}))
    if protocol != "json":
        e["AWS_DATA_PATH"] = str(model_dirs[protocol])
    p = subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p.returncode, p.stdout, p.stderr


def assert_aws_error(exc_info, code: str, status: int, message: str | None = None):
    """One contract for errors in every protocol: code, HTTP status, message."""
    err = exc_info.value.response
    assert err["Error"]["Code"] == code, err
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status, err
    if message is not None:
        assert err["Error"].get("Message") == message, err
    return err
