"""Who is calling: the SigV4 credential scope, and (with ``--credentials``) its verification.

With auth off (no credentials file), any access key is accepted and the account is the
configured one.  With auth on, every request must carry a valid AWS Signature Version 4, in
the ``Authorization`` header or in the query string (presigned URL); the account is the one
of the signing key.  The expected signature is computed by botocore's own signer
(:class:`botocore.auth.SigV4Auth`), fed the request as the client sent it: method, raw path
and query, the signed headers only, the raw (still compressed) body, the client's
``X-Amz-Date``.
"""
from __future__ import annotations

import calendar
import configparser
import hmac
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_tz, mktime_tz
from hashlib import sha256

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from .errors import ServiceError

_CRED = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")
_ALGORITHM = "AWS4-HMAC-SHA256"
SKEW_SECONDS = 300          # AWS accepts requests signed up to 5 minutes off its clock


@dataclass(frozen=True)
class Scope:
    access_key: str
    date: str
    region: str
    service: str


@dataclass(frozen=True)
class Key:
    """One access key of the credentials file."""

    profile: str
    access_key: str
    secret_key: str
    account_id: str
    admin: bool = False


def load_credentials(path: str) -> dict[str, Key]:
    """Keys of an AWS shared-credentials file: ``[profile]`` sections with
    ``aws_access_key_id``, ``aws_secret_access_key``, ``aws_account_id`` and optionally
    ``metricstore_admin = true``."""
    cp = configparser.ConfigParser(interpolation=None)
    with open(path, encoding="utf-8") as f:
        cp.read_file(f)
    keys: dict[str, Key] = {}
    for profile in cp.sections():
        s = cp[profile]
        missing = [o for o in ("aws_access_key_id", "aws_secret_access_key", "aws_account_id")
                   if not s.get(o, "").strip()]
        if missing:
            raise ValueError(f"{path}: profile [{profile}] lacks {', '.join(missing)}")
        account = s["aws_account_id"].strip()
        if not re.fullmatch(r"\d{12}", account):
            raise ValueError(f"{path}: profile [{profile}]: aws_account_id must be 12 digits")
        ak = s["aws_access_key_id"].strip()
        if ak in keys:
            raise ValueError(f"{path}: access key {ak} appears twice")
        keys[ak] = Key(profile, ak, s["aws_secret_access_key"].strip(), account,
                       s.getboolean("metricstore_admin", fallback=False))
    if not keys:
        raise ValueError(f"{path}: no credentials (no [profile] sections)")
    return keys


def credential_scope(req) -> Scope | None:
    """The credential scope of a header- or query-string-signed request, if any."""
    header = req.headers.get("Authorization") or ""
    m = _CRED.search(header)
    if m is None:
        cred = req.query.get("X-Amz-Credential") if req.query else None
        if cred:
            m = _CRED.search("Credential=" + cred)
    if m is None:
        return None
    return Scope(*m.groups())


def identify(req, config, clock=None) -> tuple[str, str, str | None]:
    """(account id, region, access key) for a request.

    Region: from the credential scope, else the server's default region.  With
    credentials configured, the signature is verified (:func:`verify`) and the account is
    the key's.
    """
    keys = getattr(config, "keys", None)
    if keys is not None:
        key, scope = verify(req, keys, clock.now() if clock is not None else time.time(),
                            json_style=_json_style(req))
        return key.account_id, scope.region, key.access_key
    scope = credential_scope(req)
    region = scope.region if scope else config.region
    return config.account_id, region, scope.access_key if scope else None


# -- errors, as AWS spells them ---------------------------------------------------------------
# Query-protocol services (CloudWatch, SNS; and CloudWatch's query-compatible JSON/CBOR)
# answer with the IAM-style codes and 403; plain awsJson services (CloudWatch Logs) with the
# coral ``…Exception`` names and 400.

_MISMATCH = ("The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method. Consult the service "
             "documentation for details.")
_BAD_TOKEN = "The security token included in the request is invalid."


def _json_style(req) -> bool:
    target = req.headers.get("X-Amz-Target") or ""
    return target.startswith("Logs_")


def _err(kind: str, message: str, json_style: bool) -> ServiceError:
    query_codes = {"missing": ("MissingAuthenticationToken", 403),
                   "incomplete": ("IncompleteSignature", 400),
                   "unknown": ("InvalidClientTokenId", 403),
                   "mismatch": ("SignatureDoesNotMatch", 403)}
    json_codes = {"missing": ("MissingAuthenticationTokenException", 400),
                  "incomplete": ("IncompleteSignatureException", 400),
                  "unknown": ("UnrecognizedClientException", 400),
                  "mismatch": ("InvalidSignatureException", 400)}
    code, status = (json_codes if json_style else query_codes)[kind]
    return ServiceError(code, message, status=status, query_code=code)


def _fmt(t: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t))


def _parse_amz_date(value: str) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(value, "%Y%m%dT%H%M%SZ")))
    except (ValueError, TypeError):
        return None


def _auth_params(req, headers, json_style: bool) -> tuple[dict, bool]:
    """The SigV4 parameters of a request and whether they came from the query string."""
    header = headers.get("Authorization")
    q = req.query or {}
    if header is not None:
        if not header.startswith(_ALGORITHM + " "):
            scheme = header.strip().split(" ")[0]
            raise _err("incomplete", f"Unsupported Authorization type '{scheme}': only "
                       f"'{_ALGORITHM}' (Signature Version 4) is accepted."
                       if scheme else "Authorization header is empty.", json_style)
        params = {}
        for part in header[len(_ALGORITHM) + 1:].split(","):
            k, sep, v = part.strip().partition("=")
            if sep:
                params[k.strip()] = v.strip()
        missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not params.get(p)]
        if missing:
            raise _err("incomplete", " ".join(
                f"Authorization header requires '{p}' parameter." for p in missing)
                + f" Authorization={header}", json_style)
        date = headers.get("X-Amz-Date")
        if date is None and headers.get("Date"):
            parsed = parsedate_tz(headers["Date"])
            date = _fmt(mktime_tz(parsed)) if parsed else None
        if not date:
            raise _err("incomplete", "Authorization header requires existence of either a "
                       f"'X-Amz-Date' or a 'Date' header. Authorization={header}", json_style)
        params["Date"] = date
        return params, False
    if any(k.startswith("X-Amz-") for k in q):
        if q.get("X-Amz-Algorithm") != _ALGORITHM:
            raise _err("incomplete", "AWS query-string parameters must include 'X-Amz-Algorithm'"
                       f" with value '{_ALGORITHM}'.", json_style)
        missing = [p for p in ("X-Amz-Credential", "X-Amz-SignedHeaders", "X-Amz-Signature",
                               "X-Amz-Date") if not q.get(p)]
        if missing:
            raise _err("incomplete", "AWS query-string parameters must include "
                       + ", ".join(f"'{p}'" for p in missing) + ". Re-examine the query-string "
                       "parameters.", json_style)
        return {"Credential": q["X-Amz-Credential"], "SignedHeaders": q["X-Amz-SignedHeaders"],
                "Signature": q["X-Amz-Signature"], "Date": q["X-Amz-Date"],
                "Expires": q.get("X-Amz-Expires")}, True
    raise _err("missing", "Missing Authentication Token" if json_style
               else "Request is missing Authentication Token", json_style)


class _Expected(SigV4Auth):
    """botocore's SigV4 signer, restricted to exactly the headers the client signed
    (botocore's own selection drops some, e.g. User-Agent, that other SDKs may sign)."""

    def __init__(self, credentials, service_name, region_name, signed: set[str]):
        super().__init__(credentials, service_name, region_name)
        self._signed = signed

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for n, v in request.headers.items():
            if n.lower() in self._signed:
                hm[n.lower()] = v
        return hm


def verify(req, keys: dict[str, Key], now: float, json_style: bool = False) -> tuple[Key, Scope]:
    """Check a request's SigV4 signature against ``keys``; the signing key and its scope.

    Raises the AWS error (:class:`ServiceError`) for an unsigned, malformed, unknown-key,
    expired or wrongly signed request.
    """
    headers = getattr(req, "raw_headers", None) or req.headers   # as signed
    params, presigned = _auth_params(req, headers, json_style)
    m = _CRED.fullmatch("Credential=" + params["Credential"])
    if m is None:
        raise _err("incomplete", f"Credential must have exactly 5 slash-delimited elements, "
                   f"e.g. keyid/date/region/service/term, got '{params['Credential']}'",
                   json_style)
    scope = Scope(*m.groups())
    key = keys.get(scope.access_key)
    if key is None:
        raise _err("unknown", _BAD_TOKEN, json_style)
    amz_date = params["Date"]
    t = _parse_amz_date(amz_date)
    if t is None:
        raise _err("incomplete", f"Date must be in ISO-8601 'basic format'. Got '{amz_date}'. "
                   "See http://en.wikipedia.org/wiki/ISO_8601", json_style)
    if scope.date != amz_date[:8]:
        raise _err("mismatch", f"Date in Credential scope does not match YYYYMMDD from "
                   f"ISO-8601 version of date from HTTP: '{scope.date}' != '{amz_date[:8]}', "
                   f"from '{amz_date}'.", json_style)
    if presigned and params.get("Expires"):
        try:
            expires = int(params["Expires"])
        except ValueError:
            raise _err("incomplete", "X-Amz-Expires must be a number of seconds.",
                       json_style) from None
        if not 1 <= expires <= 604800:
            raise _err("incomplete", "X-Amz-Expires must be between 1 and 604800 seconds "
                       "(a week).", json_style)
        if now > t + expires:
            raise _err("mismatch", f"Signature expired: {amz_date} is now earlier than "
                       f"{_fmt(now - expires)} ({_fmt(now)} - {expires} sec.)", json_style)
        if t - now > SKEW_SECONDS:
            raise _err("mismatch", f"Signature not yet current: {amz_date} is still later than "
                       f"{_fmt(now + SKEW_SECONDS)} ({_fmt(now)} + 5 min.)", json_style)
    elif t < now - SKEW_SECONDS:
        raise _err("mismatch", f"Signature expired: {amz_date} is now earlier than "
                   f"{_fmt(now - SKEW_SECONDS)} ({_fmt(now)} - 5 min.)", json_style)
    elif t > now + SKEW_SECONDS:
        raise _err("mismatch", f"Signature not yet current: {amz_date} is still later than "
                   f"{_fmt(now + SKEW_SECONDS)} ({_fmt(now)} + 5 min.)", json_style)

    body = req.raw_body if getattr(req, "raw_body", None) is not None else req.body
    claimed = headers.get("X-Amz-Content-SHA256")
    if claimed is not None and not presigned and claimed != sha256(body).hexdigest():
        raise _err("mismatch", "The provided 'x-amz-content-sha256' header does not match "
                   "what was computed.", json_style)

    signed = {h.strip().lower() for h in params["SignedHeaders"].split(";") if h.strip()}
    if "host" not in signed:
        raise _err("mismatch", "'Host' or ':authority' must be a 'SignedHeader' in the AWS "
                   "Authorization.", json_style)

    raw_path = getattr(req, "raw_path", None) or req.path
    path, _, query = raw_path.partition("?")
    if presigned:
        query = "&".join(p for p in query.split("&")
                         if p.partition("=")[0] != "X-Amz-Signature")
    host = headers.get("Host") or "localhost"
    ar = AWSRequest(method=req.method, url=f"http://{host}{path}" + (f"?{query}" if query else ""),
                    data=body)
    for name, value in headers.items():      # every value of a repeated header
        if name.lower() in signed:
            ar.headers[name] = value
    ar.context["timestamp"] = amz_date

    signer = _Expected(Credentials(key.access_key, key.secret_key), scope.service, scope.region,
                       signed)
    canonical = signer.canonical_request(ar)
    expected = signer.signature(signer.string_to_sign(ar, canonical), ar)
    if not hmac.compare_digest(expected.encode(), params["Signature"].encode("utf-8", "replace")):
        raise _err("mismatch", _MISMATCH, json_style)
    return key, scope
