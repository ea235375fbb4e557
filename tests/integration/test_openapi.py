"""GET /openapi.json: an OpenAPI 3.1 document of every route, with resolvable schemas."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

import httpx
import pytest

from api import create_app
from api.config.settings import Settings
from api.openapi import is_in_document
from tests.integration.conftest import start_harness

PATH_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")
REF_PREFIX = "#/components/schemas/"


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"
    assert document["info"]["title"]


def test_every_rule_of_the_url_map_is_documented(
    document: dict[str, Any], settings: Settings
) -> None:
    app = create_app(settings)
    expected = {
        (method.lower(), PATH_PARAM.sub(r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if is_in_document(app.view_functions[rule.endpoint])
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    documented = {(method, path) for path, method, _ in operations(document)}
    assert expected - documented == set()
    left_out = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if not is_in_document(app.view_functions[rule.endpoint])
    }
    # Only the Swagger UI page and its files: pages for people, not part of the API.
    assert left_out == {"docs.page", "docs.asset"}
    assert not any(path.startswith("/docs") for path in document["paths"])


@pytest.mark.parametrize("path", ["/auth/register", "/auth/login"])
def test_request_body_ref_resolves_to_a_component_schema(
    document: dict[str, Any], path: str
) -> None:
    body = document["paths"][path]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref.startswith(REF_PREFIX)
    schema = document["components"]["schemas"][ref.removeprefix(REF_PREFIX)]
    assert {"email", "password"} <= set(schema["properties"])
    assert {"email", "password"} <= set(schema["required"])


def test_every_ref_in_the_document_resolves(document: dict[str, Any]) -> None:
    refs: list[str] = []

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend(v for k, v in node.items() if k == "$ref")
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(document)
    schemas = document["components"]["schemas"]
    assert refs
    assert [r for r in refs if r.removeprefix(REF_PREFIX) not in schemas] == []


def test_every_error_response_is_problem_json(document: dict[str, Any]) -> None:
    without_problem = [
        (method, path, status)
        for path, method, operation in operations(document)
        for status, response in operation["responses"].items()
        if int(status) >= 400 and "application/problem+json" not in response.get("content", {})
    ]
    assert without_problem == []


def test_guarded_operations_document_token_errors(document: dict[str, Any]) -> None:
    for path, method, operation in operations(document):
        if operation["security"]:
            assert "401" in operation["responses"], (method, path)


async def test_new_passwords_document_the_configured_minimum_length(settings: Settings) -> None:
    _, harness = await start_harness(replace(settings, password_min_length=16))
    try:
        async with harness.client:
            document = (await harness.client.get("/openapi.json")).json()
            short = await harness.client.post(
                "/auth/register", json={"email": "sixteen@example.com", "password": "x1" * 7 + "y"}
            )
    finally:
        await harness.runtime.stop()
    schemas = document["components"]["schemas"]
    assert schemas["RegisterRequest"]["properties"]["password"]["minLength"] == 16
    assert schemas["ChangePasswordRequest"]["properties"]["new_password"]["minLength"] == 16
    # Existing passwords are checked whatever their length: only "not empty" is documented.
    assert schemas["LoginRequest"]["properties"]["password"]["minLength"] == 1
    assert schemas["DeleteAccountRequest"]["properties"]["password"]["minLength"] == 1
    assert "x-new-password" not in json.dumps(document)
    assert short.json()["errors"] == [
        {"field": "password", "message": "Use at least 16 characters."}
    ]


def test_refresh_documents_every_way_to_send_the_refresh_token(document: dict[str, Any]) -> None:
    refresh = document["paths"]["/auth/refresh"]["post"]
    assert refresh["security"] == [
        {"refreshBearer": []},
        {"refreshCookie": [], "csrfToken": []},
        {},
    ]
    body = refresh["requestBody"]
    assert body["required"] is False
    ref = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.removeprefix(REF_PREFIX)]
    # Optional: a body without it (`{}`) leaves the cookie to present the token.
    assert "refresh_token" in schema["properties"]
    assert "required" not in schema
    schemes = document["components"]["securitySchemes"]
    assert schemes["refreshBearer"] == {**schemes["refreshBearer"], "scheme": "bearer"}
    assert (schemes["refreshCookie"]["in"], schemes["refreshCookie"]["name"]) == (
        "cookie",
        "refresh_token_cookie",
    )
    assert (schemes["csrfToken"]["in"], schemes["csrfToken"]["name"]) == ("header", "X-CSRF-Token")


def test_guarded_operations_take_the_bearer_or_the_cookie_with_csrf_when_it_changes_state(
    document: dict[str, Any],
) -> None:
    assert document["paths"]["/me"]["get"]["security"] == [{"bearer": []}, {"accessCookie": []}]
    assert document["paths"]["/auth/logout"]["post"]["security"] == [
        {"bearer": []},
        {"accessCookie": [], "csrfToken": []},
    ]


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("path", ["/auth/verify", "/auth/verify/", "/auth/verify/{forwarded_path}"])
def test_verify_is_documented_for_every_method(document: dict[str, Any], path: str) -> None:
    assert set(document["paths"][path]) == {"get", "post", "put", "patch", "delete"}


def test_login_documents_the_device_token_in_request_response_and_cookie(
    document: dict[str, Any],
) -> None:
    schemas = document["components"]["schemas"]
    request = schemas["LoginRequest"]["properties"]["device_token"]
    assert {"type": "string", "maxLength": 256} in request["anyOf"]
    assert "device_token" not in schemas["LoginRequest"].get("required", [])
    assert "device_token" in schemas["LoginTokenResponse"]["required"]
    login = document["paths"]["/auth/login"]["post"]
    success = login["responses"]["200"]["content"]["application/json"]["schema"]
    assert success == {"$ref": "#/components/schemas/LoginResponse"}
    variants = {v["$ref"].rsplit("/", 1)[1] for v in schemas["LoginResponse"]["anyOf"]}
    assert variants == {"LoginTokenResponse", "CookieTokenResponse"}
    [cookie] = [p for p in login["parameters"] if p["in"] == "cookie"]
    assert cookie["name"] == "device_token" and cookie["required"] is False
    # Refresh issues no device token.
    refreshed = document["paths"]["/auth/refresh"]["post"]["responses"]["200"]
    assert refreshed["content"]["application/json"]["schema"]["$ref"].endswith("IssuedResponse")
