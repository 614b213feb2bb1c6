"""SigV4 authentication and account isolation (``metricstore serve --credentials FILE``)."""
from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
import uuid
from unittest import mock

import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config as BotoConfig
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import PROTOCOLS, LiveServer, assert_aws_error, make_client

KEYS = {
    "alice": ("AKIDALICE0000000001", "alice-secret", "111111111111", False),
    "bob": ("AKIDBOB00000000002", "bob/secret+with=chars", "222222222222", False),
    "root": ("AKIDADMIN000000003", "admin-secret", "999999999999", True),
}

CREDENTIALS = "".join(
    f"[{p}]\naws_access_key_id = {ak}\naws_secret_access_key = {sk}\naws_account_id = {acct}\n"
    + ("metricstore_admin = true\n" if admin else "") + "\n"
    for p, (ak, sk, acct, admin) in KEYS.items())


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    d = tmp_path_factory.mktemp("auth")
    creds = d / "credentials"
    creds.write_text(CREDENTIALS)
    srv = LiveServer(d / "data", ["--credentials", str(creds)]).start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-5000:]


def client(srv, service, who="alice", protocol="json", model_dirs=None, **kw):
    ak, sk, _, _ = KEYS[who]
    return make_client(service, srv.url, protocol, model_dirs, aws_access_key_id=ak,
                       aws_secret_access_key=sk, **kw)


def uid(prefix="Auth"):
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def test_startup_line_says_auth_on(auth_server, server):
    assert "auth on" in auth_server.log()
    assert "auth off" in server.log()


def test_credentials_env_variable(tmp_path):
    from metricstore.config import from_args
    creds = tmp_path / "c"
    creds.write_text(CREDENTIALS)
    with mock.patch.dict("os.environ", {"METRICSTORE_CREDENTIALS": str(creds)}):
        _, cfg = from_args(["serve"])
    cfg.load_keys()
    assert cfg.keys["AKIDADMIN000000003"].admin and cfg.keys["AKIDALICE0000000001"].account_id \
        == "111111111111"
    assert not cfg.keys["AKIDBOB00000000002"].admin


def test_bad_credentials_file_is_refused(tmp_path):
    from metricstore.auth import load_credentials
    p = tmp_path / "c"
    p.write_text("[x]\naws_access_key_id = A\naws_secret_access_key = s\n")
    with pytest.raises(ValueError, match="aws_account_id"):
        load_credentials(str(p))


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_good_keys_work(auth_server, model_dirs, protocol):
    cw = client(auth_server, "cloudwatch", "alice", protocol, model_dirs)
    n = uid()
    cw.put_metric_data(Namespace=n, MetricData=[{"MetricName": "M", "Value": 1.0}])
    assert [m["MetricName"] for m in cw.list_metrics(Namespace=n)["Metrics"]] == ["M"]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_wrong_secret(auth_server, model_dirs, protocol):
    cw = make_client("cloudwatch", auth_server.url, protocol, model_dirs,
                     aws_access_key_id=KEYS["alice"][0], aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as e:
        cw.list_metrics()
    assert_aws_error(e, "SignatureDoesNotMatch", 403)
    assert "does not match the signature you provided" in e.value.response["Error"]["Message"]


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_unknown_key(auth_server, model_dirs, protocol):
    cw = make_client("cloudwatch", auth_server.url, protocol, model_dirs,
                     aws_access_key_id="AKIDNOBODY", aws_secret_access_key="x")
    with pytest.raises(ClientError) as e:
        cw.list_metrics()
    assert_aws_error(e, "InvalidClientTokenId", 403,
                     "The security token included in the request is invalid.")


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_unsigned(auth_server, model_dirs, protocol):
    import boto3
    import botocore.session
    bs = botocore.session.get_session()
    if model_dirs[protocol] is not None:
        bs.get_component("data_loader").search_paths.insert(0, str(model_dirs[protocol]))
    cw = boto3.Session(botocore_session=bs, region_name="us-east-1").client(
        "cloudwatch", endpoint_url=auth_server.url,
        config=BotoConfig(signature_version=UNSIGNED, retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as e:
        cw.list_metrics()
    assert_aws_error(e, "MissingAuthenticationToken", 403)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
@pytest.mark.parametrize("minutes", [-10, 10])
def test_skewed_clock(auth_server, model_dirs, protocol, minutes):
    cw = client(auth_server, "cloudwatch", "alice", protocol, model_dirs)
    skewed = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) \
        + datetime.timedelta(minutes=minutes)
    with mock.patch("botocore.auth.get_current_datetime", return_value=skewed):
        with pytest.raises(ClientError) as e:
            cw.list_metrics()
    err = assert_aws_error(e, "SignatureDoesNotMatch", 403)
    msg = err["Error"]["Message"]
    assert msg.startswith("Signature expired:" if minutes < 0 else "Signature not yet current:")
    # within 5 minutes is fine
    with mock.patch("botocore.auth.get_current_datetime",
                    return_value=skewed - datetime.timedelta(minutes=minutes * 0.7)):
        cw.list_metrics(Namespace="nothing")


def test_incomplete_signature(auth_server):
    req = urllib.request.Request(auth_server.url + "/", method="POST",
                                 data=b"Action=ListMetrics&Version=2010-08-01", headers={
                                     "Content-Type": "application/x-www-form-urlencoded",
                                     "X-Amz-Date": "20260101T000000Z",
                                     "Authorization": "AWS4-HMAC-SHA256 Credential="
                                     "AKIDALICE0000000001/20260101/us-east-1/monitoring/"
                                     "aws4_request"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400
    body = e.value.read().decode()
    assert "<Code>IncompleteSignature</Code>" in body and "'Signature'" in body


def _signed_query_post(srv, body: bytes, who="alice", extra_headers=None):
    ak, sk, _, _ = KEYS[who]
    req = AWSRequest(method="POST", url=srv.url + "/", data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
        **(extra_headers or {})})
    SigV4Auth(Credentials(ak, sk), "monitoring", "us-east-1").add_auth(req)
    return req


def _send(req, body=None):
    r = urllib.request.Request(req.url, data=req.body if body is None else body,
                               method=req.method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_body_and_header_tampering(auth_server):
    body = b"Action=ListMetrics&Version=2010-08-01"
    req = _signed_query_post(auth_server, body)
    assert _send(req)[0] == 200
    st, text = _send(req, body + b"&Namespace=X")          # body changed after signing
    assert st == 403 and "<Code>SignatureDoesNotMatch</Code>" in text
    # a claimed payload hash that is not the body's
    req = _signed_query_post(auth_server, body, extra_headers={"X-Amz-Content-SHA256": "0" * 64})
    st, text = _send(req)
    assert st == 403 and "x-amz-content-sha256" in text
    # a correct claimed hash is fine
    import hashlib
    req = _signed_query_post(auth_server, body, extra_headers={
        "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert _send(req)[0] == 200
    # a signature that is not even hex
    req = _signed_query_post(auth_server, body)
    req.headers.replace_header("Authorization", req.headers["Authorization"].rsplit("=", 1)[0]
                               + "=\u00e9t\u00e9")
    st, text = _send(req)
    assert st == 403 and "<Code>SignatureDoesNotMatch</Code>" in text
    # SigV2-style header: not SigV4
    req = urllib.request.Request(auth_server.url + "/", data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Authorization": "AWS AKID:sig"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=30)
    assert e.value.code == 400 and "<Code>IncompleteSignature</Code>" in e.value.read().decode()


def test_logs_errors_in_json_shape(auth_server):
    logs = make_client("logs", auth_server.url, aws_access_key_id=KEYS["alice"][0],
                       aws_secret_access_key="wrong")
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups()
    assert_aws_error(e, "InvalidSignatureException", 400)
    logs = make_client("logs", auth_server.url, aws_access_key_id="AKIDNOBODY",
                       aws_secret_access_key="x")
    with pytest.raises(ClientError) as e:
        logs.describe_log_groups()
    assert_aws_error(e, "UnrecognizedClientException", 400)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_gzip_put_metric_data_signed(auth_server, model_dirs, protocol):
    """botocore gzips bodies over 10 KiB and signs the compressed bytes."""
    cw = client(auth_server, "cloudwatch", "bob", protocol, model_dirs)
    n = uid()
    encodings = []
    cw.meta.events.register("before-send.cloudwatch.PutMetricData",
                            lambda request, **kw: encodings.append(
                                request.headers.get("Content-Encoding")))
    cw.put_metric_data(Namespace=n, MetricData=[
        {"MetricName": f"Metric{i:03d}", "Dimensions": [{"Name": "Host", "Value": "h" * 50}],
         "Value": float(i)} for i in range(200)])
    assert encodings in ([b"gzip"], ["gzip"])
    assert len(cw.list_metrics(Namespace=n)["Metrics"]) == 200


def _presigned(srv, query, who="alice", expires=60):
    ak, sk, _, _ = KEYS[who]
    req = AWSRequest(method="GET", url=f"{srv.url}/?{query}")
    SigV4QueryAuth(Credentials(ak, sk), "monitoring", "us-east-1", expires=expires).add_auth(req)
    return req.url


def test_presigned_list_metrics(auth_server):
    cw = client(auth_server, "cloudwatch", "alice")
    n = uid()
    cw.put_metric_data(Namespace=n, MetricData=[{"MetricName": "Presigned", "Value": 1.0}])
    url = _presigned(auth_server, f"Action=ListMetrics&Version=2010-08-01&Namespace={n}")
    with urllib.request.urlopen(url, timeout=30) as r:
        body = r.read().decode()
    assert r.status == 200 and "<MetricName>Presigned</MetricName>" in body
    # another account's presigned URL sees nothing of alice's
    with urllib.request.urlopen(_presigned(
            auth_server, f"Action=ListMetrics&Version=2010-08-01&Namespace={n}", "bob")) as r:
        assert "Presigned" not in r.read().decode()
    # tampering with a signed parameter breaks the signature
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url.replace(f"Namespace={n}", "Namespace=Other"), timeout=30)
    assert e.value.code == 403 and "<Code>SignatureDoesNotMatch</Code>" in e.value.read().decode()


def test_presigned_url_expires(auth_server):
    past = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) \
        - datetime.timedelta(minutes=2)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        url = _presigned(auth_server, "Action=ListMetrics&Version=2010-08-01", expires=60)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url, timeout=30)
    text = e.value.read().decode()
    assert e.value.code == 403 and "<Code>SignatureDoesNotMatch</Code>" in text
    assert "Signature expired" in text


def test_isolation_between_accounts(auth_server, model_dirs):
    a = {s: client(auth_server, s, "alice") for s in ("cloudwatch", "logs", "sns")}
    b = {s: client(auth_server, s, "bob") for s in ("cloudwatch", "logs", "sns")}
    n, name = uid("Iso"), uid("iso")
    # the same names in both accounts do not collide
    for who, c in (("alice", a), ("bob", b)):
        c["cloudwatch"].put_metric_data(Namespace=n, MetricData=[
            {"MetricName": f"{who}-metric", "Value": 1.0}])
        c["cloudwatch"].put_metric_alarm(
            AlarmName=f"{name}-{who}", Namespace=n, MetricName=f"{who}-metric",
            Statistic="Average", Period=60, EvaluationPeriods=1, Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold")
        c["cloudwatch"].put_dashboard(DashboardName=f"{name}-{who}", DashboardBody=json.dumps(
            {"widgets": []}))
        c["logs"].create_log_group(logGroupName=f"/{name}/{who}")
        c["sns"].create_topic(Name=f"{name}-{who}")
    a["logs"].create_log_group(logGroupName=f"/{name}/shared")
    b["logs"].create_log_group(logGroupName=f"/{name}/shared")   # no ResourceAlreadyExists

    for who, c in (("alice", a), ("bob", b)):
        other = "bob" if who == "alice" else "alice"
        acct = KEYS[who][2]
        cw = c["cloudwatch"]
        assert [m["MetricName"] for m in cw.list_metrics(Namespace=n)["Metrics"]] == \
            [f"{who}-metric"]
        alarms = cw.describe_alarms(AlarmNamePrefix=name)["MetricAlarms"]
        assert [x["AlarmName"] for x in alarms] == [f"{name}-{who}"]
        assert f":{acct}:alarm:" in alarms[0]["AlarmArn"]
        dashboards = cw.list_dashboards(DashboardNamePrefix=name)["DashboardEntries"]
        assert [d["DashboardName"] for d in dashboards] == [f"{name}-{who}"]
        with pytest.raises(ClientError):
            cw.get_dashboard(DashboardName=f"{name}-{other}")
        groups = c["logs"].describe_log_groups(logGroupNamePrefix=f"/{name}/")["logGroups"]
        assert sorted(g["logGroupName"] for g in groups) == sorted(
            [f"/{name}/shared", f"/{name}/{who}"])
        with pytest.raises(ClientError) as e:
            c["logs"].create_log_stream(logGroupName=f"/{name}/{other}", logStreamName="s")
        assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
        topics = [t["TopicArn"] for t in c["sns"].list_topics()["Topics"]
                  if name in t["TopicArn"]]
        assert topics == [f"arn:aws:sns:us-east-1:{acct}:{name}-{who}"]
        with pytest.raises(ClientError):
            c["sns"].get_topic_attributes(
                TopicArn=f"arn:aws:sns:us-east-1:{KEYS[other][2]}:{name}-{other}")


def test_isolation_of_log_events_and_queries(auth_server):
    import time
    a, b = client(auth_server, "logs", "alice"), client(auth_server, "logs", "bob")
    g = f"/{uid('q')}"
    now = int(time.time() * 1000)
    for who, c in (("alice", a), ("bob", b)):
        c.create_log_group(logGroupName=g)
        c.create_log_stream(logGroupName=g, logStreamName="s")
        c.put_log_events(logGroupName=g, logStreamName="s",
                         logEvents=[{"timestamp": now, "message": f"hello from {who}"}])
    for who, c in (("alice", a), ("bob", b)):
        events = c.filter_log_events(logGroupName=g)["events"]
        assert [e["message"] for e in events] == [f"hello from {who}"]
        qid = c.start_query(logGroupName=g, startTime=now // 1000 - 60,
                            endTime=now // 1000 + 60, queryString="fields @message")["queryId"]
        deadline = time.time() + 30
        while True:
            r = c.get_query_results(queryId=qid)
            if r["status"] in ("Complete", "Failed", "Cancelled") or time.time() > deadline:
                break
            time.sleep(0.1)
        assert r["status"] == "Complete"
        msgs = [f["value"] for row in r["results"] for f in row if f["field"] == "@message"]
        assert msgs == [f"hello from {who}"]
        # the other account cannot read this query's results
        other = b if c is a else a
        with pytest.raises(ClientError):
            other.get_query_results(queryId=qid)


from test_node_sdk import node_modules, node_script  # noqa: E402,F401  (fixtures)


def test_node_sdk_signatures(auth_server, node_modules, node_script):  # noqa: F811
    """The JS SDK v3's own SigV4 signer (json, cbor, query) is accepted, with the account of
    its key."""
    import os
    import subprocess
    runs = {p: uid(f"Node-{p}-") for p in ("json", "cbor", "query")}
    env = dict(os.environ, NODE_PATH=str(node_modules), NODE_NO_WARNINGS="1",
               MS_ENDPOINT=auth_server.url, MS_RUNS=json.dumps(list(runs.items())),
               MS_AKID=KEYS["bob"][0], MS_SECRET=KEYS["bob"][1])
    p = subprocess.run(["node", str(node_script)], capture_output=True, text=True, env=env,
                       timeout=120, cwd=node_script.parent)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert "unsupported" not in out["json"]
    bob, alice = client(auth_server, "cloudwatch", "bob"), client(auth_server, "cloudwatch")
    for protocol, n in runs.items():
        r = out[protocol]
        if "unsupported" in r:
            continue
        assert "failed" not in r, r
        assert r["error"]["name"] == "ResourceNotFound", r["error"]
        assert sorted(m["MetricName"] for m in bob.list_metrics(Namespace=n)["Metrics"]) == \
            ["OrdersProcessed", "ResponseTime"]
        assert alice.list_metrics(Namespace=n)["Metrics"] == []


def _admin_post(srv, path, body=b"", who=None):
    req = AWSRequest(method="POST", url=srv.url + path, data=body,
                     headers={"Content-Type": "application/json"})
    if who is not None:
        ak, sk, _, _ = KEYS[who]
        SigV4Auth(Credentials(ak, sk), "metricstore", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=body, method="POST", headers=dict(req.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_admin_endpoints_need_an_admin_key(auth_server):
    """Last in this module: the admin reset wipes the auth server."""
    st, body = _admin_post(auth_server, "/_metricstore/reset")
    assert st == 403 and body["__type"] == "MissingAuthenticationToken"
    st, body = _admin_post(auth_server, "/_metricstore/reset", who="alice")
    assert st == 403 and body["__type"] == "AccessDeniedException"
    st, body = _admin_post(auth_server, "/_metricstore/clock", b'{"advance": 0}', who="bob")
    assert st == 403
    st, body = _admin_post(auth_server, "/_metricstore/clock", b'{"advance": 0}', who="root")
    assert st == 200 and "now" in body
    cw = client(auth_server, "cloudwatch", "alice")
    n = uid()
    cw.put_metric_data(Namespace=n, MetricData=[{"MetricName": "M", "Value": 1.0}])
    st, body = _admin_post(auth_server, "/_metricstore/reset", who="root")
    assert st == 200 and body == {"status": "reset"}
    assert cw.list_metrics(Namespace=n)["Metrics"] == []
