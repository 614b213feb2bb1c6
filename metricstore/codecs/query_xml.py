"""awsQuery: form-encoded requests, XML responses (CloudWatch before 2025-12, and SNS).

``Action=PutMetricData&Version=2010-08-01&MetricData.member.1.MetricName=…``: the flat keys
are folded into a tree (``{"MetricData": {"member": {"1": {"MetricName": …}}}}``) that
:mod:`.shapes` reads along the operation's input shape.
"""
from __future__ import annotations

import re
from urllib.parse import unquote_plus
from xml.sax.saxutils import escape as _escape

from .. import services
from ..errors import ServiceError
from . import Call, Reply, RequestInfo, decompress, new_request_id
from ._wire import iso8601, resolve_error
from .shapes import read_input

_CT = "text/xml"

# Characters XML 1.0 cannot carry at all, not even as character references (C0 controls but
# tab/LF/CR, lone surrogates, U+FFFE/U+FFFF): a client's XML parser rejects the whole response.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


_CR = {"\r": "&#xD;"}


def escape(text: str) -> str:
    """XML-escape ``text``; characters XML 1.0 cannot carry become U+FFFD.  CR is written as
    a character reference, as AWS writes it: a parser turns a literal CR into LF."""
    text = _escape(text, _CR)
    return _XML_INVALID.sub("\ufffd", text) if _XML_INVALID.search(text) else text


def parse_form(body: bytes) -> dict[str, str]:
    """``application/x-www-form-urlencoded`` parser working on the whole text at once:
    only the pieces holding ``%`` or ``+`` are unquoted (≈3× faster than parse_qsl)."""
    out: dict[str, str] = {}
    if not body:
        return out
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ServiceError("MalformedQueryString", "The request body is not valid UTF-8.",
                               status=400, query_code="MalformedQueryString") from None
    try:
        for part in text.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            if "%" in k or "+" in k:
                k = unquote_plus(k, errors="strict")
            if "%" in v or "+" in v:
                v = unquote_plus(v, errors="strict")
            out[k] = v
    except UnicodeDecodeError:
        raise ServiceError("MalformedQueryString", "The request body is not valid UTF-8.",
                           status=400, query_code="MalformedQueryString") from None
    return out


def fold(flat: dict[str, str]) -> dict:
    """``{"A.member.1.B": "x"}`` → ``{"A": {"member": {"1": {"B": "x"}}}}``."""
    tree: dict = {}
    for key, value in flat.items():
        if key in ("Action", "Version") or key.startswith("X-Amz-"):
            continue
        node = tree
        parts = key.split(".")
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                if nxt == "":          # "Name=" (empty list) followed by members
                    nxt = node[p] = {}
                else:
                    raise ServiceError("MalformedQueryString",
                                       f"Parameter {key} conflicts with another parameter.",
                                       status=400, query_code="MalformedQueryString")
            node = nxt
        last = parts[-1]
        if isinstance(node.get(last), dict):
            if value == "":
                continue
            raise ServiceError("MalformedQueryString",
                               f"Parameter {key} conflicts with another parameter.",
                               status=400, query_code="MalformedQueryString")
        node[last] = value
    return tree


def _number(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        r = repr(value)
        return r if "e" not in r else format(value, ".17g")
    return str(value)


def _xml(shape, value, out: list) -> None:
    t = shape.type_name
    if t == "structure":
        for name, mshape in shape.members.items():
            v = value.get(name)
            if v is None:
                continue
            tag = mshape.serialization.get("name", name)
            if mshape.type_name == "list" and mshape.serialization.get("flattened"):
                for item in v:
                    out.append(f"<{tag}>")
                    _xml(mshape.member, item, out)
                    out.append(f"</{tag}>")
                continue
            out.append(f"<{tag}>")
            _xml(mshape, v, out)
            out.append(f"</{tag}>")
    elif t == "list":
        tag = shape.member.serialization.get("name", "member")
        mt = shape.member.type_name
        if mt in ("double", "float", "integer", "long"):
            out.extend(f"<{tag}>{_number(v)}</{tag}>" for v in value)
            return
        for item in value:
            out.append(f"<{tag}>")
            _xml(shape.member, item, out)
            out.append(f"</{tag}>")
    elif t == "map":
        kt = shape.key.serialization.get("name", "key")
        vt = shape.value.serialization.get("name", "value")
        for k, v in value.items():
            out.append(f"<entry><{kt}>{escape(str(k))}</{kt}><{vt}>")
            _xml(shape.value, v, out)
            out.append(f"</{vt}></entry>")
    elif t == "timestamp":
        out.append(iso8601(value))
    elif t in ("double", "float", "integer", "long", "boolean"):
        out.append(_number(value))
    elif t == "blob":
        import base64
        out.append(base64.b64encode(value).decode())
    else:
        out.append(escape(str(value)))


class QueryCodec:
    name = "query"

    def decode(self, req: RequestInfo) -> Call:
        body = decompress(req.body, req.headers.get("Content-Encoding")) if req.body else b""
        flat = dict(req.query) if req.method == "GET" else {}
        flat.update(parse_form(body))
        req.form = flat
        from ..auth import credential_scope
        scope = credential_scope(req)
        spec = services.by_query_version(flat.get("Version"), scope.service if scope else None)
        action = flat.get("Action")
        if spec is None:
            raise ServiceError("InvalidAction",
                               "Could not determine the service: the request has no known "
                               "Version parameter.", status=400, query_code="InvalidAction")
        if not action:
            raise ServiceError("MissingAction", "The request must contain the parameter Action.",
                               status=400, query_code="MissingAction")
        return Call(spec, action, {}, self.name, new_request_id())

    def read_params(self, call: Call, req: RequestInfo) -> dict:
        if call.service.operation(call.operation) is None:
            raise ServiceError("InvalidAction",
                               f"Could not find operation {call.operation} for version "
                               f"{call.service.api_version}", status=400, query_code="InvalidAction")
        return read_input(call.service, call.operation, fold(req.form), strings=True)

    def encode_result(self, call: Call, result: dict | None) -> Reply:
        op = call.service.operation(call.operation)
        ns = call.service.xml_namespace
        name = call.operation
        out = [f'<{name}Response xmlns="{ns}">']
        shape = op.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper", f"{name}Result")
            out.append(f"<{wrapper}>")
            if result:
                _xml(shape, result, out)
            out.append(f"</{wrapper}>")
        out.append(f"<ResponseMetadata><RequestId>{call.request_id}</RequestId>"
                   f"</ResponseMetadata></{name}Response>")
        return Reply(200, {"Content-Type": _CT, "x-amzn-RequestId": call.request_id},
                     "".join(out).encode())

    def encode_error(self, spec, call: Call | None, err: ServiceError) -> Reply:
        _, qcode, status, sender = resolve_error(spec, err)
        rid = call.request_id if call else new_request_id()
        ns = (spec.xml_namespace if spec else None) or "http://monitoring.amazonaws.com/doc/2010-08-01/"
        msg = f"<Message>{escape(err.message)}</Message>" if err.message else ""
        body = (f'<ErrorResponse xmlns="{ns}"><Error><Type>{"Sender" if sender else "Receiver"}'
                f"</Type><Code>{escape(qcode)}</Code>{msg}</Error><RequestId>{rid}</RequestId>"
                f"</ErrorResponse>")
        headers = {"Content-Type": _CT, "x-amzn-RequestId": rid}
        headers.update(err.headers)
        return Reply(status, headers, body.encode())


QUERY = QueryCodec()
