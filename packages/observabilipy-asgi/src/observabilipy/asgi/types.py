"""The ASGI 3 callable types, spelled out so that no ASGI library is needed.

>>> async def app(scope: Scope, receive: Receive, send: Send) -> None:
...     await send({"type": "http.response.start", "status": 204, "headers": []})
...     await send({"type": "http.response.body", "body": b""})
>>> hello: ASGIApp = app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

#: The connection scope: ``type``, ``path``, ``headers``...
Scope: TypeAlias = MutableMapping[str, Any]
#: An event received from or sent to the server.
Message: TypeAlias = MutableMapping[str, Any]
#: Awaits the next event from the server.
Receive: TypeAlias = Callable[[], Awaitable[Message]]
#: Sends an event to the server.
Send: TypeAlias = Callable[[Message], Awaitable[None]]
#: An ASGI 3 application.
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]
