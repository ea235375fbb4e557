"""docs/api.md's problem examples are answers the app really gives: for each example, the
request that provokes it answers the same status, code, title, Content-Type and fields."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import httpx
import jwt

from api.config.settings import Settings
from tests.integration.conftest import bearer
from tests.integration.test_docs import API_MD

PROBLEM_JSON = "application/problem+json"
PASSWORD = "a long enough passphrase"

Probe = Callable[[httpx.AsyncClient, Settings], Awaitable[httpx.Response]]


def problem_examples() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)```", API_MD.read_text(), re.S)
    return [json.loads(b) for b in blocks if '"type": "about:blank"' in b]


async def _expired_access_token(client: httpx.AsyncClient, settings: Settings) -> httpx.Response:
    email = f"api-md-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD}
    assert (await client.post("/auth/register", json=body)).status_code == 201
    login = await client.post("/auth/login", json=body)
    claims = jwt.decode(login.json()["access_token"], options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 100, nbf=now - 100, exp=now - 1)
    expired = jwt.encode(claims, settings.jwt_secret_key, "HS256")
    return await client.get("/me", headers=bearer(expired))


async def _short_password(client: httpx.AsyncClient, settings: Settings) -> httpx.Response:
    email = f"api-md-{uuid.uuid4().hex[:12]}@example.com"
    short = "x" * (settings.password_min_length - 1)
    return await client.post("/auth/register", json={"email": email, "password": short})


# The request that provokes each documented example, by its code.
PROBES: dict[str, Probe] = {
    "token_expired": _expired_access_token,
    "validation_error": _short_password,
}


async def test_every_problem_example_in_api_md_is_a_real_answer(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    examples = problem_examples()
    assert examples, f"no problem+json examples found in {API_MD}"
    assert {e["code"] for e in examples} <= set(PROBES), "an example without a probe"
    for example in examples:
        response = await PROBES[str(example["code"])](client, settings)
        answer = response.json()
        print(
            f"{example['code']}: documented {example['status']} {example['title']!r}, "
            f"answered {response.status_code} {answer['title']!r}"
        )
        assert response.headers["Content-Type"] == PROBLEM_JSON
        assert response.status_code == example["status"]
        for field in ("type", "title", "status", "code", "detail"):
            assert answer[field] == example[field], field
        if "errors" in example:
            assert answer["errors"] == example["errors"]
        assert set(example) <= set(answer)
