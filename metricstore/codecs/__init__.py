"""Wire protocols as codecs behind one interface.

::

            request ─► pick_codec(method, path, headers, body) ─► Codec
                                                                     │
          ┌──────────────┬───────────────────┬───────────────────────┤
     JsonCodec        CborCodec          QueryCodec
     (awsJson1_0,     (smithy-rpc-v2-    (awsQuery: form in, XML out;
      awsJson1_1)      cbor)              CloudWatch and SNS)
          │                │                    │
          └── decode(req) -> Call(service, operation, params)
              encode_result(call, result) -> Reply
              encode_error(call, ServiceError) -> Reply

Decoders parse bytes; :mod:`.shapes` validates and converts along botocore's model, the same
for every protocol.  Nothing here knows about DuckDB or operations.
"""
from __future__ import annotations

import gzip
import re
import uuid
import zlib
from dataclasses import dataclass, field

from ..errors import ServiceError
from ..services import ServiceSpec

MAX_BODY = 40 * 1024 * 1024           # hard cap on any decompressed body


@dataclass
class RequestInfo:
    """What a codec needs of an HTTP request (kept free of aiohttp)."""

    method: str
    path: str
    headers: dict          # case-insensitive mapping
    body: bytes
    query: dict = field(default_factory=dict)   # URL query string parameters
    form: dict = field(default_factory=dict)    # decoded form parameters (query protocol)
    raw_body: bytes | None = None   # the body as sent (still compressed): what SigV4 signs
    raw_path: str = ""              # path and query string as sent (percent-encoded)
    raw_headers: dict | None = None  # headers as sent (Content-Encoding still there)


@dataclass
class Call:
    service: ServiceSpec
    operation: str
    params: dict
    protocol: str
    request_id: str
    query_mode: bool = False
    account: str = ""
    region: str = ""
    access_key: str | None = None


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes


def new_request_id() -> str:
    return str(uuid.uuid4())


def decompress(body: bytes, encoding: str | None, limit: int = MAX_BODY, spec=None) -> bytes:
    """Undo ``Content-Encoding: gzip`` (or ``deflate``), streaming, with a bound on the
    output: decompression stops as soon as ``limit`` bytes are passed, so a gzip bomb costs
    at most ``limit`` bytes of memory (413 ``RequestEntityTooLarge``).  Concatenated gzip
    members (RFC 1952 §2.2) are decoded in turn, against the same bound.  ``spec``: the
    service whose spelling of the 413 to use."""
    if not encoding or encoding.strip().lower() in ("identity", ""):
        return body
    enc = encoding.strip().lower()
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise ServiceError("UnsupportedMediaType", f"Content-Encoding {encoding} is not supported.",
                           status=415, query_code="UnsupportedMediaType")
    wbits = 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS
    bad = ServiceError("SerializationException", "The request body could not be decompressed.",
                       status=400, query_code="MalformedInput")
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        d = zlib.decompressobj(wbits)
        try:
            out = d.decompress(data, limit + 1 - size)
        except zlib.error:
            raise bad from None
        size += len(out)
        parts.append(out)
        if size > limit or (d.unconsumed_tail and not d.eof):
            # output budget spent with input left: the body decompresses past the bound
            raise request_too_large(None, limit, spec, decompressed=True)
        if not d.eof:
            raise bad
        data = d.unused_data
        if not data or enc == "deflate" or not data.strip(b"\0"):
            return b"".join(parts)


def request_too_large(size: int | None, limit: int, spec=None,
                      decompressed: bool = False) -> ServiceError:
    """AWS's answer to a body over an operation's size limit: HTTP 413
    ``RequestEntityTooLarge`` (``Request size 47947 exceeded 40960 bytes``); CloudWatch Logs
    spells it ``RequestEntityTooLargeException`` (AWS's common errors for JSON services)."""
    what = "Decompressed request size" if decompressed else "Request size"
    msg = f"{what} {size} exceeded {limit} bytes" if size is not None \
        else f"{what} exceeded {limit} bytes"
    code = "RequestEntityTooLargeException" if spec is not None and spec.name == "logs" \
        else "RequestEntityTooLarge"
    return ServiceError(code, msg, status=413, query_code="RequestEntityTooLarge")


_CBOR_PATH = re.compile(r"/service/([^/]+)/operation/([^/]+)/?$")


def pick_codec(req: RequestInfo):
    """The codec for a request, chosen by its shape (path, headers, body), or None."""
    from .cbor import CBOR
    from .json import JSON
    from .query_xml import QUERY

    headers = req.headers
    if _CBOR_PATH.search(req.path):
        return CBOR
    if headers.get("X-Amz-Target"):
        return JSON
    ctype = (headers.get("Content-Type") or "").lower()
    if req.method == "POST" and ("x-www-form-urlencoded" in ctype or not ctype):
        return QUERY
    if req.method == "GET" and "Action" in req.query:
        return QUERY
    return None
