"""The example's views: a sync one, an async one, and one that fails."""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, JsonResponse

logger = logging.getLogger("shop")


def home(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"service": "shop"})


def user(request: HttpRequest, user_id: int) -> JsonResponse:
    logger.info("looking up user %s", user_id)  # the entry carries the request id
    if user_id > 1000:
        raise Http404("no such user")
    return JsonResponse({"id": user_id})


async def order(request: HttpRequest, order_id: int) -> JsonResponse:
    logger.info("looking up order %s", order_id)
    return JsonResponse({"id": order_id})


def fail(request: HttpRequest) -> JsonResponse:
    raise RuntimeError("the database timed out")
