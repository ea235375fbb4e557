"""scripts/bench's FastAPI-Users baseline: `GET /users/me` of the library's documented
set-up (issue 21), to measure the service's token routes against.

FastAPI-Users with the JWT strategy (HS256, the bench's secret) and the bearer transport,
users in Postgres through fastapi-users-db-sqlalchemy on asyncpg, served by uvicorn with
2 workers (scripts/benchmarks/rivals.py starts it). It runs in .venv-fastapi-users, not
the project's venv (scripts/benchmarks/fastapi_users_requirements.txt says why), on a
database of its own: FASTAPI_USERS_DATABASE_URL, created and dropped by the bench, with a
pool of DB_POOL_SIZE connections a worker.
`python -m scripts.benchmarks.fastapi_users_app` creates its table, once, before the
workers start (two workers creating it at once would race).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users_db_sqlalchemy import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

SECRET = os.environ["JWT_SECRET_KEY"]
TOKEN_LIFETIME = 3600


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


# The pool sized as the service's (DB_POOL_SIZE a worker, requests past it wait): the
# default's 10 overflow connections are closed on their return, so under load it would
# open a Postgres connection for most requests.
engine = create_async_engine(
    os.environ["FASTAPI_USERS_DATABASE_URL"],
    pool_size=int(os.environ["DB_POOL_SIZE"]),
    max_overflow=0,
)
session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_session() -> AsyncIterator[AsyncSession]:
    async with session_maker() as session:
        yield session


async def get_user_db(
    session: AsyncSession = Depends(get_session),  # noqa: B008 (FastAPI's idiom)
) -> AsyncIterator[SQLAlchemyUserDatabase[User, uuid.UUID]]:
    yield SQLAlchemyUserDatabase(session, User)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(
    user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),  # noqa: B008
) -> AsyncIterator[UserManager]:
    yield UserManager(user_db)


def get_jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
    return JWTStrategy(secret=SECRET, lifetime_seconds=TOKEN_LIFETIME, algorithm="HS256")


auth_backend = AuthenticationBackend(
    name="jwt", transport=BearerTransport(tokenUrl="auth/jwt/login"), get_strategy=get_jwt_strategy
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])

app = FastAPI()
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt")
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth")
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")


@app.get("/healthz")
async def healthz() -> str:
    return "ok"


async def create_tables() -> None:
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(create_tables())
