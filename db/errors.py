"""The errors db/ raises instead of driver exceptions."""


class ConflictError(Exception):
    """A uniqueness rule of the schema was broken."""


class StoreUnavailable(Exception):
    """Postgres or Redis did not answer; `store` names which."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is unavailable")
        self.store = store
