"""FastAPI apps that tests/fastapi/test_servers.py serves with uvicorn (``--app-dir`` here).

``app``: in memory, one process.  ``sqlite_app()`` (a factory, one call per
worker): the same on the SQLite file named by ``OBSERVABILIPY_TEST_DB``, its
runtime started in the lifespan so that every worker snapshots its registry.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, HTTPException, Response

from observabilipy.core.runtime import EmbeddedRuntime
from observabilipy.fastapi import add_observability


def build(
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """Items at ``/items/{item_id}`` (404 for id 0), its pid in a header."""
    app = FastAPI(lifespan=lifespan)

    @app.get("/items/{item_id}")
    async def read_item(item_id: int, response: Response) -> dict[str, int]:
        response.headers["x-pid"] = str(os.getpid())
        if item_id == 0:
            raise HTTPException(status_code=404, detail="no item 0")
        return {"id": item_id}

    return app


app = build()
add_observability(app)


def sqlite_app() -> FastAPI:
    """The app on the shared SQLite file: one per worker process (uvicorn --factory)."""
    from observabilipy.sqlite import SQLiteDatabase, SQLiteLogStorage, SQLiteMetricsStorage

    database = SQLiteDatabase(os.environ["OBSERVABILIPY_TEST_DB"])
    logs = SQLiteLogStorage(database)
    metrics = SQLiteMetricsStorage(database)
    runtime = EmbeddedRuntime(metrics_storage=metrics, snapshot_interval=0.2)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            yield
        database.close()

    served = build(lifespan)
    add_observability(served, log_storage=logs, metrics_storage=metrics, runtime=runtime)
    return served
