"""argon2id hashing off the event loop, and the password rules of registration."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from importlib.resources import files
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from api.security.hashing_admission import HashingAdmission

T = TypeVar("T")

MAX_PASSWORD_LENGTH = 1024


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased (see COMMON_PASSWORDS_LICENSE.txt)."""
    data = files(__package__).joinpath("common-passwords.txt.gz").read_bytes()
    return frozenset(gzip.decompress(data).decode().split())


def password_problems(password: str, min_length: int) -> list[str]:
    """Why `password` is unacceptable for a new account; empty when it is fine.

    Lengths count the characters as sent: passwords are never trimmed or normalised.
    Beside the length, only guessable values are refused (NIST SP 800-63B): common
    passwords, only whitespace, and one character repeated.
    """
    if len(password) < min_length:
        return [f"Use at least {min_length} characters."]
    if len(password) > MAX_PASSWORD_LENGTH:
        return [f"Use at most {MAX_PASSWORD_LENGTH} characters."]
    if password.isspace():
        return ["Use a password that is not only spaces."]
    if len(set(password)) == 1:
        return ["Use a password that is not one character repeated."]
    if password.lower() in common_passwords():
        return ["This password is too common; choose another."]
    return []


class Passwords:
    """argon2id with configurable cost; every hash and verify runs in a thread pool.

    argon2-cffi releases the GIL while hashing, so the pool gives real parallelism
    while the event loop keeps serving other requests. When every thread is busy, who
    waits and who is refused at once (HashingBusy) is decided by HashingAdmission: fair
    queues per client address (`client_key`, read when a check arrives), and shedding
    once the expected wait is beyond `wait_budget` seconds or `queue_max` checks wait.
    """

    def __init__(
        self,
        *,
        memory_kib: int,
        time_cost: int,
        parallelism: int,
        workers: int,
        queue_max: int,
        wait_budget: float,
        client_key: Callable[[], str] = lambda: "",
    ):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        self.admission = HashingAdmission(
            threads=workers, wait_budget=wait_budget, queue_max=queue_max
        )
        self._client_key = client_key
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """A new argon2id hash of `password`.

        Raises:
            HashingBusy: the hashing threads are too busy to take it soon.
        """
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a match proves the client's address.

        Raises:
            HashingBusy: the hashing threads are too busy to take it soon.
        """
        matches = await self._run(self._verify, password_hash, password)
        if matches:
            self.admission.proven.add(self._client_key())
        return matches

    async def verify_dummy(self, password: str) -> None:
        """Spend the same work as a real verification, for logins of unknown emails."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(32))
        await self._run(self._verify, self._dummy_hash, password)

    def check_admission(self) -> None:
        """Refuse a check the hashing would refuse, before the caller spends I/O on it.

        Raises:
            HashingBusy: the hashing threads are too busy to take it soon.
        """
        self.admission.check(self._client_key())

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        """Stop the hashing threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _run(self, func: Callable[..., T], *args: str) -> T:
        admission = self.admission
        await admission.turn(self._client_key())
        loop = asyncio.get_running_loop()
        try:
            job = self._executor.submit(_timed, func, *args)
        except BaseException:
            admission.finished(None)
            raise

        # The thread is the job's, not the caller's: a cancelled caller leaves it running.
        def done(job: Future[tuple[T, float]]) -> None:
            seconds = None if job.cancelled() or job.exception() else job.result()[1]
            # A closed loop: the worker is stopping, nothing waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(admission.finished, seconds)

        job.add_done_callback(done)
        result, _ = await asyncio.wrap_future(job)
        return result


def _timed(func: Callable[..., T], *args: str) -> tuple[T, float]:
    started = time.perf_counter()
    result = func(*args)
    return result, time.perf_counter() - started
