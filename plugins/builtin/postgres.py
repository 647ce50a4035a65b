"""Postgres plugins: four diagnostics and two remediations against configured targets.

Parameters never carry a DSN: every plugin takes an optional `target`, the name of a configured
server (the default target when omitted; see `plugins.builtin.targets`). Results name the
target, never the DSN. Each run opens one connection (connect timeout), sets
`application_name=larkops`, `statement_timeout` and `lock_timeout` for the session (diagnostics
also `default_transaction_read_only=on`) and closes it afterwards.

Diagnostics (low risk; `ok` means healthy):

- `pg_connections` — `warn_ratio` (default 0.8): client connections by state, database and user
  vs `max_connections`; ok=False above the ratio. Data: `total`, `max_connections`, `ratio`,
  `by_state`, `by_database`, `by_user`.
- `pg_long_queries` — `min_seconds` (default 60), `limit` (20): non-idle client backends whose
  current statement started more than `min_seconds` ago, our own backend excluded. Data
  `queries`: pid, user, database, state, seconds, xact_seconds, wait_event, query (300 chars).
- `pg_locks` — `min_wait_seconds` (0), `limit` (20): sessions blocked on a lock with their
  blocking pids (`pg_blocking_pids`), wait duration and both queries. Data: `blocked`,
  `blockers`, `root_blockers` (blockers that are not blocked themselves).
- `pg_bloat` — `limit` (10), `min_dead_rows` (1000), `max_dead_ratio` (0.2): the tables of the
  target's database with the most dead rows (`pg_stat_user_tables`). This is an ESTIMATE: the
  statistics are approximate and lag behind, and `estimated_bloat_bytes` is the heap size times
  the dead-row ratio, not a page-level measurement (use pgstattuple for that). ok=False when a
  table has at least `min_dead_rows` dead rows making up more than `max_dead_ratio`.

Remediations (dry run supported: connect, look, say what would happen, change nothing):

- `pg_cancel_backend` — `pid`, `mode` (`cancel` | `terminate`): medium risk; `policy_risk()` is
  high for terminate. Refuses our own backend, anything that is not a `client backend`
  (background workers, walsenders, autovacuum), superuser and replication-role sessions and
  other larkops sessions. The signal statement repeats those guards and matches the backend's
  start time, so a pid recycled in between is not hit. ok when the function returned true.
- `pg_vacuum` — `table` (`schema.table` or `table`, ASCII identifiers as stored in pg_class;
  system schemas refused): medium risk. The table must exist; the statement is
  `VACUUM (ANALYZE) <name>` with the name quoted by the server (`format('%I.%I')`), never built
  from the raw parameter. Reports dead rows before and after; ok=False when Postgres skipped
  the table (e.g. no permission).

Quota keys (`policy_target()`): `postgres:<target>:pid=<pid>`, `postgres:<target>:vacuum=<table>`,
`postgres:<target>:<check>` for diagnostics. Scope (`policy_scope()`): `{"target", "host"}`.

Settings (`plugins.settings.postgres`)::

    postgres:
      targets:
        main: {dsn: "postgresql://larkops_monitor:secret@db1:5432/app"}
        replica: {dsn: "postgresql://larkops_monitor:secret@db2:5432/app"}
      default: main
      connect_timeout_s: 5        # optional, defaults shown
      statement_timeout_s: 10     # also bounds VACUUM: raise it for large tables
      lock_timeout_s: 3

The role needs `pg_monitor` (to see every session's query), `pg_signal_backend` (to cancel
non-superuser sessions) and table ownership or `pg_maintain` (PG17+) for `pg_vacuum`.

Usage::

    for plugin in create_plugins(config["plugins"]["settings"].get("postgres", {})):
        registry.register(plugin)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from plugins.builtin.pg_diagnostics import PgBloat, PgConnections, PgLocks, PgLongQueries
from plugins.builtin.pg_remediation import PgCancelBackend, PgVacuum
from plugins.builtin.pg_session import PgPlugin, PgSettings
from plugins.contract import Plugin

PLUGIN_CLASSES: tuple[type[PgPlugin], ...] = (
    PgConnections,
    PgLongQueries,
    PgLocks,
    PgBloat,
    PgCancelBackend,
    PgVacuum,
)
NAMES = tuple(cls.name for cls in PLUGIN_CLASSES)


def create_plugins(settings: Mapping[str, Any]) -> list[Plugin]:
    """The Postgres plugins for `plugins.settings.postgres`; [] when no target is configured.

    ValueError (naming the problem, never a DSN) for bad settings.
    """
    parsed = PgSettings.parse(settings)
    if not parsed.targets.entries:
        return []
    return [cls(parsed) for cls in PLUGIN_CLASSES]


__all__ = ["NAMES", "PLUGIN_CLASSES", "PgSettings", "create_plugins"]
