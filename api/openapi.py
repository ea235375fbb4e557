"""The OpenAPI 3.1 document, generated from the URL map and the schemas each view declares.

Views declare their body, response and errors once with `@documented`; the same
schemas validate requests, so the document can't drift from the code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from importlib.metadata import version
from typing import Any, TypeVar, cast

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.schemas import NEW_PASSWORD_MARK, parse_body, parse_query
from api.security.guards import is_public, required_permissions
from api.security.transport import (
    ACCESS_COOKIE,
    CSRF_ACCESS_COOKIE,
    CSRF_HEADER,
    CSRF_METHODS,
    CSRF_REFRESH_COOKIE,
    REFRESH_COOKIE,
)

View = TypeVar("View", bound=Callable[..., Any])

# info.version: the package's own (pyproject.toml), so the document says which release it describes.
_PACKAGE_VERSION = version("auth-api")
_SPEC = "_openapi"
_LEFT_OUT = "_openapi_left_out"
_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

# Errors any route can answer, beside the ones it declares.
_COMMON = {"internal_error": 500, "method_not_allowed": 405}
_TOKEN = {"token_missing": 401, "token_invalid": 401, "token_expired": 401, "token_revoked": 401}
TOKEN_ERRORS = tuple(_TOKEN.items())
STORE_ERRORS = (("service_unavailable", 503),)
_BODY = {
    "malformed_json": 400,
    "validation_error": 422,
    "unsupported_media_type": 415,
    "payload_too_large": 413,
}


@dataclass(frozen=True)
class Operation:
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    errors: dict[str, int] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    # Alternatives of OpenAPI security requirements; None: the access token (or nothing
    # for a public view).
    security: tuple[dict[str, list[str]], ...] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    permissions: tuple[str, ...] = ()
    # Optional cookies the view reads besides the token cookies: (name, description).
    cookies: tuple[tuple[str, str], ...] = ()


def documented(
    summary: str,
    *,
    status: int = 200,
    body: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    errors: Iterable[tuple[str, int]] = (),
    headers: Iterable[str] = (),
    security: Iterable[dict[str, list[str]]] | None = None,
    body_required: bool = True,
    query: type[BaseModel] | None = None,
    cookies: Iterable[tuple[str, str]] = (),
) -> Callable[[View], View]:
    """Declare what a view takes and answers: the OpenAPI document reads it, and a view
    declared with a required `body` is called with the request's body parsed into it (as
    its first argument); one declared with a `query` schema, with the query string parsed
    into it (first, or after the body).
    """
    operation = Operation(
        summary,
        status,
        body,
        response,
        dict(errors),
        tuple(headers),
        None if security is None else tuple(security),
        body_required,
        query,
        cookies=tuple(cookies),
    )

    def mark(view: View) -> View:
        target: Any = view
        if query is not None:
            query_schema = query

            @functools.wraps(view)
            async def with_query(*args: Any, **kwargs: Any) -> Any:
                return await view(parse_query(query_schema), *args, **kwargs)

            target = with_query
        if body is not None and body_required:
            schema = body
            inner = target

            @functools.wraps(view)
            async def with_body(*args: Any, **kwargs: Any) -> Any:
                return await inner(parse_body(schema), *args, **kwargs)

            target = with_body
        setattr(target, _SPEC, operation)
        return cast(View, target)

    return mark


def not_in_document(view: View) -> View:
    """Keep a view out of the OpenAPI document: a page for people, not part of the API."""
    setattr(view, _LEFT_OUT, True)
    return view


def is_in_document(view: Callable[..., Any]) -> bool:
    """Whether the OpenAPI document describes `view` (every view, unless left out)."""
    return not getattr(view, _LEFT_OUT, False)


def openapi_document(
    app: Flask, *, password_min_length: int, title: str = "Auth API"
) -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of every documented route of `app`.

    New passwords are documented with the configured minimum length, the one enforced.
    """
    operations: list[tuple[str, str, str, Operation, bool]] = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        operation: Operation | None = getattr(view, _SPEC, None)
        if operation is None or not is_in_document(view):
            continue
        path = _PATH_PARAM.sub(r"{\1}", rule.rule)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for method in methods:
            # operationIds are unique: a rule that takes several methods names each.
            operation_id = rule.endpoint.replace(".", "_")
            if len(methods) > 1:
                operation_id += f"_{method.lower()}"
            operation = _with_permissions(operation, required_permissions(view))
            operations.append((path, method.lower(), operation_id, operation, is_public(view)))
    models = {m for *_, op, _ in operations for m in (op.body, op.response) if m is not None}
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=_REF,
    )
    components = dict(schemas.get("$defs", {}))
    _state_password_minimum(components, password_min_length)
    components["Problem"] = _PROBLEM_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for path, method, operation_id, operation, public in operations:
        paths.setdefault(path, {})[method] = _operation(
            path, method, operation_id, operation, public
        )
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": _PACKAGE_VERSION},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def _with_permissions(operation: Operation, permissions: list[str]) -> Operation:
    if not permissions:
        return operation
    return replace(
        operation,
        summary=f"{operation.summary}. Permission: {', '.join(permissions)}",
        # MFA_REQUIRED_ROLES: a role listed there uses its permissions with a second factor.
        errors={
            **operation.errors,
            "forbidden": 403,
            "mfa_required": 401,
            "mfa_enrollment_required": 403,
        },
        permissions=tuple(permissions),
    )


def _state_password_minimum(components: dict[str, Any], min_length: int) -> None:
    for schema in components.values():
        for member in schema.get("properties", {}).values():
            if member.pop(NEW_PASSWORD_MARK, False):
                member["minLength"] = min_length
                member["description"] = (
                    f"At least {min_length} characters, counted as sent (never trimmed); "
                    "not a common password, nor one character repeated."
                )


def _security(method: str, op: Operation, public: bool) -> list[dict[str, list[str]]]:
    if op.security is not None:
        return list(op.security)
    if public:
        return []
    # OpenAPI 3.1 lets any scheme list the roles it needs: the permissions, here.
    needed = list(op.permissions)
    cookie: dict[str, list[str]] = {"accessCookie": needed}
    if method.upper() in CSRF_METHODS:
        cookie["csrfToken"] = []
    return [{"bearer": needed}, cookie]


def _operation(
    path: str, method: str, operation_id: str, op: Operation, public: bool
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "operationId": operation_id,
        "summary": op.summary,
        "security": _security(method, op, public),
        "responses": _responses(op, public),
    }
    if op.permissions:
        result["x-permissions"] = list(op.permissions)
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in re.findall(r"{([^}]+)}", path)
    ]
    if op.query is not None:
        params += _query_parameters(op.query)
    params += [
        {
            "name": name,
            "in": "cookie",
            "required": False,
            "description": text,
            "schema": {"type": "string"},
        }
        for name, text in op.cookies
    ]
    if params:
        result["parameters"] = params
    if op.body is not None:
        result["requestBody"] = {
            "required": op.body_required,
            "content": {
                "application/json": {"schema": {"$ref": _REF.format(model=op.body.__name__)}}
            },
        }
    return result


def _query_parameters(schema: type[BaseModel]) -> list[dict[str, Any]]:
    document = schema.model_json_schema()
    required = set(document.get("required", ()))
    parameters = []
    for name, member in document.get("properties", {}).items():
        member = {k: v for k, v in member.items() if k != "title"}
        description = member.pop("description", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": member,
        }
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _responses(op: Operation, public: bool) -> dict[str, Any]:
    success: dict[str, Any] = {"description": HTTPStatus(op.status).phrase}
    if op.response is not None:
        success["content"] = {
            "application/json": {"schema": {"$ref": _REF.format(model=op.response.__name__)}}
        }
    if op.headers:
        success["headers"] = {h: {"schema": {"type": "string"}} for h in op.headers}
    responses: dict[str, Any] = {str(op.status): success}
    errors = {**_COMMON, **op.errors}
    if op.body is not None:
        errors.update(_BODY)
    if op.query is not None:
        errors["validation_error"] = 422
    if not public:
        errors.update(_TOKEN)
    by_status: dict[int, list[str]] = {}
    for code, status in errors.items():
        by_status.setdefault(status, []).append(code)
    for status, codes in sorted(by_status.items()):
        responses[str(status)] = {
            "description": f"{HTTPStatus(status).phrase}: " + ", ".join(sorted(codes)),
            "content": {
                "application/problem+json": {"schema": {"$ref": _REF.format(model="Problem")}}
            },
        }
    return responses


SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token: `Authorization: Bearer <access token>`.",
    },
    "accessCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": ACCESS_COOKIE,
        "description": 'The access token set by a login with `"transport": "cookie"`.',
    },
    "refreshBearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A refresh token: `Authorization: Bearer <refresh token>`. "
        'It may instead travel in the JSON body, `{"refresh_token": "..."}`.',
    },
    "refreshCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": REFRESH_COOKIE,
        "description": 'The refresh token set by a login with `"transport": "cookie"`; '
        "sent with the CSRF echo.",
    },
    "csrfToken": {
        "type": "apiKey",
        "in": "header",
        "name": CSRF_HEADER,
        "description": "Cookie transport, state-changing requests: the value of the "
        f"`{CSRF_ACCESS_COOKIE}` cookie (access token) or `{CSRF_REFRESH_COOKIE}` "
        "(refresh).",
    },
}
# POST /auth/refresh: a bearer refresh token, the refresh cookie with its CSRF echo, or
# none of them and the token in the JSON body.
REFRESH_SECURITY: tuple[dict[str, list[str]], ...] = (
    {"refreshBearer": []},
    {"refreshCookie": [], "csrfToken": []},
    {},
)


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        # `401 mfa_required` answering a correct password: what finishes the login.
        "mfa_token": {"type": "string"},
        "methods": {
            "type": "array",
            "items": {"type": "string", "enum": ["totp", "recovery_code"]},
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
