"""The closed sets of values in `storage/statuses.py` are what the migrated database enforces:
every CHECK constraint the models generate from a Literal is in the schema the migrations make,
with the same values (a Literal changed without its migration fails here; `compare_metadata`
does not compare CHECK constraints)."""

from __future__ import annotations

import re

from sqlalchemy import CheckConstraint, text

from storage.database import Database
from storage.models import Base

_MODEL_CHECK = re.compile(r"^(\w+) IN \((.*)\)$")
_QUOTED = re.compile(r"'([^']*)'")


def _generated() -> dict[tuple[str, str], set[str]]:
    """(table, column) → the values the models allow."""
    found: dict[tuple[str, str], set[str]] = {}
    for table in Base.metadata.sorted_tables:
        for constraint in table.constraints:
            if not isinstance(constraint, CheckConstraint):
                continue
            match = _MODEL_CHECK.match(str(constraint.sqltext))
            if match is not None:
                found[(table.name, match.group(1))] = set(_QUOTED.findall(match.group(2)))
    return found


async def test_the_database_checks_each_closed_set_as_the_literals_say(
    migrated_db: Database,
) -> None:
    generated = _generated()
    assert ("incidents", "status") in generated
    assert len(generated) >= 15
    async with migrated_db.session() as session:
        rows = await session.execute(
            text(
                "SELECT conrelid::regclass::text, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE contype = 'c' AND connamespace = 'public'::regnamespace"
            )
        )
        enforced: dict[tuple[str, str], set[str]] = {}
        for table, definition in rows:
            column = re.search(r"\(\(?(\w+) = ANY", definition) or re.search(
                r"\(\(?(\w+) = '", definition
            )
            if column is not None:
                enforced[(table, column.group(1))] = set(_QUOTED.findall(definition))
    for key, allowed in generated.items():
        assert enforced.get(key) == allowed, key
