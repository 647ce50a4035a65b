"""Roles: the hierarchy, where grants come from, membership lookups (fail closed), and who may
decide an approval gate. Membership comes from a fake Lark directory here; the emulator's real
endpoints are exercised in tests/lark/test_roles.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import ConfigError, Settings, load_settings
from bot.roles import AccessControl, admits, decider, gate_policy, held, top_role
from storage.models import Approval


class FakeDirectory:
    """Departments per person and members per group, as Lark's contact and chat APIs answer
    (after `delay` seconds: a slow directory, which the lookup timeout must give up on)."""

    def __init__(
        self,
        departments: dict[str, set[str]] | None = None,
        groups: dict[str, set[str]] | None = None,
        *,
        broken: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.departments = departments or {}
        self.groups = groups or {}
        self.broken = broken
        self.delay = delay
        self.asked: list[str] = []

    async def user_departments(self, open_id: str) -> frozenset[str]:
        self.asked.append(f"user:{open_id}")
        await asyncio.sleep(self.delay)
        if self.broken:
            raise RuntimeError("contact API: no permission")
        return frozenset(self.departments.get(open_id, set()))

    async def chat_members(self, chat_id: str) -> frozenset[str]:
        self.asked.append(f"chat:{chat_id}")
        await asyncio.sleep(self.delay)
        if self.broken:
            raise RuntimeError("chat members: bot not in the group")
        return frozenset(self.groups.get(chat_id, set()))


def settings(**values: Any) -> Settings:
    return load_settings(**values)


async def role_of(
    config: Settings, who: str, chat: str = "oc_ops", directory: Any = None
) -> str | None:
    return (await AccessControl(config, directory).resolve(who, chat)).role


def test_higher_roles_may_do_what_lower_ones_may() -> None:
    assert admits(held("approver"), ("operator",))
    assert admits(held("admin"), ("viewer",))
    assert admits(held("operator"), ("operator",))
    assert not admits(held("viewer"), ("operator",))
    assert not admits(held("operator"), ("approver",))
    assert not admits(held(None), ("viewer",))
    # nothing declared means viewer; `member` is any role; "*" needs none
    assert admits(held("viewer"), ())
    assert not admits(frozenset(), ())
    assert admits(held("viewer"), ("member",))
    assert admits(frozenset(), ("*",))
    # names outside the hierarchy must be held as they are
    assert not admits(held("admin"), ("auditor",))
    assert top_role(held("approver")) == "approver"
    assert held("operator") == {"viewer", "member", "operator"}


async def test_without_a_roles_section_everybody_is_an_operator() -> None:
    config = settings(
        admins=["ou_carol"],
        approvers=["ou_bob"],
        incidents={"approvers_by_chat": {"oc_dev": ["ou_alice"]}},
    )
    assert await role_of(config, "ou_dave") == "operator"
    assert await role_of(config, "ou_bob") == "approver"
    assert await role_of(config, "ou_carol") == "admin"
    assert await role_of(config, "ou_alice", "oc_ops") == "operator"
    assert await role_of(config, "ou_alice", "oc_dev") == "approver"  # that chat only


async def test_with_roles_unknown_people_are_viewers_and_grants_add_up() -> None:
    config = settings(
        approvers=["ou_bob"],
        roles={
            "global": {"operator": ["ou_alice"]},
            "chats": {"oc_ops": {"approver": ["ou_alice"]}},
        },
    )
    assert await role_of(config, "ou_dave") == "viewer"
    assert await role_of(config, "ou_bob") == "approver"  # LARKOPS_APPROVERS still counts
    assert await role_of(config, "ou_alice", "oc_dev") == "operator"
    assert await role_of(config, "ou_alice", "oc_ops") == "approver"  # the chat's grant wins
    found = await AccessControl(config, None).resolve("ou_alice", "oc_ops")
    sources = {(g.role, g.source) for g in found.grants}
    assert sources == {
        ("operator", "roles.global"),
        ("approver", "roles.chats.oc_ops"),
        ("viewer", "roles.default"),
    }


async def test_a_chats_default_replaces_the_global_default() -> None:
    config = settings(
        roles={
            "default": "none",
            "chats": {"oc_ops": {"default": "operator"}, "oc_dev": {"viewer": ["ou_bob"]}},
        }
    )
    assert await role_of(config, "ou_dave", "oc_ops") == "operator"
    assert await role_of(config, "ou_dave", "oc_dev") is None
    assert await role_of(config, "ou_bob", "oc_dev") == "viewer"
    nobody = await AccessControl(config, None).resolve("ou_dave", "oc_dev")
    assert nobody.roles == frozenset()


async def test_department_and_group_members_get_their_grants() -> None:
    directory = FakeDirectory(
        departments={"ou_sre": {"od-sre", "od-all"}}, groups={"oc_oncall": {"ou_pager"}}
    )
    config = settings(
        roles={
            "global": {"approver": ["dept:od-sre"], "operator": ["chat:oc_oncall"]},
        }
    )
    assert await role_of(config, "ou_sre", directory=directory) == "approver"
    assert await role_of(config, "ou_pager", directory=directory) == "operator"
    assert await role_of(config, "ou_dave", directory=directory) == "viewer"
    # one resolution asks each thing once, however many grants name it
    directory.asked.clear()
    twice = settings(roles={"global": {"approver": ["dept:od-sre"], "operator": ["dept:od-x"]}})
    await role_of(twice, "ou_sre", directory=directory)
    assert directory.asked == ["user:ou_sre"]


async def test_a_failed_lookup_grants_nothing_and_the_rest_still_counts() -> None:
    config = settings(
        approvers=["ou_bob"],
        roles={"global": {"approver": ["dept:od-sre"], "operator": ["chat:oc_oncall"]}},
    )
    broken = FakeDirectory(departments={"ou_sre": {"od-sre"}}, broken=True)
    found = await AccessControl(config, broken).resolve("ou_sre", "oc_ops")
    assert found.role == "viewer"
    assert set(found.failed) == {"dept:od-sre", "chat:oc_oncall"}
    assert await role_of(config, "ou_bob", directory=broken) == "approver"


async def test_a_slow_lookup_counts_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.roles.LOOKUP_SECONDS", 0.05)
    config = settings(roles={"global": {"approver": ["dept:od-sre"]}})
    slow = FakeDirectory(departments={"ou_sre": {"od-sre"}}, delay=1.0)
    found = await AccessControl(config, slow).resolve("ou_sre", "oc_ops")
    assert found.role == "viewer"
    assert found.failed == ("dept:od-sre",)


async def test_bots_are_not_looked_up() -> None:
    directory = FakeDirectory(departments={"ou_alertbot": {"od-sre"}})
    config = settings(roles={"default": "operator", "global": {"approver": ["dept:od-sre"]}})
    found = await AccessControl(config, directory).resolve("ou_alertbot", "oc_ops", lookups=False)
    assert found.role == "operator"
    assert directory.asked == []


def test_a_member_that_is_no_id_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigError, match="is not a member"):
        settings(roles={"global": {"approver": ["bob"]}})
    with pytest.raises(ConfigError, match="owner"):
        settings(roles={"global": {"owner": ["ou_bob"]}})
    with pytest.raises(ConfigError, match="default"):
        settings(roles={"default": "admin"})


def test_who_may_decide_a_gate() -> None:
    """Settings become gate rules in one place (`gate_policy`), roles a decider (`decider`)."""

    def gate(listed: list[str], *, named: bool = False) -> Approval:
        return Approval(allowed_approvers=listed, approvers_named=named)

    def may(role: str, user: str, listed: list[str], config: Settings, named: bool = False) -> bool:
        return gate_policy(config).may_decide(
            gate(listed, named=named), decider(held(role), user), "oc_ops"
        )

    legacy_open = settings()
    assert may("operator", "ou_x", [], legacy_open)  # nobody configured
    assert gate_policy(legacy_open).approves(decider(held("operator"), "ou_x"), "oc_ops")
    legacy = settings(approvers=["ou_bob"], admins=["ou_carol"])
    assert may("approver", "ou_bob", ["ou_bob"], legacy)
    assert may("admin", "ou_carol", ["ou_bob"], legacy)
    assert not may("operator", "ou_x", ["ou_bob"], legacy)
    assert not gate_policy(legacy).approves(decider(held("operator"), "ou_x"), "oc_ops")
    # with roles: the approver role decides gates naming the usual approvers (or nobody) ...
    config = settings(approvers=["ou_bob"], roles={"global": {"approver": ["dept:od-sre"]}})
    assert may("approver", "ou_sre", ["ou_bob"], config)
    assert may("approver", "ou_sre", [], config)
    assert not may("operator", "ou_x", [], config)
    # ... but a list the policy named admits only its members and admins
    assert not may("approver", "ou_sre", ["ou_dba"], config, named=True)
    assert not may("approver", "ou_sre", ["ou_bob"], config, named=True)  # even the usual list
    assert may("viewer", "ou_dba", ["ou_dba"], config, named=True)
    assert gate_policy(config).ttl.total_seconds() == 30 * 60
