"""/admin: users and the audit trail, for holders of the admin permissions."""
