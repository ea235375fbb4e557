"""What a verified token says, as the rest of the service reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class RefreshClaims:
    """What a verified refresh token says: whose session, which link of its chain."""

    user_id: str
    session_id: str
    jti: str
    issued_at: float
    expires_at: float
    # The double-submit value of a token issued for the cookie transport.
    csrf: str | None = None
    # A cookie login that asked to stay signed in: every refresh keeps its cookies persistent.
    remember: bool = False
    # How the session's login authenticated (RFC 8176): "pwd", and "otp" or "recovery".
    amr: tuple[str, ...] = ("pwd",)


@dataclass(frozen=True, kw_only=True)
class AccessClaims(RefreshClaims):
    """What a verified access token says about its bearer."""

    role: str
    # Sorted; what ROLE_PERMISSIONS granted the role when the token was issued.
    permissions: tuple[str, ...]
    fresh: bool

    @property
    def has_second_factor(self) -> bool:
        """Whether the login behind this token proved a second factor."""
        return "otp" in self.amr or "recovery" in self.amr

    def identity_headers(self) -> list[tuple[str, str]]:
        """The headers a forward-auth answer passes on to the service behind the gateway."""
        return [
            ("X-Auth-User", self.user_id),
            ("X-Auth-Session", self.session_id),
            ("X-Auth-Role", self.role),
            ("X-Auth-Permissions", ",".join(self.permissions)),
        ]
