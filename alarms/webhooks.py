"""Which webhook destinations the server may send requests to.

Alarm actions and SNS Publish make the server POST to URLs that API callers chose, so an
unchecked endpoint would let any caller reach what the server can reach: the cloud metadata
service (169.254.169.254, fd00:ec2::254), link-local hosts, "this host" (0.0.0.0).  The
policy is two lists of entries, each a CIDR block, an IP address or a host name
(``example.com`` is that host, ``.example.com`` the domain and its subdomains):

* an endpoint that matches ``--webhook-allow`` is allowed (the allow list wins over the
  deny list, so it can open a hole in it);
* when the allow list is not empty, anything it does not match is refused;
* otherwise what matches ``--webhook-deny`` is refused (by default
  :data:`DEFAULT_DENY`), and the rest, loopback included, is allowed.

The check runs twice: at Subscribe on the URL's host (an IP literal or a host name; names
are not resolved then, as SNS does not resolve them either), and at delivery on every
address the host name resolves to, inside the HTTP client's resolver, so the connection
goes only to addresses that passed (no window for DNS rebinding between check and use).
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

DEFAULT_DENY = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8", "::/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class EndpointRefused(Exception):
    """A webhook destination the policy refuses (not an OSError: never retried)."""


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip("[]").split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped       # ::ffff:169.254.169.254 is 169.254.169.254
    return address


@dataclass(frozen=True)
class _Entries:
    networks: tuple[Network, ...]
    hosts: tuple[str, ...]           # exact names
    domains: tuple[str, ...]         # ".example.com" suffixes

    @classmethod
    def parse(cls, entries: Iterable[str], flag: str) -> "_Entries":
        networks, hosts, domains = [], [], []
        for raw in entries:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.rstrip(".")
            if "/" in name or ":" in name or not name.strip("."):
                raise ValueError(f"{flag}: {raw!r} is neither a CIDR block, an IP address nor "
                                 f"a host name")
            (domains if name.startswith(".") else hosts).append(name)
        return cls(tuple(networks), tuple(hosts), tuple(domains))

    def __bool__(self) -> bool:
        return bool(self.networks or self.hosts or self.domains)

    def match_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(d) or host == d[1:] for d in self.domains)

    def match_address(self, address) -> bool:
        return any(address.version == n.version and address in n for n in self.networks)


class WebhookPolicy:
    """The allow/deny decision for webhook destinations (see the module docstring)."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = DEFAULT_DENY):
        self.allow = _Entries.parse(allow, "--webhook-allow")
        self.deny = _Entries.parse(deny, "--webhook-deny")

    @classmethod
    def from_config(cls, config) -> "WebhookPolicy":
        allow = getattr(config, "webhook_allow", None) or ()
        deny = getattr(config, "webhook_deny", None)
        return cls(split(allow), DEFAULT_DENY if deny is None else split(deny))

    def _address_refusal(self, address) -> str | None:
        if self.allow.match_address(address):
            return None
        if self.allow:
            return f"destination {address} is not in --webhook-allow"
        if self.deny.match_address(address):
            return f"destination {address} is refused by --webhook-deny"
        return None

    def check_host(self, host: str) -> str | None:
        """Why the host of a URL is refused before any resolution, or None.  For a host
        name only the name entries can decide; its addresses are checked at delivery."""
        address = _address(host)
        if address is not None:
            return self._address_refusal(address)
        if self.allow.match_host(host):
            return None
        if self.deny.match_host(host):
            return f"destination {host} is refused by --webhook-deny"
        if self.allow and not self.allow.networks:
            return f"destination {host} is not in --webhook-allow"
        return None

    def check_url(self, url: str) -> str | None:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            return "the endpoint is not a valid URL"
        if not host:
            return "the endpoint has no host"
        return self.check_host(host)

    def check_resolved(self, host: str, addresses: list[str]) -> tuple[list[str], str | None]:
        """The resolved addresses of ``host`` a connection may use, and the reason the
        others were refused.  A host name on the allow list may use all of them."""
        if _address(host) is None and self.allow.match_host(host):
            return list(addresses), None
        kept, reason = [], None
        for text in addresses:
            address = _address(text)
            why = "unparseable address" if address is None else self._address_refusal(address)
            if why is None:
                kept.append(text)
            else:
                reason = reason or why
        return kept, reason


def split(value) -> list[str]:
    """A flag or environment value (comma- or space-separated) as a list of entries."""
    if isinstance(value, str):
        return [p for p in value.replace(",", " ").split() if p]
    return [p for v in value for p in split(v)]


def resolver(policy: WebhookPolicy):
    """An aiohttp resolver that resolves as usual, then keeps only the addresses ``policy``
    allows; :class:`EndpointRefused` when none is left.  aiohttp does not call resolvers for
    IP literals: the deliverer checks those with :meth:`WebhookPolicy.check_host`."""
    from aiohttp.resolver import DefaultResolver

    class PolicyResolver(DefaultResolver):
        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
            found = await super().resolve(host, port, family)
            kept, reason = policy.check_resolved(host, [r["host"] for r in found])
            if not kept:
                raise EndpointRefused(f"{host} resolves to refused addresses: {reason}")
            return [r for r in found if r["host"] in kept]

    return PolicyResolver()


__all__ = ["WebhookPolicy", "EndpointRefused", "DEFAULT_DENY", "resolver", "split"]
