"""``metricstore serve``: run the server until SIGINT/SIGTERM."""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from alarms.webhooks import WebhookPolicy

from .app import make_app
from .config import from_args


def main(argv=None) -> int:
    command, cfg = from_args(argv)
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if command == "serve":
        try:
            cfg.load_keys()
        except (OSError, ValueError) as e:
            logging.getLogger("metricstore").error("cannot load credentials: %s", e)
            return 2
        try:
            WebhookPolicy.from_config(cfg)
        except ValueError as e:
            logging.getLogger("metricstore").error("invalid webhook policy: %s", e)
            return 2
        app = make_app(cfg)
        url = f"http://{cfg.host}:{cfg.port}"
        if cfg.keys is None:
            mode = f"account {cfg.account_id}, auth off: any access key is accepted"
        else:
            accounts = sorted({k.account_id for k in cfg.keys.values()})
            admins = sum(1 for k in cfg.keys.values() if k.admin)
            mode = (f"auth on: SigV4 with {len(cfg.keys)} key(s) from {cfg.credentials}, "
                    f"{len(accounts)} account(s), {admins} admin key(s)")

        async def announce(app):
            logging.getLogger("metricstore").info(
                "metricstore listening on %s (data in %s, region %s, %s)",
                url, cfg.db_path, cfg.region, mode)
        app.on_startup.append(announce)
        web.run_app(app, host=cfg.host, port=cfg.port, print=None, access_log=None,
                    handle_signals=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
