"""One machine-readable line per headline figure, for `bench/all.py` to gather into its table.

A bench script keeps its prose and also calls, where it computes a figure an issue named:

    figure(5, "policy decision median", 24.8, "µs", "< 1000", 24.8 < 1000)

which prints `::figure:: {"issue": 5, "name": ..., "value": ..., ...}` on a line of its own.
`met` is None where the issue set no goal.
"""

from __future__ import annotations

import json
import math
from typing import Any

PREFIX = "::figure::"


def figure(issue: int, name: str, value: float, unit: str, goal: str, met: bool | None) -> None:
    number = float(value)
    record = {
        "issue": issue,
        "name": name,
        "value": number if math.isfinite(number) else None,
        "unit": unit,
        "goal": goal,
        "met": None if met is None else bool(met),
    }
    print(f"{PREFIX} {json.dumps(record, ensure_ascii=False)}", flush=True)


def parse(line: str) -> dict[str, Any] | None:
    """The record of a `::figure::` line, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        record = json.loads(line[len(PREFIX) :])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None
