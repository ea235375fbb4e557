"""Everything that persists: Postgres through SQLAlchemy, Redis through redis-py."""
