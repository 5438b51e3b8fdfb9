"""collect (HTTP): tracker and analytics-SDK calls in, validated and enriched events out to Pub/Sub.

An `aio` function: functions-framework serves it as ASGI (uvicorn workers under gunicorn), here and on Cloud Run."""

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from shared.collect import http
from shared.logs import configure_logging

configure_logging()


@functions_framework.aio.http
async def collect(request: Request) -> Response:
    return await http.handle(request)
