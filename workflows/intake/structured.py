"""Alerts written as data inside a message: Markdown tables, card tables and JSON objects, turned
into the `key: value` lines the text readers know.

A table with a header row is one alert per row, each row's cells under their column's name,
rows apart as a card's dividers are::

    | 告警名称 | 主机 | 级别 |            告警名称: CPU高
    |---|---|---|                 →      主机: web-1
    | CPU高 | web-1 | P1 |                级别: P1
    | CPU高 | web-2 | P1 |                ---
                                          告警名称: CPU高 …

A two-column table whose first column holds the keys (`| 告警名称 | CPU高 |`) is one alert. A
card JSON 2.0 `table` component (`columns` with `name`/`display_name`, `rows` of objects) is read
the same way. A message whose whole text is a JSON object is read as its fields, one `key: value`
line each, the items of a nested object (`labels`, `annotations`) as fields of their own. Cells,
rows and fields are capped; nothing is evaluated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from workflows.intake.fields import read_pair, well_known_key

DIVIDER = "---"
MAX_ROWS = 200
MAX_CELLS = 32
MAX_JSON_CHARS = 64 * 1024
_RULE_RE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")


def untable(lines: list[str]) -> list[str]:
    """`lines` with every Markdown table replaced by its `key: value` lines."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        if _row(lines[index]) and index + 1 < len(lines) and _RULE_RE.match(lines[index + 1]):
            header = _cells(lines[index])
            rows: list[list[str]] = []
            index += 2
            while index < len(lines) and _row(lines[index]) and len(rows) < MAX_ROWS:
                rows.append(_cells(lines[index]))
                index += 1
            out.extend(table_lines(header, rows))
            continue
        out.append(lines[index])
        index += 1
    return out


def table_lines(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a table (see the module docstring): a key column read as fields, else one
    alert per row, rows apart."""
    keyed = len(header) == 2 and any(
        well_known_key(row[0]) for row in [header, *rows] if len(row) == 2
    )
    if keyed:
        return [f"{row[0]}: {row[1]}" for row in [header, *rows] if len(row) == 2 and row[0]]
    out: list[str] = []
    for row in rows[:MAX_ROWS]:
        if out:
            out.append(DIVIDER)
        out.extend(
            f"{name}: {cell}" for name, cell in zip(header, row, strict=False) if name and cell
        )
    return out


def card_table(node: Mapping[str, object]) -> list[str]:
    """The lines of a card JSON 2.0 `table` component."""
    columns = node.get("columns")
    rows = node.get("rows")
    if not isinstance(columns, list) or not isinstance(rows, list):
        return []
    names: list[tuple[str, str]] = []
    for column in columns[:MAX_CELLS]:
        if isinstance(column, Mapping) and isinstance(column.get("name"), str):
            shown = column.get("display_name")
            names.append((column["name"], shown if isinstance(shown, str) and shown else ""))
    records = [
        [_scalar(row.get(name)) for name, _ in names]
        for row in rows[:MAX_ROWS]
        if isinstance(row, Mapping)
    ]
    return table_lines([shown or name for name, shown in names], records)


def json_object(text: str) -> dict[str, object] | None:
    """The JSON object a message's whole text is, or None."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")) or len(body) > MAX_JSON_CHARS:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def json_lines(text: str) -> list[str] | None:
    """The fields of a message that is one JSON object, as `key: value` lines, after the lines
    of text that introduce it ("告警推送：" over the object, or over a ```json fence); None for
    any other text."""
    head, data = "", json_object(text)
    start = text.find("\n{")
    if data is None and start >= 0:  # the object runs from a line's start to the end
        head, tail = text[:start], text[start:].strip()
        fence = head.rstrip().rsplit("\n", 1)[-1].strip()
        if fence.startswith("```") and tail.endswith("```"):
            head, tail = head.rstrip()[: -len(fence)], tail[:-3]
        data = json_object(tail)
    if data is None:
        return None
    lines: list[str] = [line for line in head.split("\n") if line.strip()]
    seen: set[str] = set()  # a nested key the object already has is another object's fact
    for key, value in list(data.items())[: MAX_CELLS * 2]:
        items = list(value.items()) if isinstance(value, Mapping) else [(key, value)]
        for inner, item in items[: MAX_CELLS * 2]:
            if isinstance(item, Mapping) or inner in seen:
                continue
            seen.add(inner)
            lines.append(f"{inner}: {_scalar(item)}")
    return [line for line in lines if read_pair(line) or line in head]


def _row(line: str) -> bool:
    text = line.strip()
    return text.startswith("|") and text.endswith("|") and text.count("|") >= 3


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")][:MAX_CELLS]


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return " ".join(value.split())[:1024]
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return " ".join(_scalar(item) for item in value[:MAX_CELLS] if not isinstance(item, list))
    return ""
