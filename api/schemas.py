"""Request parsing into pydantic schemas, and the field types every schema shares."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, TypeVar

from flask import Response, request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError

from api.domain.errors import MalformedJson, NotFound, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)


def _storable(value: str) -> str:
    # Postgres text can't hold NUL, and lone surrogates can't be encoded as UTF-8.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _not_null(value: object) -> object:
    if value is None:
        raise ValueError("must not be null; leave the member out instead")
    return value


def printable(text: str) -> str:
    """`text` without control or other unprintable characters (newlines, escapes, C1, DEL)."""
    # What logs and audit details show: no line a reader can be fooled by, no terminal codes.
    return "".join(c for c in text if c.isprintable())


def _trimmed(value: object) -> object:
    # Only text is trimmed; anything else goes on to fail the strict type check.
    return value.strip() if isinstance(value, str) else value


# Put after any length constraint: a constraint following a validator is reported in
# generic words ("at least 1 item after validation").
Storable = AfterValidator(_storable)
# Unprintable characters removed (put after Storable, which refuses NUL with a 422).
Printable = AfterValidator(printable)
Text = Annotated[str, Storable]
# For an optional member whose absence means "unchanged": it may be left out, never null.
# (A default is not validated, so only a null that was sent fails.)
NotNull = BeforeValidator(_not_null)
# Leading and trailing whitespace removed: for names and addresses, never for passwords.
Trimmed = BeforeValidator(_trimmed)

# Marks a field whose minimum length is PASSWORD_MIN_LENGTH: the OpenAPI document states it.
NEW_PASSWORD_MARK = "x-new-password"  # noqa: S105 (a schema key)


class Schema(BaseModel):
    """Strict types (no "123" for a number), unknown members ignored; text kept as sent."""

    model_config = ConfigDict(strict=True, extra="ignore")


class QuerySchema(BaseModel):
    """A query string: numbers and times arrive as text, so types are converted (not strict);
    unknown parameters are ignored."""

    model_config = ConfigDict(extra="ignore")


class ResponseSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise MalformedJson("The JSON object has duplicate member names.")
    return result


def _reject_constant(name: str) -> Any:
    # Python's parser takes NaN, Infinity and -Infinity; JSON (RFC 8259) has no such numbers.
    raise MalformedJson(f"{name} is not a JSON number.")


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def parse_body(schema: type[M]) -> M:
    """Parse the request's JSON body into `schema`.

    Raises:
        UnsupportedMediaType, MalformedJson, ValidationFailed.
    """
    return parse_json_body(schema, request.get_data(cache=True), request.mimetype)


def parse_json_body(schema: type[M], raw: bytes, mimetype: str) -> M:
    """`raw`, a body sent as `mimetype` (Werkzeug's `Request.mimetype`: lower case, no
    parameters, "" when unnamed), parsed into `schema`.

    Raises:
        UnsupportedMediaType, MalformedJson, ValidationFailed.
    """
    if mimetype and not _is_json(mimetype):
        raise UnsupportedMediaType()
    if raw and not mimetype:
        raise UnsupportedMediaType()
    try:
        data = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedJson() from None
    if not isinstance(data, dict):
        raise MalformedJson()
    return _validated(schema, data)


def _validated(schema: type[M], data: dict[str, Any]) -> M:
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        raise ValidationFailed(
            [
                {"field": ".".join(str(part) for part in e["loc"]) or "body", "message": e["msg"]}
                for e in error.errors(include_url=False, include_input=False)
            ]
        ) from None


def path_id(text: str, what: str) -> uuid.UUID:
    """The id a path names, spelled only as str(UUID) spells it (lower case, hyphenated).

    Any other spelling of the same UUID is refused rather than mapped onto it: SQL would
    match it, but the Redis marks are keyed by the canonical text, so a change made through
    it would miss the tokens.

    Raises:
        NotFound: not the canonical spelling of a UUID ("No such {what}.").
    """
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        parsed = None
    if parsed is None or str(parsed) != text:
        raise NotFound(f"No such {what}.")
    return parsed


def parse_query(schema: type[M]) -> M:
    """Parse the request's query string into `schema` (the first value of a repeated name).

    Raises:
        ValidationFailed.
    """
    return _validated(schema, request.args.to_dict())


def respond(body: BaseModel, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise a response schema as JSON."""
    response = Response(body.model_dump_json(), status=status, mimetype="application/json")
    response.headers.update(headers or {})
    return response


def no_content() -> Response:
    """An empty 204 response (no Content-Type: there is no content)."""
    response = Response(status=204)
    del response.headers["Content-Type"]
    return response
