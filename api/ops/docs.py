"""GET /docs: the OpenAPI document in Swagger UI, every file served by this app.

Swagger UI's own files come from the flask-swagger-ui package (its `dist` folder; its
blueprint is not used, for its page has an inline script); the page and the script that
starts Swagger UI are ours, so the Content-Security-Policy allows 'self' and nothing
else. Served when DOCS_ENABLED and OPENAPI_ENABLED are both true; kept out of the
OpenAPI document, since it is a page for people, not part of the API.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from api.domain.errors import NotFound
from api.openapi import not_in_document
from api.resources import resources
from api.security.guards import public

bp = Blueprint("docs", __name__)

PAGE_FOLDER = Path(__file__).parent / "docs_page"
SWAGGER_UI_FOLDER = Path(str(files("flask_swagger_ui") / "dist"))
# The files the page loads, by name: nothing else of either folder is served.
ASSETS = {
    "swagger-ui.css": SWAGGER_UI_FOLDER,
    "swagger-ui-bundle.js": SWAGGER_UI_FOLDER,
    "init.js": PAGE_FOLDER,
}
# Swagger UI styles elements through the DOM (allowed) and draws icons from data: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _served(response: Response) -> Response:
    # send_from_directory adds a Date header; Hypercorn writes one on every answer, and
    # two would be sent.
    response.headers.pop("Date", None)
    return response


def _require_enabled() -> None:
    settings = resources().settings
    if not (settings.docs_enabled and settings.openapi_enabled):
        raise NotFound()


@bp.get("/docs")
@public
@not_in_document
def page() -> Response:
    _require_enabled()
    response = _served(send_from_directory(PAGE_FOLDER, "index.html"))
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


@bp.get("/docs/<asset>")
@public
@not_in_document
def asset(asset: str) -> Response:
    _require_enabled()
    folder = ASSETS.get(asset)
    if folder is None:
        raise NotFound()
    response = _served(send_from_directory(folder, asset))
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
