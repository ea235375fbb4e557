"""The endpoints anyone may call without a token: what the default-deny tests hold the app to."""

ANONYMOUS = {
    "auth.register",
    "auth.login",
    # Finishes a login with the mfa_token its correct password was answered with.
    "mfa.verify",
    "ops.healthz",
    "ops.readyz",
    "ops.openapi",
    "ops.metrics",
    "ops.jwks",
    "docs.page",
    "docs.asset",
}
# Public too, because it authenticates with a refresh token itself.
REFRESH = "auth.refresh"
