"""Cards of the basic commands (pure: data in, Card JSON 2.0 out)."""

from __future__ import annotations

from typing import Any

from cards.markup import plain
from cards.texts import Texts


def text(content: str) -> dict[str, Any]:
    """A plain_text field (no markdown): neutralised values show as their own characters."""
    return {"tag": "plain_text", "content": plain(content)}


def more(items: int, shown: int, say: Texts) -> list[str]:
    """A "…and N more" line when a list was cut."""
    return [say("card.more", count=items - shown)] if items > shown else []


def markdown(content: str, *, size: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"tag": "markdown", "content": content}
    if size:
        element["text_size"] = size
    return element


def button(label: str, value: dict[str, Any], *, kind: str = "default") -> dict[str, Any]:
    return {
        "tag": "button",
        "text": text(label),
        "type": kind,
        "behaviors": [{"type": "callback", "value": value}],
    }


def card(title: str, elements: list[dict[str, Any]], *, template: str = "blue") -> dict[str, Any]:
    """A Card JSON 2.0 envelope, shared (`update_multi`) so updates show for everyone."""
    return {
        "schema": "2.0",
        "config": {"update_multi": True},
        "header": {"title": text(title), "template": template},
        "body": {"elements": elements},
    }


def ping_card(
    title: str, figures: list[str], refresh_label: str, refresh_value: dict[str, Any], note: str
) -> dict[str, Any]:
    """Latency figures, a button to measure again, and who measured when."""
    return card(
        title,
        [
            markdown("\n".join(f"- {line}" for line in figures)),
            button(refresh_label, refresh_value, kind="primary"),
            markdown(note, size="notation"),
        ],
        template="green",
    )
