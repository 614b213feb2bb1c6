"""The seed's Node.js example with the real ``@aws-sdk/client-cloudwatch`` from npm.

seed-commands.md: a custom metric with dimensions through AWS SDK v3 (OrdersProcessed 150
Count, Environment=production, Service=api; also ResponseTime 245 Milliseconds).  The script
below sends exactly that PutMetricData to ``endpoint: server.url`` with static credentials,
reads it back with GetMetricStatistics through the JS SDK, and the Python side checks the
data with boto3.  The JS SDK is also driven in the CBOR and query protocols, which it
exposes as ``protocol`` config (wire-protocols.md §1.5).

The npm package is installed once into a cache folder outside the repository
(``$METRICSTORE_NODE_CACHE`` or ``~/.cache/metricstore-node``); the tests skip, with the
reason, where node/npm are missing or the registry cannot be reached in time.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import CREDS, make_client

UTC = dt.timezone.utc
NODE_CACHE = Path(os.environ.get("METRICSTORE_NODE_CACHE")
                  or Path.home() / ".cache" / "metricstore-node")
SDK_SPEC = os.environ.get("METRICSTORE_NODE_SDK", "@aws-sdk/client-cloudwatch")
NPM_TIMEOUT = 300

SCRIPT = r"""
// The seed-commands.md Node.js example, pointed at metricstore.
const { CloudWatchClient, PutMetricDataCommand, GetMetricStatisticsCommand,
        GetDashboardCommand } = require('@aws-sdk/client-cloudwatch');

function protocolConfig(protocol) {
  if (protocol === 'json') return {};          // the SDK's default (AwsJson1_0Protocol)
  const protocols = require('@aws-sdk/core/protocols');
  const cls = { cbor: protocols.AwsSmithyRpcV2CborProtocol, query: protocols.AwsQueryProtocol }[protocol];
  if (!cls) return null;
  return { protocol: cls };
}

async function run(protocol, Namespace) {
  const extra = protocolConfig(protocol);
  if (extra === null) return { unsupported: `no ${protocol} protocol in @aws-sdk/core/protocols` };
  const client = new CloudWatchClient({
    region: 'us-east-1',
    endpoint: process.env.MS_ENDPOINT,
    credentials: { accessKeyId: process.env.MS_AKID, secretAccessKey: process.env.MS_SECRET },
    maxAttempts: 1,
    ...extra,
  });
  // record what went on the wire, to prove which protocol was used
  const wire = [];
  client.middlewareStack.add((next) => async (args) => {
    const h = args.request.headers;
    wire.push({ path: args.request.path, contentType: h['content-type'], target: h['x-amz-target'] || null,
                smithyProtocol: h['smithy-protocol'] || null });
    return next(args);
  }, { step: 'finalizeRequest', name: 'metricstoreWireRecorder' });

  const now = new Date();
  const Dimensions = [{ Name: 'Environment', Value: 'production' }, { Name: 'Service', Value: 'api' }];
  await client.send(new PutMetricDataCommand({
    Namespace,
    MetricData: [{ MetricName: 'OrdersProcessed', Value: 150, Unit: 'Count', Timestamp: new Date(),
                   Dimensions: [{ Name: 'Environment', Value: 'production' }, { Name: 'Service', Value: 'api' }] }],
  }));
  // also: ResponseTime 245 Milliseconds
  await client.send(new PutMetricDataCommand({
    Namespace,
    MetricData: [{ MetricName: 'ResponseTime', Value: 245, Unit: 'Milliseconds', Timestamp: new Date(),
                   Dimensions }],
  }));

  const stats = await client.send(new GetMetricStatisticsCommand({
    Namespace, MetricName: 'OrdersProcessed', Dimensions,
    StartTime: new Date(now.getTime() - 10 * 60 * 1000), EndTime: new Date(now.getTime() + 2 * 60 * 1000),
    Period: 60, Statistics: ['Sum', 'SampleCount', 'Maximum'],
  }));

  let error = null;
  try {
    await client.send(new GetDashboardCommand({ DashboardName: 'does-not-exist-js' }));
  } catch (e) {
    error = { name: e.name, code: e.Code || null, type: e.Type || null, fault: e.$fault,
              status: e.$metadata && e.$metadata.httpStatusCode, message: e.message };
  }
  return {
    now: now.getTime() / 1000,
    stats: { Label: stats.Label, status: stats.$metadata.httpStatusCode,
             Datapoints: (stats.Datapoints || []).map((d) => ({ ...d, Timestamp: d.Timestamp.getTime() / 1000 })) },
    error, wire,
  };
}

async function main() {
  const out = {};
  for (const [protocol, namespace] of JSON.parse(process.env.MS_RUNS)) {
    try {
      out[protocol] = await run(protocol, namespace);
    } catch (e) {
      out[protocol] = { failed: String(e && e.stack || e), metadata: e && e.$metadata || null };
    }
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
"""


@pytest.fixture(scope="session")
def node_modules():
    """``npm install @aws-sdk/client-cloudwatch`` once into the cache folder."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm are not installed")
    marker = NODE_CACHE / "node_modules" / "@aws-sdk" / "client-cloudwatch" / "package.json"
    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    with open(NODE_CACHE / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # two sessions must not install at once
        if not marker.exists():
            pkg = NODE_CACHE / "package.json"
            if not pkg.exists():
                pkg.write_text('{"name": "metricstore-node-cache", "private": true}\n')
            cmd = [npm, "install", "--no-audit", "--no-fund", "--no-progress",
                   "--fetch-retries=1", "--fetch-timeout=60000", "--prefix", str(NODE_CACHE),
                   SDK_SPEC]
            try:
                p = subprocess.run(cmd, cwd=NODE_CACHE, capture_output=True, text=True,
                                   timeout=NPM_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.skip(f"npm install {SDK_SPEC} did not finish in {NPM_TIMEOUT} s "
                            f"(registry unreachable?)")
            if p.returncode != 0 or not marker.exists():
                pytest.skip(f"npm install {SDK_SPEC} failed (rc={p.returncode}): "
                            f"{(p.stderr or p.stdout)[-800:]}")
    return NODE_CACHE / "node_modules"


@pytest.fixture(scope="session")
def node_script(node_modules, tmp_path_factory):
    path = tmp_path_factory.mktemp("node") / "seed.js"
    path.write_text(SCRIPT)
    return path


NAMESPACES = {
    # the default protocol runs the seed verbatim (namespace MyApp/Production); the forced
    # protocols get a namespace of their own so that the checks stay exact
    "json": "MyApp/Production",
    "cbor": f"MyApp/Production-cbor-{uuid.uuid4().hex[:6]}",
    "query": f"MyApp/Production-query-{uuid.uuid4().hex[:6]}",
}


@pytest.fixture(scope="module")
def node_runs(server, node_modules, node_script):
    """One ``node`` process runs the seed example in the three protocols, one after another
    (node and the SDK take a second of CPU to load)."""
    since = time.time()
    env = dict(os.environ, NODE_PATH=str(node_modules), NODE_NO_WARNINGS="1",
               MS_ENDPOINT=server.url, MS_RUNS=json.dumps(list(NAMESPACES.items())),
               MS_AKID=CREDS["AWS_ACCESS_KEY_ID"], MS_SECRET=CREDS["AWS_SECRET_ACCESS_KEY"])
    p = subprocess.run(["node", str(node_script)], capture_output=True, text=True, env=env,
                       timeout=120, cwd=node_script.parent)
    assert p.returncode == 0, f"node failed ({p.returncode}):\n{p.stderr}\n{p.stdout}"
    return since, json.loads(p.stdout.strip().splitlines()[-1])


def check_with_boto3(server, namespace: str, since: float) -> None:
    cw = make_client("cloudwatch", server.url)
    dims = [{"Name": "Environment", "Value": "production"}, {"Name": "Service", "Value": "api"}]
    window = {"StartTime": dt.datetime.fromtimestamp(since - 600, UTC),
              "EndTime": dt.datetime.fromtimestamp(time.time() + 120, UTC), "Period": 60}
    r = cw.get_metric_statistics(Namespace=namespace, MetricName="OrdersProcessed",
                                 Dimensions=dims, Statistics=["Sum", "SampleCount"], **window)
    assert [(p["Sum"], p["SampleCount"], p["Unit"]) for p in r["Datapoints"]] == [
        (150.0, 1.0, "Count")]
    r = cw.get_metric_statistics(Namespace=namespace, MetricName="ResponseTime",
                                 Dimensions=dims, Statistics=["Average", "Maximum"], **window)
    assert [(p["Average"], p["Maximum"], p["Unit"]) for p in r["Datapoints"]] == [
        (245.0, 245.0, "Milliseconds")]
    # dimensions are part of the metric's identity: without them there is nothing
    r = cw.get_metric_statistics(Namespace=namespace, MetricName="OrdersProcessed",
                                 Statistics=["Sum"], **window)
    assert r["Datapoints"] == []
    listed = cw.list_metrics(Namespace=namespace)["Metrics"]
    assert sorted(m["MetricName"] for m in listed) == ["OrdersProcessed", "ResponseTime"]
    for m in listed:
        assert sorted(m["Dimensions"], key=lambda d: d["Name"]) == dims


EXPECTED_WIRE = {
    "json": {"path": "/", "contentType": "application/x-amz-json-1.0", "smithyProtocol": None},
    "cbor": {"contentType": "application/cbor", "smithyProtocol": "rpc-v2-cbor", "target": None},
    "query": {"path": "/", "contentType": "application/x-www-form-urlencoded", "target": None},
}


@pytest.mark.parametrize("protocol", ["json", "cbor", "query"])
def test_seed_node_example(server, node_runs, protocol):
    since, runs = node_runs
    namespace = NAMESPACES[protocol]
    out = runs[protocol]
    if "unsupported" in out:
        pytest.skip(out["unsupported"])
    assert "failed" not in out, out

    # the protocol really was the one asked for
    assert len(out["wire"]) == 4, out["wire"]
    for w in out["wire"]:
        for k, v in EXPECTED_WIRE[protocol].items():
            if k == "contentType" and v is not None:
                assert (w[k] or "").split(";")[0] == v, w
            else:
                assert w[k] == v, w
    if protocol == "cbor":
        assert [w["path"] for w in out["wire"]] == [
            f"/service/GraniteServiceVersion20100801/operation/{op}"
            for op in ("PutMetricData", "PutMetricData", "GetMetricStatistics", "GetDashboard")]
    if protocol == "json":
        assert [w["target"] for w in out["wire"]] == [
            f"GraniteServiceVersion20100801.{op}"
            for op in ("PutMetricData", "PutMetricData", "GetMetricStatistics", "GetDashboard")]

    # GetMetricStatistics through the JS SDK
    stats = out["stats"]
    assert stats["status"] == 200
    assert stats["Label"] == "OrdersProcessed"
    assert len(stats["Datapoints"]) == 1, stats
    p = stats["Datapoints"][0]
    assert (p["Sum"], p["SampleCount"], p["Maximum"], p["Unit"]) == (150, 1, 150, "Count")
    assert p["Timestamp"] % 60 == 0 and 0 <= out["now"] - p["Timestamp"] < 120 + 60

    # a modeled error reaches JS code the way AWS's does (query-compatible header first)
    assert out["error"] == {"name": "ResourceNotFound", "code": "ResourceNotFound",
                            "type": "Sender", "fault": "client", "status": 404,
                            "message": "Dashboard does-not-exist-js does not exist"}, out["error"]

    check_with_boto3(server, namespace, since)
