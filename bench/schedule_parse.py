"""The schedule parser: accuracy on the corpus, time per utterance, and the CLI's cold start.

1. Accuracy: every utterance of `tests/schedule/corpus.yaml` through the rules parser, judged as
   the corpus test judges it (status, task, zone, the next fire times as instants); overall, per
   language (zh, en, mixed) and per category (the kinds of sentence of issue 17: dates,
   relative, en_times, recurrence, workdays, questions; core for the rest), with the misses
   listed. Goal ≥ 98 % per category.
2. Time per utterance, median and p99 over `--rounds` passes of the corpus: reading the text
   (`parse`), and reading it plus the contract object with its 5 next fire times (what
   `larkops schedule parse --json` prints). Goal < 2 ms.
3. `larkops schedule parse "每天9点" --json` as a fresh process, median wall time. Goal < 1 s.

Prints figures; asserts nothing.

    .venv/bin/python bench/schedule_parse.py [--rounds 20] [--cold 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import figure  # noqa: E402

from tests.schedule.test_corpus import CATEGORIES, category, corpus, problems  # noqa: E402
from workflows.schedule.parser import parse  # noqa: E402


def accuracy() -> None:
    totals: dict[str, list[int]] = {}
    kinds: dict[str, list[int]] = {kind: [0, 0] for kind in CATEGORIES}
    misses: list[str] = []
    for entry in corpus():
        now = datetime.fromisoformat(entry["now"])
        got = parse(entry["text"], now=now, timezone=entry["tz"]).contract(now)
        found = problems(entry, got)
        for tally in (totals.setdefault(entry["lang"], [0, 0]), kinds[category(entry)]):
            tally[0] += not found
            tally[1] += 1
        if found:
            misses.append(f"  miss [{category(entry)}] {entry['text']!r}: {'; '.join(found)}")
    right = sum(t[0] for t in totals.values())
    count = sum(t[1] for t in totals.values())
    print(f"accuracy: {right}/{count} = {100 * right / count:.1f}% (goal >= 98%)")
    share = 100 * right / count
    figure(7, f"schedule parser accuracy ({count} utterances)", share, "%", ">= 98", share >= 98)
    for language, (ok, n) in sorted(totals.items()):
        print(f"  {language:5} {ok}/{n} = {100 * ok / n:.1f}%")
    print("per category (goal >= 98% each):")
    for kind, (ok, n) in kinds.items():
        share = 100 * ok / n if n else 0.0
        print(f"  {kind:10} {ok}/{n} = {share:.1f}%")
        figure(17, f"schedule parser accuracy, {kind} ({n})", share, "%", ">= 98", share >= 98)
    for line in misses:
        print(line)


def timing(rounds: int) -> None:
    entries = [(e["text"], datetime.fromisoformat(e["now"]), e["tz"]) for e in corpus()]
    for text, now, zone in entries:  # warm up: compiled regexes, zone data
        parse(text, now=now, timezone=zone).contract(now)
    for label, with_contract in (("parse", False), ("parse + contract", True)):
        samples: list[float] = []
        for _ in range(rounds):
            for text, now, zone in entries:
                start = time.perf_counter()
                result = parse(text, now=now, timezone=zone)
                if with_contract:
                    result.contract(now)
                samples.append(time.perf_counter() - start)
        samples.sort()
        median = statistics.median(samples) * 1000
        p99 = samples[int(len(samples) * 0.99) - 1] * 1000
        print(
            f"{label:17} per utterance: median {median:.3f} ms, p99 {p99:.3f} ms "
            f"({len(samples)} samples; goal < 2 ms)"
        )
        figure(7, f"{label} per utterance, median", median, "ms", "< 2", median < 2)


def cold(runs: int) -> None:
    larkops = Path(sys.executable).parent / "larkops"
    command = [str(larkops), "schedule", "parse", "每天9点", "--json"]
    samples: list[float] = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        samples.append(time.perf_counter() - start)
    print(
        f"cold `larkops schedule parse 每天9点 --json`: median {statistics.median(samples):.3f} s "
        f"over {runs} runs (goal < 1 s)"
    )
    took = statistics.median(samples)
    figure(7, "cold `larkops schedule parse --json`, median", took, "s", "< 1", took < 1)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--rounds", type=int, default=20)
    options.add_argument("--cold", type=int, default=5)
    args = options.parse_args()
    accuracy()
    timing(args.rounds)
    if args.cold:
        cold(args.cold)


if __name__ == "__main__":
    main()
