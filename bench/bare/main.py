"""The baselines: bare functions-framework HTTP handlers that read the body and answer like collect.

`bare` is functions-framework's default (Flask, WSGI, gunicorn threads): the issue's baseline. `bare_async` is the
same handler as an `aio` function, served as collect is (ASGI, uvicorn workers): what the HTTP server alone costs."""

import flask
import functions_framework
import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

ANSWER = b'{"success":true,"accepted":1}'


@functions_framework.http
def bare(request: flask.Request) -> flask.Response:
    request.get_data(cache=False)
    return flask.Response(ANSWER, mimetype="application/json")


@functions_framework.aio.http
async def bare_async(request: Request) -> Response:
    await request.body()
    return Response(ANSWER, media_type="application/json")
