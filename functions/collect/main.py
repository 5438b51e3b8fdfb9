"""collect (HTTP): tracker and analytics-SDK calls in, validated and enriched events out to Pub/Sub."""

import flask
import functions_framework

from shared.collect import http
from shared.logs import configure_logging

configure_logging()


@functions_framework.http
def collect(request: flask.Request) -> flask.Response:
    return http.handle(request)
