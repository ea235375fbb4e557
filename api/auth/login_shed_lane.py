"""POST /auth/login refused on the worker's event loop when the hashing would refuse it.

Under overload most logins are shed (`503`, `HASH_WAIT_BUDGET`), and a client that
retries at once makes every refusal take CPU from the hashing it waits for. Refused in
Flask, a shed login still paid for its dispatch, the per-IP reservation's two Redis round
trips and the body's validation: a tenth of a login's CPU (scripts/bench --login). Here
the refusal costs the admission check alone. A login the hashing may admit goes on to
the Flask view (api.auth.routes, which registers this lane), which checks again before
its first round trip: between the two, the queue may have grown.

The refusal is sent after `HASH_WAIT_BUDGET`, as long as an admitted check may wait:
clients that retry as soon as they are answered, whatever `Retry-After` says, then ask
at most once per budget each instead of keeping the workers busy answering them (256
such clients against 2 cores: 1,170 refusals a second and a third of the logins the
machine could hash, before). A held refusal costs a sleeping task and its connection.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from api.domain.errors import HashingBusy
from api.edge.lanes import Reply, Taken, problem_reply
from api.edge.metrics import count_refused_login
from api.security.client_address import scope_client

if TYPE_CHECKING:
    # A type only: the runtime is handed in when the bridge builds its lanes.
    from api.runtime import Runtime

PATH = "/auth/login"


class LoginShedLane:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        settings = runtime.settings
        self._hops = settings.trusted_proxy_hops
        self._ipv6_prefix = settings.ipv6_rate_limit_prefix
        self._hold = settings.hash_wait_budget

    def take(self, scope: dict[str, Any], body: bytes) -> Taken | None:
        """A login the hashing would refuse now; every other request goes on."""
        if scope["path"] != PATH or scope["method"] != "POST":
            return None
        # The fair-admission key of the Flask view: the per-IP limit's bucket.
        key = scope_client(scope, self._hops).limit_key(self._ipv6_prefix)
        try:
            self._runtime.resources.passwords.admission.check(key)
        except HashingBusy as error:
            return Taken(PATH, functools.partial(_refused, error, self._hold))
        return None


async def _refused(error: HashingBusy, hold: float) -> Reply:
    count_refused_login(error)
    await asyncio.sleep(hold)
    return problem_reply(error)
