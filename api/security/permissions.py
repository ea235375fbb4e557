"""Roles and the permissions they grant (ROLE_PERMISSIONS), as access tokens carry them."""

from __future__ import annotations

import re
from collections.abc import Mapping

USERS_READ = "users:read"
USERS_WRITE = "users:write"
AUDIT_READ = "audit:read"
# Every permission a route of this service asks for: a permission outside it in
# ROLE_PERMISSIONS is a typo that would silently grant nothing.
KNOWN_PERMISSIONS = frozenset({USERS_READ, USERS_WRITE, AUDIT_READ})

# The roles the service itself hands out: registration makes users, create-admin admins.
USER = "user"
ADMIN = "admin"
BUILT_IN_ROLES = (USER, ADMIN)

# Roles and permissions travel in tokens and in response headers (X-Auth-Role,
# X-Auth-Permissions): no control characters, no commas, no spaces. A role fits users.role.
ROLE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,15}")
PERMISSION_NAME = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
MAX_PERMISSIONS = 64

DEFAULT_ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    USER: (),
    ADMIN: (USERS_READ, USERS_WRITE, AUDIT_READ),
}

RolePermissions = Mapping[str, tuple[str, ...]]


def permissions_of(role_permissions: RolePermissions, role: str) -> list[str]:
    """The sorted permissions `role` grants (none for a role the setting does not name)."""
    return sorted(role_permissions.get(role, ()))
