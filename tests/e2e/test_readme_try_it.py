"""README's "Try it" block, run through bash against the real server, as a reader pastes
it; and the docs page's answers carry one Date header (Hypercorn's)."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import replace

import httpx

from api.config.settings import Settings
from tests.e2e.conftest import Users
from tests.e2e.server import ROOT, Server, settings_env

README_URL = "http://127.0.0.1:8000"
README_EMAIL = "ada@example.com"


def try_it_block() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Try it", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README's Try it has no sh block"
    return match.group(1)


def test_readme_try_it_walks_a_session_from_register_to_logout_all(
    server: Server, users: Users
) -> None:
    email = users.new_email()
    block = try_it_block().replace(README_URL, server.url).replace(README_EMAIL, email)
    assert server.url in block and email in block
    result = subprocess.run(
        ["bash", "-euo", "pipefail"],
        input=block,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    print(f"README Try it: exit {result.returncode}\n{result.stdout}{result.stderr}")
    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert len(lines) == 7, lines
    registered, me, sessions, logout, revoked, logout_all, revoked_everywhere = lines
    account = json.loads(registered)
    assert account["email"] == email
    # /me is registration's answer plus the account's state.
    assert json.loads(me) == {**account, "email_verified": False, "mfa_enabled": False}
    devices = [s["device_name"] for s in json.loads(sessions)["sessions"]]
    assert sorted(devices) == ["laptop", "phone"]
    assert (logout, logout_all) == ("204", "204")
    for line in (revoked, revoked_everywhere):
        assert json.loads(line)["code"] == "token_revoked", line


def test_docs_page_answers_carry_one_date_header(e2e_settings: Settings) -> None:
    settings = replace(e2e_settings, docs_enabled=True, openapi_enabled=True)
    server = Server(settings_env(settings), workers=1)
    try:
        paths = ["/docs", "/docs/init.js", "/docs/swagger-ui.css", "/openapi.json", "/healthz"]
        dates = {p: httpx.get(server.url + p, timeout=10).headers.get_list("date") for p in paths}
    finally:
        server.stop()
    print(f"Date headers per path: { {p: len(d) for p, d in dates.items()} }")
    assert {p: len(d) for p, d in dates.items()} == dict.fromkeys(paths, 1)
