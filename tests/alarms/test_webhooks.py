"""The webhook destination policy: defaults, allow over deny, names, resolved addresses."""
from __future__ import annotations

import asyncio

import pytest

from alarms.webhooks import EndpointRefused, WebhookPolicy, resolver, split

DEFAULT = WebhookPolicy()

CASES = [
    # (policy, url, refused?)
    (DEFAULT, "http://127.0.0.1:8080/hook", False),
    (DEFAULT, "http://localhost:8080/hook", False),        # names are checked once resolved
    (DEFAULT, "http://[::1]:8080/hook", False),
    (DEFAULT, "https://hooks.example.com/x", False),
    (DEFAULT, "http://10.1.2.3/hook", False),
    (DEFAULT, "http://169.254.169.254/latest/meta-data/", True),
    (DEFAULT, "http://169.254.10.20:80/", True),
    (DEFAULT, "http://[fd00:ec2::254]/latest", True),
    (DEFAULT, "http://[fe80::1%25eth0]:80/", True),
    (DEFAULT, "http://[::ffff:169.254.169.254]/", True),    # IPv4-mapped
    (DEFAULT, "http://0.0.0.0:4566/", True),
    (DEFAULT, "http://[::]:4566/", True),
    (WebhookPolicy(deny=[]), "http://169.254.169.254/", False),
    (WebhookPolicy(allow=["169.254.169.254"]), "http://169.254.169.254/", False),
    (WebhookPolicy(allow=["169.254.169.254"]), "http://127.0.0.1/", True),   # allow is exclusive
    (WebhookPolicy(allow=["10.0.0.0/8"]), "http://10.9.9.9/", False),
    (WebhookPolicy(allow=["10.0.0.0/8"]), "http://hooks.example.com/", False),  # decided on use
    (WebhookPolicy(allow=[".example.com"]), "http://hooks.example.com/", False),
    (WebhookPolicy(allow=[".example.com"]), "http://example.com/", False),
    (WebhookPolicy(allow=[".example.com"]), "http://example.org/", True),
    (WebhookPolicy(allow=[".example.com"]), "http://127.0.0.1/", True),
    (WebhookPolicy(deny=["metadata.google.internal", "10.0.0.0/8"]),
     "http://METADATA.google.internal./", True),
    (WebhookPolicy(deny=["metadata.google.internal", "10.0.0.0/8"]), "http://10.0.0.1/", True),
    (WebhookPolicy(deny=["metadata.google.internal", "10.0.0.0/8"]), "http://169.254.169.254/",
     False),
]


@pytest.mark.parametrize("policy, url, refused", CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(CASES)])
def test_check_url(policy, url, refused):
    assert (policy.check_url(url) is not None) is refused


def test_reason_names_the_flag():
    assert DEFAULT.check_url("http://169.254.169.254/") == (
        "destination 169.254.169.254 is refused by --webhook-deny")
    assert WebhookPolicy(allow=["10.0.0.0/8"]).check_url("http://192.168.1.1/") == (
        "destination 192.168.1.1 is not in --webhook-allow")


def test_resolved_addresses_are_filtered():
    kept, reason = DEFAULT.check_resolved("evil.example", ["169.254.169.254", "203.0.113.7"])
    assert kept == ["203.0.113.7"]
    assert reason == "destination 169.254.169.254 is refused by --webhook-deny"
    assert DEFAULT.check_resolved("evil.example", ["169.254.169.254"])[0] == []
    # a host name allowed by name may use whatever it resolves to
    named = WebhookPolicy(allow=["metadata.internal"])
    assert named.check_resolved("metadata.internal", ["169.254.169.254"]) == (["169.254.169.254"], None)


def test_bad_entries_and_splitting():
    with pytest.raises(ValueError, match="--webhook-deny: 'http://x/' is neither"):
        WebhookPolicy(deny=["http://x/"])
    assert split("10.0.0.0/8, .example.com  127.0.0.1") == ["10.0.0.0/8", ".example.com", "127.0.0.1"]


def test_resolver_refuses_a_name_resolving_to_a_denied_address():
    policy = WebhookPolicy(deny=["127.0.0.0/8", "::1"])

    async def go():
        r = resolver(policy)
        try:
            with pytest.raises(EndpointRefused, match="localhost resolves to refused addresses"):
                await r.resolve("localhost", 80)
            assert await resolver(DEFAULT).resolve("localhost", 80)
        finally:
            await r.close()

    asyncio.run(go())
