"""The raw argon2id verification rate of the service's parameters on this machine's cores:
the ceiling of successful logins per second."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from argon2 import PasswordHasher, Type

from api.config.settings import Settings


@dataclass(frozen=True)
class Argon2Rate:
    per_second: float
    cpu_ms: float  # CPU time of one verification


def verifies_per_second(settings: Settings, seconds: float) -> Argon2Rate:
    """Verifications per second with one thread per core (argon2-cffi releases the GIL),
    and the CPU time each took."""
    return measure(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        seconds=seconds,
    )


def measure(*, memory_kib: int, time_cost: int, parallelism: int, seconds: float) -> Argon2Rate:
    """Verifications per second of these argon2id parameters, one thread per core."""
    hasher = PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )
    password = "bench passphrase for argon2"
    password_hash = hasher.hash(password)
    deadline = time.monotonic() + seconds

    def loop() -> int:
        done = 0
        while time.monotonic() < deadline:
            hasher.verify(password_hash, password)
            done += 1
        return done

    cores = os.cpu_count() or 1
    start, cpu_start = time.monotonic(), time.process_time()
    with ThreadPoolExecutor(cores) as pool:
        total = sum(pool.map(lambda _: loop(), range(cores)))
    cpu = time.process_time() - cpu_start
    return Argon2Rate(per_second=total / (time.monotonic() - start), cpu_ms=1000 * cpu / total)
