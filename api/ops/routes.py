"""Liveness, readiness, the OpenAPI document and the public keys: all public."""

from __future__ import annotations

from typing import Literal

from flask import Blueprint, Response, current_app, jsonify, request

from api.domain.errors import NotFound, NotReady
from api.edge.lanes import answer_on_loop
from api.edge.metrics import exposition
from api.openapi import documented, openapi_document
from api.ops import jwks as jwks_route
from api.resources import resources, services
from api.schemas import ResponseSchema, respond
from api.security.guards import public
from api.security.shared_secret import require_shared_secret

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
@documented(
    "Prometheus metrics of every worker: requests, latency, logins, revocations, limits. "
    "With METRICS_TOKEN set, only with `Authorization: Bearer <METRICS_TOKEN>`; "
    "404 with METRICS_ENABLED=false",
    errors=[("token_missing", 401), ("token_invalid", 401), ("not_found", 404)],
)
def metrics() -> Response:
    # Public for the access-token guard: this route has a secret of its own, if any.
    settings = resources().settings
    if not settings.metrics_enabled:
        raise NotFound()
    if settings.metrics_token is not None:
        require_shared_secret(settings.metrics_token, request.headers.get("Authorization"))
    body, content_type = exposition()
    return Response(body, content_type=content_type)


class JsonWebKey(ResponseSchema):
    kty: str
    kid: str
    alg: str
    use: Literal["sig"] = "sig"
    n: str | None = None
    e: str | None = None
    crv: str | None = None
    x: str | None = None
    y: str | None = None


class JwksResponse(ResponseSchema):
    keys: list[JsonWebKey]


@bp.get(jwks_route.PATH)
@public
@documented(
    "The public keys that verify tokens (RFC 7517 JWK Set), the signing key first; "
    "empty with HS256. Cache-Control: public, max-age=300",
    response=JwksResponse,
    headers=["Cache-Control"],
)
def jwks() -> Response:
    # GET is answered on the event loop by JwksLane (registered below); this view takes HEAD.
    return Response(
        jwks_route.jwks_body(resources().keys),
        content_type=jwks_route.CONTENT_TYPE,
        headers={"Cache-Control": jwks_route.CACHE_CONTROL},
    )


# Every gateway and service that checks tokens itself fetches the set whenever its cache
# of it expires: GET is answered on the event loop, from bytes made once per worker.
answer_on_loop(bp, jwks_route.JwksLane)


@bp.get("/openapi.json")
@public
@documented(
    "This OpenAPI 3.1 document of every route; 404 with OPENAPI_ENABLED=false",
    errors=[("not_found", 404)],
)
def openapi() -> Response:
    if not resources().settings.openapi_enabled:
        raise NotFound()
    if "openapi" not in current_app.extensions:
        current_app.extensions["openapi"] = openapi_document(
            current_app, password_min_length=resources().settings.password_min_length
        )
    return jsonify(current_app.extensions["openapi"])
