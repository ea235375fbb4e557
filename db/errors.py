"""The errors db/ raises instead of driver exceptions."""

from sqlalchemy import exc as sa_exc


class ConflictError(Exception):
    """A uniqueness rule of the schema was broken."""


class StoreUnavailable(Exception):
    """Postgres or Redis did not answer; `store` names which."""

    def __init__(self, store: str) -> None:
        super().__init__(f"{store} is unavailable")
        self.store = store


# What the driver and the pool raise when Postgres can't be reached.
POSTGRES_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    OSError,
    TimeoutError,
)
