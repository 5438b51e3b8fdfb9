"""The baseline: a bare functions-framework HTTP handler that reads the body and answers like collect."""

import flask
import functions_framework


@functions_framework.http
def bare(request: flask.Request) -> flask.Response:
    request.get_data(cache=False)
    return flask.Response(b'{"success":true,"accepted":1}', mimetype="application/json")
