"""The URL conf of the Django tests (``ROOT_URLCONF``), and its views.

- ``/sync/<api>/...`` and ``/async/<api>/...``: every API of the conformance
  suite, through sync and async views;
- ``/observability/...``: the API the ``OBSERVABILIPY`` setting describes
  (``include("observabilipy.django.urls")``);
- application views the middleware records: ``/users/<int:user_id>``,
  ``/async-users/<int:user_id>``, ``/boom``, ``/async-boom``, ``/stream``,
  ``/async-stream``, ``/missing/<slug:name>`` (raises Http404), ``/slow/<int:n>``,
  and ``/instrumented/...`` views decorated with ``instrument_view``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import include, path, re_path

from observabilipy.core.http.conformance import APIS, build_api
from observabilipy.django import instrument_view, observability_urls

logger = logging.getLogger("tests.django.views")


def user(request: Any, user_id: int) -> JsonResponse:
    logger.info("looking up user %s", user_id)
    return JsonResponse({"id": user_id, "pid": os.getpid()})


async def async_user(request: Any, user_id: int) -> JsonResponse:
    logger.info("looking up user %s asynchronously", user_id)
    return JsonResponse({"id": user_id})


def boom(request: Any) -> HttpResponse:
    raise RuntimeError("the view failed")


async def async_boom(request: Any) -> HttpResponse:
    raise RuntimeError("the async view failed")


def stream(request: Any) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        yield b"a"
        yield b"b"

    return StreamingHttpResponse(chunks())


async def async_stream(request: Any) -> StreamingHttpResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a"
        await asyncio.sleep(0)
        yield b"b"

    return StreamingHttpResponse(chunks())


def missing(request: Any, name: str) -> HttpResponse:
    raise Http404(name)


def legacy(request: Any, year: str) -> HttpResponse:
    return HttpResponse(year)


def slow(request: Any, n: int) -> JsonResponse:
    time.sleep(0.05)  # keeps this worker busy: concurrent requests spread over the others
    return JsonResponse({"n": n, "pid": os.getpid()})


@instrument_view
def instrumented(request: Any, item_id: int) -> HttpResponse:
    logger.info("instrumented view")
    return HttpResponse(str(item_id))


@instrument_view(route="/instrumented-async/{id}")
async def instrumented_async(request: Any, item_id: int) -> HttpResponse:
    return HttpResponse(str(item_id))


@instrument_view
def instrumented_missing(request: Any) -> HttpResponse:
    raise Http404("nothing here")


urlpatterns = [
    *(path(f"sync/{name}", include(observability_urls(build_api(name)))) for name in APIS),
    *(
        path(f"async/{name}", include(observability_urls(build_api(name), async_views=True)))
        for name in APIS
    ),
    path("", include("observabilipy.django.urls")),
    path("users/<int:user_id>", user),
    path("async-users/<int:user_id>", async_user),
    path("boom", boom),
    path("async-boom", async_boom),
    path("stream", stream),
    path("async-stream", async_stream),
    path("missing/<slug:name>", missing),
    path("slow/<int:n>", slow),
    re_path(r"^legacy/(?P<year>[0-9]{4})/$", legacy),
    path("instrumented/<int:item_id>", instrumented),
    path("instrumented-async/<int:item_id>", instrumented_async),
    path("instrumented-missing", instrumented_missing),
]
