"""What a started worker has: pools, stores, the token verifier and the services built on them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.account.mailer import OutboxSender, transport_for
from api.account.messages import AccountMail, OutboxSignal
from api.account.service import RecoveryService
from api.admin.service import AdminService
from api.auth.device_sessions import DeviceSessionService
from api.auth.rotation import Rotation
from api.auth.service import AuthService
from api.config.settings import Settings
from api.domain.audit import AuditTrail
from api.domain.clock import Clock, utc_now
from api.domain.session_ending import SessionEnding
from api.edge.draining import Draining
from api.edge.request_context import current_origin
from api.me.service import AccountService
from api.mfa.secrets import SecretBox
from api.mfa.service import MfaService, SecondFactorGate
from api.ops.service import OpsService
from api.security.device_tokens import DeviceTokens
from api.security.keys import KeySet
from api.security.passwords import Passwords
from api.security.rate_limits import RateLimits
from api.security.tokens import TokenIssuer
from api.security.verifier import TokenVerifier
from db.engine import Database, create_engine
from db.mfa_store import SecondFactorStore
from db.rate_limit_store import RateLimitStore
from db.redis_pool import RedisClient, close_redis, create_redis, create_subscriber
from db.revocation_cache import RevocationCache
from db.revocation_channel import InvalidationListener
from db.revocation_store import RevocationStore


@dataclass(frozen=True)
class Services:
    """One object per area; routes call them and translate HTTP."""

    auth: AuthService
    sessions: DeviceSessionService
    account: AccountService
    ops: OpsService
    admin: AdminService
    mfa: MfaService
    recovery: RecoveryService


@dataclass(frozen=True)
class Resources:
    settings: Settings
    engine: AsyncEngine
    redis: RedisClient
    database: Database
    passwords: Passwords
    revocations: RevocationStore
    keys: KeySet
    verifier: TokenVerifier
    services: Services
    # Delivers the outbox; started by the runtime when MAIL_SEND_IN_WORKERS is on.
    outbox_sender: OutboxSender
    # Keeps the verifier's revocation cache honest; None unless REVOCATION_CACHE is on.
    invalidations: InvalidationListener | None = None

    async def close(self) -> None:
        """Close the pools and the hashing threads."""
        await close_redis(self.redis)
        await self.engine.dispose()
        self.passwords.close()


def build_engine(
    settings: Settings, *, command: str | None = None, pool_size: int | None = None
) -> AsyncEngine:
    """The engine of the server's workers, or of a maintenance `command` (named so in
    pg_stat_activity): every one built here, with the same pooler and logging settings."""
    name = settings.db_application_name
    return create_engine(
        settings.database_url,
        pool_size=pool_size if pool_size is not None else settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        application_name=f"{name}-{command}" if command else name,
        statement_cache_size=settings.database_statement_cache_size,
    )


def build_database(engine: AsyncEngine, settings: Settings) -> Database:
    """Postgres for the services on `engine`, run the way the pooler setting asks."""
    return Database.on_engine(
        engine, pooled_transactions=settings.database_statement_cache_size == 0
    )


def build_passwords(
    settings: Settings,
    *,
    workers: int | None = None,
    queue_max: int | None = None,
    client_key: Callable[[], str] = lambda: "",
) -> Passwords:
    """The password hasher with the configured argon2 parameters (fewer threads for a command)."""
    return Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=workers if workers is not None else settings.hash_workers,
        queue_max=queue_max if queue_max is not None else settings.hash_queue_max,
        wait_budget=settings.hash_wait_budget,
        client_key=client_key,
    )


def _hashing_client(ipv6_prefix: int) -> str:
    """Whose password check this is, for fair hashing admission: the per-IP limit's key."""
    origin = current_origin()
    return "" if origin is None else origin.client.limit_key(ipv6_prefix)


def build_invalidations(
    settings: Settings, redis: RedisClient, store: RevocationStore
) -> InvalidationListener | None:
    """The worker's revocation cache and its listener, when REVOCATION_CACHE is on."""
    if not settings.revocation_cache:
        return None
    cache = RevocationCache(
        max_age=settings.revocation_cache_max_age, size=settings.revocation_cache_size
    )
    connect = functools.partial(
        create_subscriber,
        redis,
        settings.redis_url,
        timeout=settings.redis_timeout,
        client_name=f"{settings.db_application_name}-revocations",
    )
    return InvalidationListener(
        cache,
        store.invalidation_channel,
        lambda attempt: connect(attempt=attempt),
        answer_within=settings.redis_timeout,
    )


def open_resources(
    settings: Settings,
    keys: KeySet,
    draining: Draining,
    *,
    bind: AsyncConnection | None = None,
    clock: Clock = utc_now,
) -> Resources:
    """Open the pools (on the running loop) and build everything on them and on `keys`.

    `bind` puts every Postgres statement inside a transaction the caller owns (tests).
    """
    engine = build_engine(settings)
    redis = create_redis(
        settings.redis_url,
        pool_size=settings.redis_pool_size,
        timeout=settings.redis_timeout,
        client_name=settings.db_application_name,
        cluster=settings.redis_cluster,
    )
    trail = AuditTrail(keys.secret_material(), clock)
    database = (
        Database.on_connection(bind) if bind is not None else build_database(engine, settings)
    ).reporting_to(trail.logged)
    passwords = build_passwords(
        settings,
        client_key=functools.partial(_hashing_client, settings.ipv6_rate_limit_prefix),
    )
    revocations = RevocationStore(redis, settings.redis_key_prefix)
    invalidations = build_invalidations(settings, redis, revocations)
    limits = RateLimits(RateLimitStore(redis, settings.redis_key_prefix), settings)
    ending = SessionEnding(revocations, settings.refresh_token_ttl, clock)
    second_factors = SecondFactorStore(redis, settings.redis_key_prefix)
    signal = OutboxSignal()
    mail = AccountMail(settings, signal, clock)
    issuer = TokenIssuer(settings, keys)
    auth = AuthService(
        database,
        passwords,
        limits,
        DeviceTokens(keys.secret_material(), settings.device_token_ttl),
        Rotation(ending, trail, issuer, settings, clock),
        issuer,
        trail,
        settings,
        clock,
        SecondFactorGate(second_factors, settings),
        mail,
    )
    services = Services(
        auth=auth,
        sessions=DeviceSessionService(database, ending, trail, clock),
        account=AccountService(database, passwords, limits, ending, trail, settings),
        ops=OpsService(engine, redis, draining),
        admin=AdminService(database, ending, revocations, trail, settings),
        mfa=MfaService(
            database,
            second_factors,
            SecretBox.from_settings(settings, keys.secret_material()),
            limits,
            ending,
            trail,
            settings,
            clock,
            auth.open_verified_session,
        ),
        recovery=RecoveryService(database, passwords, limits, ending, mail, trail, settings, clock),
    )
    return Resources(
        settings=settings,
        engine=engine,
        redis=redis,
        database=database,
        passwords=passwords,
        revocations=revocations,
        keys=keys,
        verifier=TokenVerifier(
            settings,
            revocations,
            keys=keys,
            revocation_cache=invalidations.cache if invalidations is not None else None,
        ),
        services=services,
        outbox_sender=OutboxSender(
            database.unit_of_work, transport_for(settings), settings, trail, clock, signal
        ),
        invalidations=invalidations,
    )


def resources() -> Resources:
    """The resources of the worker serving the current request."""
    return current_app.extensions["runtime"].resources  # type: ignore[no-any-return]


def services() -> Services:
    """The services of the worker serving the current request."""
    return resources().services
