"""Persistence and shared state: models, embedded Postgres, migrations, coordination.

Imports none of the other packages.
"""
