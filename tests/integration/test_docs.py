"""The repository's own docs: docs/api.md names exactly the routes of /openapi.json, and
every link in README.md, CHANGELOG.md and docs/ resolves inside the repository."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import httpx

from api import errors

ROOT = Path(__file__).resolve().parents[2]
API_MD = ROOT / "docs" / "api.md"
# "### `POST /auth/login`", or several methods: "### `GET, POST /auth/verify`".
ROUTE_HEADING = re.compile(r"^### `(?P<methods>[A-Z]+(?:, [A-Z]+)*) (?P<path>/\S*)`$", re.M)
LINK = re.compile(r"\[[^\]]*\]\((?P<target>[^)\s]+)\)")
LINKED_FILES = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]


def documented_routes() -> set[tuple[str, str]]:
    return {
        (method.lower(), match["path"])
        for match in ROUTE_HEADING.finditer(API_MD.read_text())
        for method in match["methods"].split(", ")
    }


async def test_api_md_and_the_openapi_document_name_the_same_routes(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    served = {(method, path) for path, item in document["paths"].items() for method in item}
    documented = documented_routes()
    print(f"routes: {len(served)} in /openapi.json, {len(documented)} in docs/api.md")
    assert served - documented == set(), "in /openapi.json, missing from docs/api.md"
    assert documented - served == set(), "in docs/api.md, not served"


def test_api_md_documents_every_error_code() -> None:
    text = API_MD.read_text()
    codes = {row.code for row in errors.PROBLEMS.values()} - {"bad_request"}
    assert {code for code in codes if f"| `{code}` |" not in text} == set()


def _anchors(markdown: str) -> set[str]:
    # GitHub's heading slugs: lower-cased, punctuation dropped, spaces to hyphens.
    headings = re.findall(r"^#+ (.+)$", markdown, re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_link_in_the_docs_resolves_inside_the_repository() -> None:
    broken: list[str] = []
    checked = 0
    for source in LINKED_FILES:
        text = re.sub(r"```.*?```", "", source.read_text(), flags=re.S)
        for match in LINK.finditer(text):
            target = match["target"]
            if re.match(r"[a-z]+:", target):
                continue  # an external URL (Keep a Changelog, SemVer)
            checked += 1
            path, _, anchor = target.partition("#")
            file = (source.parent / unquote(path)).resolve() if path else source
            if not file.is_relative_to(ROOT) or not file.exists():
                broken.append(f"{source.name}: {target}")
            elif anchor and anchor not in _anchors(file.read_text()):
                broken.append(f"{source.name}: {target} (no such heading)")
    print(f"links checked: {checked}")
    assert checked > 0
    assert broken == []


def test_readme_keeps_its_two_commands_first() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[:6] == [
        "# auth-api",
        "",
        "```sh",
        "scripts/run     # start the server on http://127.0.0.1:8000 (2 workers)",
        "scripts/test    # run the whole test suite",
        "```",
    ]


def test_gateway_recipes_in_the_docs_are_the_files_the_gateway_test_runs() -> None:
    """docs/gateways.md shows docs/gateways/nginx.conf and Caddyfile exactly."""
    text = (ROOT / "docs" / "gateways.md").read_text()
    blocks = dict(re.findall(r"```(nginx|caddy)\n(.*?)```", text, re.S))
    assert blocks["nginx"] == (ROOT / "docs" / "gateways" / "nginx.conf").read_text()
    assert blocks["caddy"] == (ROOT / "docs" / "gateways" / "Caddyfile").read_text()
