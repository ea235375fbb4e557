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
    # The links of messages: the token in the body is the credential.
    "account.verify_email",
    "account.forgot_password",
    "account.reset_password",
    "account.confirm_email_change",
}
# Public too, because it authenticates with a refresh token itself.
REFRESH = "auth.refresh"
