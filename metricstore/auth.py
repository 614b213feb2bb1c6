"""Who is calling: the SigV4 credential scope (access key, date, region, service).

Signature verification is a later step (issue #6); :func:`identify` is the hook where it
will go.  With auth off, any access key is accepted and the account is the configured one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_CRED = re.compile(r"Credential=([^/,\s]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Scope:
    access_key: str
    date: str
    region: str
    service: str


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


def identify(req, config) -> tuple[str, str, str | None]:
    """(account id, region, access key) for a request.

    Region: from the credential scope, else the server's default region.
    """
    scope = credential_scope(req)
    region = scope.region if scope else config.region
    return config.account_id, region, scope.access_key if scope else None
