"""Alembic migrations (run by `larkops migrate` and at `larkops run` start)."""
