"""`larkops run` learns the schema's head revision by reading the migration scripts' constants,
without importing Alembic (issue 22: Alembic's way ran every script at each start). Both ways
must name the same head; this fails loudly if a script is written so that the light reading
no longer finds it (a computed `revision`, a second head)."""

from __future__ import annotations

import subprocess
import sys

from alembic.script import ScriptDirectory

from storage.migration import alembic_config, head_revision


def test_the_light_head_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_reading_the_head_imports_no_alembic() -> None:
    probe = (
        "import sys; from storage.migration import head_revision; head_revision(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'migrations')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
