"""The packages depend one way (docs/architecture.md): bot → workflows → plugins → storage, and
cards (views and texts) below bot and workflows. An import against that direction, even inside
a function, fails here."""

from __future__ import annotations

import ast
import re
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


# SQL lives in storage/: above it, code calls storage's typed functions (it may hold a
# transaction open, `async with db.session()`, and pass it to them).
SQL_ALLOWED: set[str] = set()
_RUNNERS = {"execute", "executemany", "scalar", "scalars", "fetch", "fetchrow", "fetchval"}
_HOLDERS = ("session", "conn", "connection", "cursor")
_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "exists", "case", "or_"}
_SQL_TEXT = re.compile(r"^\s*(SELECT\s|INSERT\s+INTO\s|UPDATE\s+\w+\s+SET\s|DELETE\s+FROM\s|SET\s)")


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _sql_in(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _RUNNERS
            and _receiver(node.func.value).lower().endswith(_HOLDERS)
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}() on a session or connection")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _SQL_TEXT.match(node.value):
                found.append(f"line {node.lineno}: SQL text {node.value[:40]!r}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            built = sorted(alias.name for alias in node.names if alias.name in _BUILDERS)
            if built or "dialects" in (node.module or ""):
                found.append(f"line {node.lineno}: builds SQL ({node.module}: {built})")
    return found


def test_sql_only_in_storage() -> None:
    wrong: list[str] = []
    for package in ("bot", "workflows", "cards"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name not in SQL_ALLOWED:
                wrong += [f"{name} {what}" for what in _sql_in(path)]
    assert wrong == []


def test_the_sql_check_sees_sql() -> None:
    sample = ROOT / "storage" / "triage.py"  # storage writes SQL, so the check must find some
    assert any("SQL text" in what for what in _sql_in(sample))
    assert any(".execute()" in what for what in _sql_in(sample))


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _run_at_import(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when imported: not those inside functions or TYPE_CHECKING."""
    found: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.stmt] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            typing_only = "TYPE_CHECKING" in ast.unparse(node.test)
            stack.extend(node.orelse if typing_only else [*node.body, *node.orelse])
        elif isinstance(node, ast.Try):
            stack.extend([*node.body, *node.orelse, *node.finalbody])
            stack.extend(stmt for handler in node.handlers for stmt in handler.body)
    return found


def test_no_module_imports_itself_in_a_circle() -> None:
    """No cycle of module-level imports among the project's modules (a package's `__init__`
    running its submodules aside): each module can be read, and loaded, before those above it."""
    paths = {_module(p): p for package in MAY_IMPORT for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        for node in _run_at_import(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif node.module and node.level == 0:
                named = [f"{node.module}.{alias.name}" for alias in node.names]
                targets = [t if t in paths else node.module for t in named]
            else:
                targets = []
            graph[name].update(t for t in targets if t in paths and t != name)
    state: dict[str, str] = {}
    circles: list[str] = []

    def visit(name: str, trail: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph[name]):
            if state.get(target) == "open":
                circles.append(" → ".join([*trail[trail.index(target) :], target]))
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []
