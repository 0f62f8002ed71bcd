"""instrument_dependency: each endpoint call counted (success or error) and timed, like @instrument."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from fastapi import APIRouter, FastAPI, HTTPException

from observabilipy.core.errors import ConfigurationError
from observabilipy.core.metrics import Counter, Histogram, Registry
from observabilipy.fastapi import instrument_dependency

if TYPE_CHECKING:  # mypy sees the helpers by their path; pytest by conftest's sys.path
    from tests.fastapi._fastapi_support import send
else:
    from _fastapi_support import send


def calls(registry: Registry, name: str, **labels: str) -> dict[str, float]:
    family = registry.get(f"{name}_calls_total")
    assert isinstance(family, Counter)
    return {status: family.labels(status=status, **labels).value for status in ("success", "error")}


def timed(registry: Registry, name: str, **labels: str) -> tuple[int, float]:
    family = registry.get(f"{name}_duration_seconds")
    assert isinstance(family, Histogram)
    child = family.labels(**labels)
    return child.count, child.sum


async def test_success_and_errors_are_counted_and_timed() -> None:
    registry = Registry()
    app = FastAPI()
    instrumented = [instrument_dependency("checkout", registry=registry, shop="eu")]

    @app.post("/checkout/{cart}", dependencies=instrumented)
    async def checkout(cart: str) -> dict[str, str]:
        if cart == "empty":
            raise HTTPException(status_code=400, detail="empty cart")
        if cart == "broken":
            raise RuntimeError("payment service down")
        await asyncio.sleep(0.01)
        return {"cart": cart}

    for cart in ("a", "b", "empty"):
        await send(app, "POST", f"/checkout/{cart}")
    with pytest.raises(RuntimeError, match="payment service down"):
        await send(app, "POST", "/checkout/broken")
    assert calls(registry, "checkout", shop="eu") == {"success": 2.0, "error": 2.0}
    count, total = timed(registry, "checkout", shop="eu")
    assert count == 4
    assert total > 0


async def test_the_response_is_unchanged() -> None:
    registry = Registry()
    app = FastAPI()

    @app.get("/items/{item_id}", dependencies=[instrument_dependency("items", registry=registry)])
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    answer = await send(app, "GET", "/items/4")
    assert (answer.status, answer.json()) == (200, {"id": 4})
    assert (await send(app, "GET", "/items/x")).status == 422  # validation: before the endpoint


async def test_the_name_defaults_to_the_route_name() -> None:
    registry = Registry()
    app = FastAPI()
    router = APIRouter(dependencies=[instrument_dependency(registry=registry)])

    @router.get("/users")
    async def list_users() -> list[str]:
        return []

    @router.get("/users/{user_id}", name="read-user.v2")
    def read_user(user_id: int) -> dict[str, int]:  # sync: run in a thread
        return {"id": user_id}

    app.include_router(router)
    await send(app, "GET", "/users")
    await send(app, "GET", "/users/1")
    await send(app, "GET", "/users/2")
    assert calls(registry, "list_users") == {"success": 1.0, "error": 0.0}
    assert calls(registry, "read_user_v2") == {"success": 2.0, "error": 0.0}


async def test_an_awaiting_endpoint_is_timed() -> None:
    registry = Registry()
    app = FastAPI()

    @app.get("/slow", dependencies=[instrument_dependency("slow", registry=registry)])
    async def slow() -> str:
        await asyncio.sleep(0.02)
        return "done"

    await send(app, "GET", "/slow")
    count, total = timed(registry, "slow")
    assert count == 1
    assert total > 0


def test_bad_options() -> None:
    with pytest.raises(ConfigurationError, match="'status' is set"):
        instrument_dependency("x", status="ok")
    registry = Registry()
    registry.gauge("taken_calls_total")
    with pytest.raises(ConfigurationError):
        instrument_dependency("taken", registry=registry)


def test_custom_buckets() -> None:
    registry = Registry()
    instrument_dependency("bucketed", registry=registry, buckets=(0.1, 1.0))
    family = registry.get("bucketed_duration_seconds")
    assert isinstance(family, Histogram)
    assert [bound for bound, _ in family.labels().buckets] == [0.1, 1.0, float("inf")]
