"""Request middleware and the log context: a handler's own logs carry the request id.

observabilipy's middleware takes the request id from the ``x-request-id``
header (or makes one), echoes it in the response and puts it in the log
context for the whole request, so every ``logger.info`` inside the handler is
stored with ``request_id``, without passing it around.  The script calls the
app in-process with httpx's ASGI transport, so it needs no server and ends by itself.

    python examples/middleware_log_context.py

Needs ``pip install observabilipy-fastapi httpx``.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import FastAPI

from observabilipy.core import InMemoryLogStorage, ObservabilipyHandler, Registry
from observabilipy.fastapi import add_observability

logs = InMemoryLogStorage()
handler = ObservabilipyHandler(logs)
logger = logging.getLogger("checkout")
logger.setLevel(logging.INFO)
logger.addHandler(handler)
logger.propagate = False

app = FastAPI()


@app.post("/carts/{cart_id}/checkout")
async def checkout(cart_id: int) -> dict[str, object]:
    """Two log lines of the application's own; neither mentions a request id."""
    logger.info("checkout started", extra={"cart": cart_id})
    logger.info("payment authorised", extra={"cart": cart_id})
    return {"cart": cart_id, "status": "paid"}


add_observability(app, log_storage=logs, registry=Registry())


async def main() -> None:
    """Send two requests, one with a caller's request id, then show the stored logs."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
        given = await client.post("/carts/7/checkout", headers={"x-request-id": "abc-123"})
        made = await client.post("/carts/8/checkout")
    print(f"echoed x-request-id: {given.headers['x-request-id']}")
    print(f"generated x-request-id: {made.headers['x-request-id']}")
    handler.flush()

    for entry in logs.read_sync():
        request_id = entry.attributes.get("request_id")
        print(f"{entry.level:<5} {entry.message:<35} request_id={request_id}")
    handler.close()


if __name__ == "__main__":
    asyncio.run(main())
