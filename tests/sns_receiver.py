"""A real SNS HTTP endpoint for tests: an aiohttp server on 127.0.0.1 in a thread.

It verifies every message's signature the way SNS receivers do (SigningCertURL → X.509
certificate → RSA PKCS#1 v1.5 over the canonical string, SHA1 for SignatureVersion 1 and
SHA256 for 2), written here independently of the server's code, and it confirms
subscriptions by following SubscribeURL.  ``down()``/``up()`` close and reopen the listening
socket, so deliveries meet a refused connection in between.
"""
from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import urllib.request

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

SIGNED = {"Notification": ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
          "SubscriptionConfirmation": ["Message", "MessageId", "SubscribeURL", "Timestamp",
                                       "Token", "TopicArn", "Type"]}
SIGNED["UnsubscribeConfirmation"] = SIGNED["SubscriptionConfirmation"]


def verify(message: dict) -> None:
    """Raise unless ``message`` carries a valid SNS signature."""
    text = "".join(f"{k}\n{message[k]}\n" for k in SIGNED[message["Type"]] if k in message)
    with urllib.request.urlopen(message["SigningCertURL"], timeout=10) as r:
        cert = x509.load_pem_x509_certificate(r.read())
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}[message["SignatureVersion"]]
    cert.public_key().verify(base64.b64decode(message["Signature"]), text.encode("utf-8"),
                             padding.PKCS1v15(), algorithm)


class Receiver:
    def __init__(self, confirm: bool = True):
        self.confirm = confirm
        self.received: list[dict] = []      # {"headers", "body", "message" (parsed), "verified"}
        self.errors: list[str] = []
        self.delay = 0.0                    # seconds to hold each Notification before answering
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)


    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        item = {"headers": dict(request.headers), "body": body, "message": None, "verified": False}
        try:
            message = json.loads(body)
            item["message"] = message
            await asyncio.to_thread(verify, message)
            item["verified"] = True
            if self.confirm and message["Type"] == "SubscriptionConfirmation":
                await asyncio.to_thread(self._get, message["SubscribeURL"])
        except Exception as exc:  # recorded; tests assert there are none
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.received.append(item)
        if self.delay and item["message"] and item["message"].get("Type") == "Notification":
            await asyncio.sleep(self.delay)     # the sender waits for this answer
        return web.Response(text="ok")

    @staticmethod
    def _get(url: str) -> bytes:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read()

    def up(self) -> None:
        async def start():
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        self._call(start())

    def down(self) -> None:
        """Stop listening and drop kept-alive connections: deliveries are refused."""
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def of_type(self, kind: str) -> list[dict]:
        return [r for r in self.received if r["message"] and r["message"].get("Type") == kind]

    def wait_for(self, predicate, timeout: float = 20.0, what: str = "message") -> dict:
        """The first received item for which ``predicate(message)`` holds."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for item in list(self.received):
                if item["message"] is not None and predicate(item["message"]):
                    return item
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout}s; got "
                             f"{[r['message'] and r['message'].get('Type') for r in self.received]}")
