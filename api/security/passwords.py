"""argon2id hashing off the event loop, and the password rules of registration."""

from __future__ import annotations

import asyncio
import gzip
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from importlib.resources import files
from typing import TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from api.errors import HashingBusy

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
    while the event loop keeps serving other requests. At most `queue_max` jobs wait
    for a thread; more are refused at once (HashingBusy) instead of queueing without
    bound, so a flood can't make every login wait behind it.
    """

    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, workers: int, queue_max: int
    ):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="argon2")
        # Running plus waiting jobs; thread-safe, as the pool may be fed from several threads.
        self._slots = threading.BoundedSemaphore(workers + queue_max)
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        """A new argon2id hash of `password`.

        Raises:
            HashingBusy: the hashing queue is full.
        """
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`.

        Raises:
            HashingBusy: the hashing queue is full.
        """
        return await self._run(self._verify, password_hash, password)

    async def verify_dummy(self, password: str) -> None:
        """Spend the same work as a real verification, for logins of unknown emails."""
        if self._dummy_hash is None:
            self._dummy_hash = await self.hash(secrets.token_urlsafe(32))
        await self.verify(self._dummy_hash, password)

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
        if not self._slots.acquire(blocking=False):
            raise HashingBusy()
        try:
            job = self._executor.submit(func, *args)
        except BaseException:
            self._slots.release()
            raise
        # The slot is the job's, not the caller's: a cancelled caller leaves it running.
        job.add_done_callback(lambda _: self._slots.release())
        return await asyncio.wrap_future(job)
