"""``metricstore serve``: run the server until SIGINT/SIGTERM."""
from __future__ import annotations

import logging
import sys

from aiohttp import web

from .app import make_app
from .config import from_args


def main(argv=None) -> int:
    command, cfg = from_args(argv)
    logging.basicConfig(level=cfg.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if command == "serve":
        app = make_app(cfg)
        url = f"http://{cfg.host}:{cfg.port}"

        async def announce(app):
            logging.getLogger("metricstore").info(
                "metricstore listening on %s (data in %s, account %s, region %s, auth off)",
                url, cfg.db_path, cfg.account_id, cfg.region)
        app.on_startup.append(announce)
        web.run_app(app, host=cfg.host, port=cfg.port, print=None, access_log=None,
                    handle_signals=True)
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
