"""Helpers shared by the codecs: error resolution and output conversion along a shape."""
from __future__ import annotations

import base64
import datetime as dt

from ..errors import ServiceError

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def epoch(value) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    return float(value)


def iso8601(value) -> str:
    """``2026-11-26T12:26:13Z`` or ``…13.123Z`` (millisecond precision, as AWS writes)."""
    t = epoch(value)
    ms = int(round(t * 1000))
    d = _EPOCH + dt.timedelta(milliseconds=ms)
    if ms % 1000:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def resolve_error(spec, err: ServiceError) -> tuple[str, str, int, bool]:
    """(shape name, query code, HTTP status, sender fault) of an error for a service."""
    info = spec.error_info(err.code) if spec is not None else None
    if info is not None:
        qcode, status, sender = info
        status = err.status or status
        # the model marks only client errors (senderFault); a 5xx shape is the server's fault
        return err.code, qcode, status, sender and status < 500
    status = err.status or 400
    return err.code, err.query_code or err.code, status, err.sender and status < 500


def convert(shape, value, ts, blob=None):
    """Walk an output ``value`` along ``shape``, converting timestamps with ``ts``.

    Lists of scalars that need no conversion are passed through untouched (large
    GetMetricData value arrays cost nothing).
    """
    if value is None:
        return None
    t = shape.type_name
    if t == "structure":
        out = {}
        members = shape.members
        for k, v in value.items():
            if v is None:
                continue
            m = members.get(k)
            out[k] = convert(m, v, ts, blob) if m is not None else v
        return out
    if t == "list":
        mt = shape.member.type_name
        if mt == "timestamp":
            return [ts(v) for v in value]
        if mt in ("structure", "list", "map", "blob"):
            return [convert(shape.member, v, ts, blob) for v in value]
        return list(value) if not isinstance(value, list) else value
    if t == "map":
        return {k: convert(shape.value, v, ts, blob) for k, v in value.items()}
    if t == "timestamp":
        return ts(value)
    if t == "blob":
        return blob(value) if blob else base64.b64encode(value).decode()
    if t in ("double", "float") and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
