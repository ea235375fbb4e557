"""Registration, login and the device sessions of a user."""
