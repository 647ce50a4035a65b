"""The `escalation:` section: which policy pages an incident, its steps, and what is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import ConfigError, load_settings
from workflows.oncall.escalation_policy import EscalationConfig
from workflows.oncall.paging import chain, reason_of

LEVELS = [
    {"after": "0m", "notify": ["ou_a"], "via": ["chat"]},
    {"after": "90s", "notify": ["ou_b"], "via": ["urgent_phone", "direct"]},
]


def test_a_chat_then_a_severity_then_default_chooses_the_policy() -> None:
    config = EscalationConfig.model_validate(
        {
            "policies": {"default": LEVELS, "quiet": LEVELS[:1]},
            "chats": {"oc_dev": "quiet"},
            "severities": {"info": "none"},
        }
    )
    assert config.policy_for("oc_ops", "critical") == "default"
    assert config.policy_for("oc_dev", "info") == "quiet"
    assert config.policy_for("oc_ops", "info") is None
    assert EscalationConfig().policy_for("oc_ops", "critical") is None


def test_the_last_level_repeats_until_acknowledged() -> None:
    config = EscalationConfig.model_validate(
        {"policies": {"default": LEVELS}, "repeat": 2, "repeat_every": "5m"}
    )
    steps = [(s.number, s.level, s.delay) for s in config.steps("default")]
    assert steps == [
        (1, 1, timedelta(0)),
        (2, 2, timedelta(seconds=90)),
        (3, 2, timedelta(seconds=390)),
        (4, 2, timedelta(seconds=690)),
    ]


def test_channels_fall_back_to_a_chat_mention_and_refusals_have_reasons() -> None:
    assert chain(("urgent_phone", "direct")) == ("urgent_phone", "direct", "chat")
    assert chain(("chat", "urgent_app")) == ("chat", "urgent_app")
    assert reason_of(230024) == "quota"
    assert reason_of(99991672) == "permission"
    assert reason_of(230027) == "forbidden"
    assert reason_of(1) == "failed"


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"policies": {"default": [{"notify": ["oncall:nope"]}]}}, "oncall:nope"),
        ({"policies": {"default": [{"notify": ["alice"]}]}}, "not a target"),
        ({"policies": {"default": [{"notify": ["ou_a"], "via": ["pager"]}]}}, "via"),
        ({"policies": {"default": list(reversed(LEVELS))}}, "in the order they fire"),
        ({"policies": {"default": LEVELS}, "chats": {"oc_x": "missing"}}, "no escalation policy"),
        ({"policies": {"default": [{"after": "soon", "notify": ["ou_a"]}]}}, "length of time"),
    ],
)
def test_a_wrong_section_stops_start_up_with_one_line(
    section: dict[str, object], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(escalation=section)
