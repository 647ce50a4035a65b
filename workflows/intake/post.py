"""Plain text out of a Lark rich-text post, as an alert bot sends it and as Lark delivers it.

A post is `{"title": …, "content": [[run, …], …]}` (one list of runs a paragraph), or the same
written per language (`{"zh_cn": {…}, "en_us": {…}}`, read in one language, Chinese first, as
cards are). Runs: `text`, `a` (its text), `md`, `code_block` (its lines), `at` (the mention key
`mention` maps it to), `hr` (a `---` line: it separates alerts as a card's divider does); images,
media and emotions carry no alert text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from workflows.intake.card import DIVIDER, one_locale

MAX_PARAGRAPHS = 2000
MAX_RUNS = 200
_TEXT_RUNS = frozenset({"text", "a", "md", "code_block"})


def _no_mention(user_id: str) -> str:
    return user_id if user_id.startswith("@_") else ""


def post_text(data: Mapping[str, object], mention: Callable[[str], str] = _no_mention) -> str:
    """The post's title and paragraphs, one line each (see the module docstring)."""
    if "content" not in data:
        locales = {key: value for key, value in data.items() if isinstance(value, Mapping)}
        inner = one_locale({k: v for k, v in locales.items() if "content" in v})
        data = inner if isinstance(inner, Mapping) else {}
    title = data.get("title")
    lines = [title] if isinstance(title, str) and title else []
    paragraphs = data.get("content")
    for paragraph in paragraphs[:MAX_PARAGRAPHS] if isinstance(paragraphs, list) else []:
        parts: list[str] = []
        for run in paragraph[:MAX_RUNS] if isinstance(paragraph, list) else []:
            if not isinstance(run, Mapping):
                continue
            tag, text = run.get("tag"), run.get("text")
            if tag in _TEXT_RUNS and isinstance(text, str):
                parts.append(text)
            elif tag == "hr":
                parts.append(DIVIDER)
            elif tag == "at" and isinstance(run.get("user_id"), str):
                parts.append(mention(str(run["user_id"])))
        lines.append("".join(parts))
    return "\n".join(lines)
