"""The packages depend one way (docs/architecture.md): bot → workflows → plugins → storage, and
cards (views and texts) below bot and workflows. An import against that direction, even inside
a function, fails here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# what each package may import from the project (besides itself)
MAY_IMPORT = {
    "storage": set(),
    "plugins": {"storage"},
    "cards": {"storage"},
    "workflows": {"plugins", "storage", "cards"},
    "bot": {"workflows", "plugins", "storage", "cards"},
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_package_imports_against_the_direction() -> None:
    wrong: list[str] = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in sorted(_imports(path) & set(MAY_IMPORT)):
                if name != package and name not in allowed:
                    wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert wrong == []
