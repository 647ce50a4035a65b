"""Forwarder messages read right: our corpus of what alert forwarders post into Feishu.

For every forwarder of `tests/fixtures/forwarders/` (PrometheusAlert, Nightingale, WatchAlert,
alertmanager-bot, alertmanager-webhook-feishu, Grafana custom titles, Uptime Kuma, Zabbix,
SkyWalking, cloud monitors, ARMS/SLS, Nagios/Icinga, Datadog, Sentry, Kibana/OpenSearch,
Kubernetes events, multi-alert bodies, CI notices, Feishu shapes, data in messages, shell
scripts, card layouts, home-made Chinese templates), judged as
`tests/unit/test_forwarders.py` judges them:

1. the share of messages parsed with every field right (the number of alerts, and each alert's
   state, title, severity, expected labels and start time; understood, no `<no value>`).
   Goal 100 %.
2. the share of fingerprint pairs right (a firing and its recovery share one; two targets
   never do). Goal 100 %.

Misses are listed. Prints figures; asserts nothing.

    .venv/bin/python bench/intake_corpus.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from figures import figure  # noqa: E402

from tests.unit.test_forwarders import forwarders, pair_problem, problems, read  # noqa: E402

ISSUE = 16


def main() -> None:
    started = time.perf_counter()
    totals = [0, 0, 0, 0]  # messages right, messages, pairs right, pairs
    misses: list[str] = []
    print(f"{'forwarder':<30} {'messages right':>16} {'pairs right':>14}")
    for name, data in forwarders().items():
        right = count = pairs_right = pairs = 0
        for message in data["messages"]:
            found = problems(message, read(message))
            right += not found
            count += 1
            if found:
                misses.append(f"  miss {name}/{message['id']}: {'; '.join(found)}")
        for pair in data["pairs"]:
            problem = pair_problem(data, pair)
            pairs_right += not problem
            pairs += 1
            if problem:
                misses.append(f"  pair {name}: {problem}")
        print(
            f"{name:<30} {right:>7}/{count:<3} {_share(right, count):>5} "
            f"{pairs_right:>5}/{pairs:<3} {_share(pairs_right, pairs):>5}"
        )
        totals = [totals[0] + right, totals[1] + count, totals[2] + pairs_right, totals[3] + pairs]
    print("\n".join(misses) or "  no misses")
    elapsed = (time.perf_counter() - started) * 1000
    print(f"all: {totals[0]}/{totals[1]} messages, {totals[2]}/{totals[3]} pairs, {elapsed:.0f} ms")
    messages_share = 100 * totals[0] / max(totals[1], 1)
    pairs_share = 100 * totals[2] / max(totals[3], 1)
    figure(
        ISSUE,
        "forwarder messages, every field right",
        messages_share,
        "%",
        "100 %",
        messages_share == 100,
    )
    figure(
        ISSUE, "forwarder fingerprint pairs right", pairs_share, "%", "100 %", pairs_share == 100
    )


def _share(right: int, count: int) -> str:
    return f"{100 * right / count:.0f}%" if count else "n/a"


if __name__ == "__main__":
    main()
