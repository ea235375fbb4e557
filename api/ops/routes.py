"""Liveness, readiness and the OpenAPI document: all public."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, current_app, jsonify

from api.errors import NotReady
from api.metrics import exposition
from api.openapi import documented, openapi_document
from api.resources import resources, services
from api.schemas import ResponseSchema, respond
from api.security.guards import public

bp = Blueprint("ops", __name__)


class HealthResponse(ResponseSchema):
    status: Literal["ok"] = "ok"


class ReadyResponse(ResponseSchema):
    status: Literal["ok"] = "ok"
    postgres: str
    redis: str


@bp.get("/healthz")
@public
@documented("Liveness: the process serves", response=HealthResponse)
def healthz() -> Response:
    return respond(HealthResponse())


@bp.get("/readyz")
@public
@documented(
    "Readiness: Postgres and Redis answer, and the host is not draining",
    response=ReadyResponse,
    errors=[("service_unavailable", 503)],
)
async def readyz() -> Response:
    checks = await services().ops.readiness()
    if any(state != "ok" for state in checks.values()):
        raise NotReady(checks)
    return respond(ReadyResponse(**checks))


@bp.get("/metrics")
@public
@documented("Prometheus metrics of every worker: requests, latency, logins, revocations, limits")
def metrics() -> Response:
    body, content_type = exposition()
    return Response(body, content_type=content_type)


@bp.get("/openapi.json")
@public
@documented("This OpenAPI 3.1 document of every route")
def openapi() -> Response:
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = openapi_document(
            current_app, password_min_length=resources().settings.password_min_length
        )
    return jsonify(current_app.extensions["openapi"])
