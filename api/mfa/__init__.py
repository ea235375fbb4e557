"""Second factor: TOTP enrolment, recovery codes, the login's code step, step-up."""
