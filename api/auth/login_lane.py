"""POST /auth/login from a bearer client, answered on the worker's event loop in front of Flask.

Every login's password hash is the ceiling of logins per second, and whatever else a login
costs the host's cores is taken from that ceiling: through Flask, a mobile client's login
spent about 4 ms of event-loop CPU beside its ~20 ms hash (scripts/bench --login). Here the
same service call (AuthService.login: limits, hashing admission, second factor, session,
audit event) runs without Flask's dispatch, Werkzeug's request and a greenlet.

Taken: a body that parses into LoginRequest (api.schemas.parse_json_body, as the view
parses it) asking for bearer transport, in a request that carries no cookie (one may hold
the device token, which the view reads), asks for no upgrade and names its media type
once. Everything else
goes to the Flask view (api.auth.routes, which registers this lane): a body the view
refuses is still counted against the address's failed logins there. The answer is the
view's, byte for byte: the per-IP reservation held around the same call, the same outcome
counted, the same origin on the audit event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from werkzeug.http import parse_options_header

from api.auth.schemas import LoginRequest, LoginTokenResponse
from api.auth.service import Device
from api.domain.errors import DomainError
from api.edge.lanes import Reply, Taken, failure_reply, json_reply
from api.edge.metrics import login_outcome
from api.edge.request_context import lane_request
from api.schemas import parse_json_body
from api.security.client_address import ClientAddress, scope_client

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

PATH = "/auth/login"
_LEFT_TO_FLASK = (b"cookie", b"upgrade")


class LoginLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        settings = runtime.settings
        self._hops = settings.trusted_proxy_hops
        self._ipv6_prefix = settings.ipv6_rate_limit_prefix

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """A well-formed bearer login without cookies; the rest go to Flask."""
        if scope["path"] != PATH or scope["method"] != "POST":
            return None
        mimetype = _lone_mimetype(scope["headers"])
        if mimetype is None:
            return None
        try:
            login = parse_json_body(LoginRequest, body, mimetype)
        except DomainError:
            return None
        if login.transport != "bearer":
            return None
        # Logged as Flask logs an unusable forwarded entry: the lane answers instead of it.
        client = scope_client(scope, self._hops, logged=True)
        return Taken(PATH, lambda: self.answer(scope, client, login))

    async def answer(
        self, scope: dict[str, Any], client: ClientAddress, login: LoginRequest
    ) -> Reply:
        """The view's answer to `login` from `client`: tokens and device token, or a problem."""
        auth = self._runtime.resources.services.auth
        with lane_request(scope, client) as origin:
            device = Device(name=login.device_name, ip=client.stored, user_agent=origin.user_agent)
            # As the view reads it: an empty member is no device token.
            device_token = login.device_token or None
            try:
                with login_outcome():
                    async with auth.login_attempt(client.limit_key(self._ipv6_prefix)):
                        result = await auth.login(
                            login.email, login.password, device, device_token=device_token
                        )
                issued = LoginTokenResponse.issued(
                    result.tokens, result.session_id, device_token=result.device_token.token
                )
                return json_reply(issued.model_dump_json().encode())
            except Exception as error:
                return failure_reply(error)


def _lone_mimetype(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The body's media type as Werkzeug's `Request.mimetype` reads it ("" when unnamed);
    None when the request carries a cookie, asks for an upgrade (Werkzeug's routing then
    takes it for a WebSocket and Flask refuses it) or names its type more than once."""
    named: list[bytes] = []
    for name, value in headers:
        if name in _LEFT_TO_FLASK:
            return None
        if name == b"content-type":
            named.append(value)
    if len(named) > 1:
        return None
    text = named[0].decode("latin-1") if named else ""
    return parse_options_header(text)[0].lower()
