"""What a started worker has: pools, stores, the token verifier and the services built on them."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from api.account.mailer import OutboxSender, transport_for
from api.account.messages import AccountMail, OutboxSignal
from api.account.service import RecoveryService
from api.admin.service import AdminService
from api.audit import AuditTrail
from api.auth.device_sessions import DeviceSessionService
from api.auth.rotation import Rotation
from api.auth.service import AuthService
from api.clock import Clock, utc_now
from api.draining import Draining
from api.me.service import AccountService
from api.ops.service import OpsService
from api.security.keys import KeySet
from api.security.passwords import Passwords
from api.security.rate_limits import RateLimits
from api.security.verifier import TokenVerifier
from api.session_ending import SessionEnding
from api.settings import Settings
from db.engine import Database, create_engine
from db.rate_limit_store import RateLimitStore
from db.redis_pool import RedisClient, close_redis, create_redis
from db.revocation_store import RevocationStore


@dataclass(frozen=True)
class Services:
    """One object per area; routes call them and translate HTTP."""

    auth: AuthService
    sessions: DeviceSessionService
    account: AccountService
    ops: OpsService
    admin: AdminService
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

    async def close(self) -> None:
        """Close the pools and the hashing threads."""
        await close_redis(self.redis)
        await self.engine.dispose()
        self.passwords.close()


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
    engine = create_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        application_name=settings.db_application_name,
        statement_cache_size=settings.database_statement_cache_size,
    )
    redis = create_redis(
        settings.redis_url,
        pool_size=settings.redis_pool_size,
        timeout=settings.redis_timeout,
        client_name=settings.db_application_name,
        cluster=settings.redis_cluster,
    )
    database = (
        Database.on_connection(bind)
        if bind is not None
        else Database.on_engine(
            engine, pooled_transactions=settings.database_statement_cache_size == 0
        )
    )
    passwords = Passwords(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        workers=settings.hash_workers,
        queue_max=settings.hash_queue_max,
    )
    revocations = RevocationStore(redis, settings.redis_key_prefix)
    limits = RateLimits(RateLimitStore(redis, settings.redis_key_prefix), settings)
    ending = SessionEnding(revocations, settings.refresh_token_ttl, clock)
    trail = AuditTrail(keys.secret_material(), clock)
    signal = OutboxSignal()
    mail = AccountMail(settings, signal, clock)
    services = Services(
        auth=AuthService(
            database,
            passwords,
            limits,
            Rotation(ending, trail, settings, clock),
            trail,
            settings,
            clock,
            mail,
        ),
        sessions=DeviceSessionService(database, ending, trail, clock),
        account=AccountService(database, passwords, limits, ending, trail, settings),
        ops=OpsService(engine, redis, draining),
        admin=AdminService(database, ending, revocations, trail, settings),
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
        verifier=TokenVerifier(settings, revocations, keys=keys),
        services=services,
        outbox_sender=OutboxSender(
            database.unit_of_work, transport_for(settings), settings, trail, clock, signal
        ),
    )


def resources() -> Resources:
    """The resources of the worker serving the current request."""
    return current_app.extensions["runtime"].resources  # type: ignore[no-any-return]


def services() -> Services:
    """The services of the worker serving the current request."""
    return resources().services
