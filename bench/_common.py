"""Shared pieces of the benchmarks: servers under test, boto3 clients, captured request bodies.

Nothing here imports the server: the servers run as subprocesses, exactly as a user runs them
(``python -m metricstore serve`` and ``python -m moto.server``).
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CREDS = {"AWS_ACCESS_KEY_ID": "AKIDBENCH", "AWS_SECRET_ACCESS_KEY": "secret",
         "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
for _k, _v in CREDS.items():
    os.environ.setdefault(_k, _v)
os.environ.pop("AWS_PROFILE", None)

# botocore's names of the forced protocols (see tests/conftest.py)
PROTOCOLS = {"json": None, "query": ["query"], "cbor": ["smithy-rpc-v2-cbor"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine() -> str:
    cpu = ""
    try:
        for ln in open("/proc/cpuinfo"):
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    import duckdb
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} "
            f"{platform.release()}, Python {platform.python_version()}, duckdb {duckdb.__version__}")


def busy_note() -> str:
    """The 1-minute load average, and the other processes using CPU right now: the machine is
    shared, and another process at 100 % of a core halves what a 2-core benchmark can show."""
    load1 = os.getloadavg()[0]
    note = f"load average {load1:.2f}"
    if load1 > 0.5:
        note += " (BUSY: figures are lower than on an idle machine)"
    return note


def _proc_table() -> dict:
    """{pid: (ppid, cpu seconds)} of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(d)] = (int(parts[1]), (int(parts[11]) + int(parts[12])) / tick)
    return out


class OtherCPU:
    """CPU used by processes outside this benchmark's process tree while it runs (the machine
    is shared; a test suite at 100 % of a core halves what a 2-core benchmark can show).

    Samples /proc every 0.5 s, so processes that live shorter than that are missed."""

    def __init__(self, interval: float = 0.5):
        self.t0 = time.time()
        self.me = os.getpid()
        self.last = _proc_table()
        self.used = 0.0
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._loop, args=(interval,), daemon=True)
        self._th.start()

    def _mine(self, pid: int, table: dict) -> bool:
        n = 0
        while pid and n < 64:
            if pid == self.me:
                return True
            pid = table.get(pid, (0, 0))[0]
            n += 1
        return False

    def _sample(self) -> None:
        now = _proc_table()
        for pid, (_, cpu) in now.items():
            if self._mine(pid, now):
                continue
            if pid in self.last:
                self.used += cpu - self.last[pid][1]
            else:
                # started since the last sample: count all it used (pid reuse aside)
                self.used += cpu
        self.last = now

    def _loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def cores(self) -> float:
        self._stop.set()
        self._th.join()
        self._sample()
        return self.used / max(time.time() - self.t0, 1e-9)


class Proc:
    """A server subprocess with its log, and CPU accounting from /proc."""

    def __init__(self, cmd: list[str], port: int, log_path: Path, health: str | None):
        self.cmd, self.port, self.log_path, self.health = cmd, port, log_path, health
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "Proc":
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.cmd, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ))
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.cmd[:4]} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if self.health:
                    with urllib.request.urlopen(self.url + self.health, timeout=1) as r:
                        if r.status == 200:
                            return self
                else:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.cmd[:4]} did not become ready")

    def pids(self) -> list[int]:
        """The server and its descendants (e.g. metricstore's ingest worker processes)."""
        table = _proc_table()
        out = [self.proc.pid]
        for pid in table:
            p, n = pid, 0
            while p and n < 64:
                p = table.get(p, (0, 0))[0]
                if p == self.proc.pid:
                    out.append(pid)
                    break
                n += 1
        return out

    def cpu_seconds(self) -> float:
        """user+system CPU of the process tree (all threads, live children) so far."""
        table = _proc_table()
        return sum(table.get(pid, (0, 0.0))[1] for pid in self.pids())

    def rss_mib(self) -> float:
        """Resident memory of the process tree."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/status") as f:
                    for ln in f:
                        if ln.startswith("VmRSS:"):
                            total += int(ln.split()[1])
            except OSError:
                pass
        return total / 1024

    def stop(self) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        self._log.close()
        return rc


def metricstore_server(data_dir: Path, port: int | None = None, extra=()) -> Proc:
    """``python -m metricstore serve`` on ``data_dir``.  BENCH_SERVER_CMD (e.g. "python
    /path/to/patched_main.py") replaces ``python -m metricstore`` to A/B a modified build."""
    port = port or free_port()
    prefix = os.environ.get("BENCH_SERVER_CMD")
    head = prefix.split() if prefix else [sys.executable, "-m", "metricstore"]
    cmd = [*head, "serve", "--port", str(port), "--data-dir", str(data_dir),
           "--log-level", "WARNING", *extra]
    return Proc(cmd, port, data_dir.parent / f"metricstore-{port}.log", "/health")


def moto_server(workdir: Path, port: int | None = None) -> Proc:
    port = port or free_port()
    cmd = [sys.executable, "-m", "moto.server", "-p", str(port)]
    return Proc(cmd, port, workdir / f"moto-{port}.log", "/moto-api/")


def have_moto() -> bool:
    try:
        import moto.server  # noqa: F401
        import flask  # noqa: F401
        return True
    except ImportError:
        return False


def model_dirs(base: Path) -> dict:
    """Data-path override directories that force a CloudWatch protocol (as in conftest)."""
    import botocore.loaders
    model = botocore.loaders.Loader().load_service_model("cloudwatch", "service-2")
    dirs = {}
    for name, protocols in PROTOCOLS.items():
        if protocols is None:
            dirs[name] = None
            continue
        target = base / f"model-{name}" / "cloudwatch" / "2010-08-01"
        target.mkdir(parents=True, exist_ok=True)
        m = dict(model, metadata=dict(model["metadata"], protocols=protocols,
                                      protocol=protocols[0]))
        (target / "service-2.json").write_text(json.dumps(m))
        dirs[name] = base / f"model-{name}"
    return dirs


def make_client(url: str, protocol: str = "json", dirs: dict | None = None, timeout: int = 300):
    import boto3
    import botocore.session
    from botocore.config import Config
    bs = botocore.session.get_session()
    if protocol != "json":
        bs.get_component("data_loader").search_paths.insert(0, str(dirs[protocol]))
    session = boto3.Session(botocore_session=bs, region_name="us-east-1")
    cfg = Config(retries={"max_attempts": 1}, read_timeout=timeout, connect_timeout=10,
                 max_pool_connections=4)
    client = session.client("cloudwatch", endpoint_url=url, config=cfg)
    want = {"json": "json", "query": "query", "cbor": "smithy-rpc-v2-cbor"}[protocol]
    assert client.meta.service_model.resolved_protocol == want, client.meta.service_model.resolved_protocol
    return client


class _Captured(Exception):
    def __init__(self, request):
        self.request = request


def _capture(request, **kw):
    raise _Captured(request)


class Recorder:
    """A boto3 client that, instead of sending, hands back the exact HTTP request botocore built
    (serialized for the client's protocol, gzipped when > 10 KiB, SigV4-signed)."""

    def __init__(self, protocol: str, dirs: dict | None, url: str = "http://127.0.0.1:9"):
        self.protocol = protocol
        self.client = make_client(url, protocol, dirs)
        self.client.meta.events.register_first("before-send.*.*", _capture)

    def request(self, op: str, **params) -> dict:
        try:
            getattr(self.client, op)(**params)
        except _Captured as c:
            r = c.request
            from urllib.parse import urlsplit
            u = urlsplit(r.url)
            body = r.body
            if hasattr(body, "read"):
                body = body.read()
            if isinstance(body, str):
                body = body.encode()
            headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in r.headers.items()}
            return {"method": r.method, "path": u.path + (f"?{u.query}" if u.query else ""),
                    "headers": headers, "body": body or b""}
        raise AssertionError("request was sent")


def send(conn: http.client.HTTPConnection, req: dict) -> tuple[int, bytes]:
    """One request over a keep-alive connection; returns (status, body)."""
    conn.request(req["method"], req["path"], body=req["body"], headers=req["headers"])
    resp = conn.getresponse()
    return resp.status, resp.read()


def tmpdir(prefix: str) -> Path:
    base = os.environ.get("BENCH_TMP") or None
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"
