"""WebSocket gateway (a Cloud Run service, not a function: Cloud Functions cannot hold sockets).

Serves :mod:`stratagem.gateway` on ``$PORT`` (Cloud Run's contract; default 8080) until
SIGTERM, then closes the connections (clients reconnect and catch up from the alert log) and
deletes this instance's Pub/Sub subscription. Configuration is ``Settings.from_env()``, as
for the functions: ``STRATAGEM_BACKEND=gcp`` pulls alerts from Pub/Sub and reads the
Firestore alert log; locally it polls the SQLite alert log under ``STRATAGEM_HOME``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal


async def _main() -> None:
    from stratagem.gateway import run
    from stratagem.settings import Settings

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(Settings.from_env(), host=os.environ.get("HOST", "0.0.0.0"), port=int(os.environ.get("PORT", "8080")),
              stop=stop)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format='{"severity": "%(levelname)s", "message": "%(message)s"}')
    asyncio.run(_main())


if __name__ == "__main__":
    main()
