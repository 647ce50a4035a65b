"""The lexer skips the rules of a script the text lacks (Chinese rules on an English text, English
rules on a Chinese one) and compiles a rule only when it is tried: checked here so that skipping
never changes what a text means."""

from __future__ import annotations

import random
import string
import subprocess
import sys
from pathlib import Path

import yaml

from workflows.schedule.lexer import RULES, normalise
from workflows.schedule.pieces import SCRIPTS, Rule

ROOT = Path(__file__).resolve().parents[2]
CORPORA = ("corpus.yaml", "typed.yaml")


def _texts() -> list[str]:
    found: list[str] = []
    for name in CORPORA:
        entries = yaml.safe_load((Path(__file__).parent / name).read_text(encoding="utf-8"))
        found += [normalise(entry["text"]) for entry in entries]
    return found


def _accepted(item: Rule, text: str) -> list[str]:
    """What `item` matches in `text` and its handler accepts."""
    return [
        match.group(0)
        for match in item.pattern.finditer(text)
        if match.end() > match.start() and item.handler(match)
    ]


def test_a_skipped_rule_never_matches_what_it_was_skipped_for() -> None:
    """Every match of a Chinese (English) rule holds a Chinese character (a Latin letter): on
    every corpus text, and on random texts of digits and punctuation (how 21:00 or 9:30-17:30
    look), where only rules of no script may match."""
    samples = ["21:00", "9:30-17:30", "18.45", "@7", "0930", "12/25", "2026-12-31 20:00", "9~18:00"]
    shuffle = random.Random(17)
    alphabet = string.digits + ":-./~ ,+@#%()"
    samples += ["".join(shuffle.choices(alphabet, k=shuffle.randint(2, 12))) for _ in range(2000)]
    texts = [*_texts(), *samples]
    for item in RULES:
        if not item.script:
            continue
        for text in texts:
            for found in _accepted(item, text):
                assert SCRIPTS[item.script].search(found), (item.name, text)


def test_importing_the_parser_compiles_no_rule() -> None:
    """Start-up: `larkops schedule parse` pays for the rules its text may need, not all of them
    (a Chinese text tries no English rule but those that read digits alone)."""
    code = (
        "import workflows.schedule.parser as p\n"
        "from workflows.schedule.lexer import RULES\n"
        "assert not any('pattern' in vars(r.regex) for r in RULES)\n"
        "p.parse('每天9点检查磁盘')\n"
        "used = [r for r in RULES if 'pattern' in vars(r.regex)]\n"
        "assert used and all(r.script != 'en' for r in used), [r.name for r in used]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
