"""Sentences as Feishu users type them (`typed.yaml`, a corpus apart from `corpus.yaml`): every
one through the parser, fire times compared as instants, and the ends of bounded schedules."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.schedule.test_corpus import problems, run_entry

TYPED = Path(__file__).with_name("typed.yaml")


@cache
def typed() -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = yaml.safe_load(TYPED.read_text(encoding="utf-8"))
    return entries


def test_typed_size() -> None:
    languages = [entry["lang"] for entry in typed()]
    assert len(languages) >= 150
    assert languages.count("zh") > len(languages) / 2
    assert languages.count("en") >= 20
    assert languages.count("mixed") >= 3
    statuses = {entry["status"] for entry in typed()}
    assert statuses == {"scheduled", "clarify", "not_schedule"}


@pytest.mark.parametrize("entry", typed(), ids=lambda e: str(e["text"])[:40])
def test_typed_utterance(entry: dict[str, Any]) -> None:
    got = run_entry(entry)
    assert not problems(entry, got), (entry["text"], problems(entry, got))
