"""scripts/bench's seed-style baseline: `GET /me` as the first version of such a service
would be written, to measure the service's `/me` against (issue 21).

A sync Flask view behind Flask-JWT-Extended's `@jwt_required()` (HS256), the token's jti
checked against a Redis blocklist by `token_in_blocklist_loader` (redis-py, one GET), the
user's row read from Postgres through a SQLAlchemy engine on psycopg, served by gunicorn
with 2 workers x 8 threads (gthread): scripts/benchmarks/rivals.py starts it.

It verifies the service's own access tokens (they carry Flask-JWT-Extended's claims):
the bench gives it the service's HS256 key as JWT_SECRET_KEY, DATABASE_URL naming the
bench's database, whose users the bench registered through the real API, and REDIS_URL
and BLOCKLIST_PREFIX, where a revoked jti is written. Everything is
read from the environment at import, once per worker, as such an app does.
"""

from __future__ import annotations

import os
from typing import Any

import redis
from flask import Flask, Response, jsonify
from flask_jwt_extended import JWTManager, get_jwt_identity, jwt_required
from sqlalchemy import create_engine, text

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = os.environ["JWT_SECRET_KEY"]
app.config["JWT_ALGORITHM"] = "HS256"
jwt = JWTManager(app)
# One pool per worker, a connection per thread: SQLAlchemy's default (5, and 10 overflow
# connections closed on their return) would open a connection per request past 5 threads.
engine = create_engine(
    os.environ["DATABASE_URL"],
    pool_size=int(os.environ["DB_POOL_SIZE"]),
    max_overflow=0,
    connect_args={"application_name": "auth-api-bench-seed-style"},
)
blocklist = redis.Redis.from_url(os.environ["REDIS_URL"])
BLOCKLIST_PREFIX = os.environ["BLOCKLIST_PREFIX"]


@jwt.token_in_blocklist_loader
def token_revoked(header: dict[str, Any], payload: dict[str, Any]) -> bool:
    return blocklist.get(BLOCKLIST_PREFIX + payload["jti"]) is not None


@app.get("/healthz")
def healthz() -> str:
    return "ok"


@app.get("/me")
@jwt_required()
def me() -> Response | tuple[Response, int]:
    with engine.connect() as connection:
        user = (
            connection.execute(
                text(
                    "SELECT id, email, role, disabled, created_at, email_verified_at"
                    " FROM users WHERE id = :id"
                ),
                {"id": get_jwt_identity()},
            )
            .mappings()
            .first()
        )
    if user is None:
        return jsonify(msg="user not found"), 404
    return jsonify(
        id=str(user["id"]),
        email=user["email"],
        role=user["role"],
        disabled=user["disabled"],
        created_at=user["created_at"].isoformat(),
        email_verified=user["email_verified_at"] is not None,
    )
