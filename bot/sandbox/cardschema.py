"""The card JSON 2.0 structure real Feishu holds a `"schema": "2.0"` card to (1.0 ignored what it
did not know; 2.0 refuses it: "卡片 JSON 2.0 版本更新说明", 属性校验变更). Each rule cites the
open-platform page it comes from; where the page gives the rule but not the code Feishu answers
with, the code is inferred (said so below) from the family of the refusals it resembles.

- the root holds only `schema`, `config`, `card_link`, `header`, `body` (no root `elements`, no
  `i18n_elements`: "卡片 JSON 2.0 结构"); `body` has `elements` and only its own properties;
  `config` and `header` only theirs; a header has a `title` (required there; code inferred);
  a header `template` is one of its colours; its `title` and `subtitle` are texts
  (`plain_text` or `lark_md` with a string `content`), each `text_tag_list` entry a
  `text_tag` with a `plain_text` text and one of the tag colours ("标题": 后缀标签最多 3 个,
  more are not shown, not refused; codes inferred); `config.width_mode` is `default`,
  `compact` or `fill`, its switches (`update_multi`, `streaming_mode`, …) booleans and its
  `summary` a `{"content": …}` ("卡片 JSON 2.0 结构" config; code inferred) — 230099 / 200621
  "parse card json err";
- `config.update_multi` false: 300302 "update_multi is false" (2.0 cards are shared only);
- the 1.0 components 2.0 removed (`note`, `action`): 200861 with the `ErrPath`;
- a button's `type`, `size`, `width` are the button's own values; a markdown `text_size` is one
  of the sizes (or one the card defines in `config.style.text_size`); a column's `width` is
  `auto`, `weighted` or 16–600 px and its `weight` 1–5; a column set's `flex_mode` one of its
  modes (component pages "按钮", "富文本（Markdown）", "分栏"; 200621, as the button's type);
- a `behaviors` entry of a kind interactions do not have (`callback`, `open_url`), a callback
  without a JSON object or string `value`, an `open_url` without `default_url` ("按钮": 交互
  配置 behaviors; 200621, code inferred);
- a `form` only directly in `body.elements` ("表单容器": 不可被内嵌在其它组件内), with a
  `name`, no `table`, `chart` or `form` inside, every input-like component in it named
  ("输入框": 嵌套在表单容器中时，该字段必填), a button submitting it (`form_action_type:
  submit`, the only way its data reaches the bot) and `form_action_type` only `submit` or
  `reset`; a `table` never inside a column set ("分栏": 支持内嵌除表单容器和表格组件外的其它所有
  组件) — 200621 (code inferred for all but the form's placement);
- an `i18n_content` (a text's per-language versions) or `config.locales` naming a language
  Feishu cards do not have ("配置卡片多语言": zh_cn, en_us, ja_jp, …; 200621, code inferred);
- containers nested more than five deep ("分栏"/"表单容器": 容器类组件最多支持嵌套五层组件):
  11310 with "nesting" (code inferred: the sub-code of the other limits).

    problem = v2_problem(card)   # None, or CardProblem
"""

from __future__ import annotations

import re
from typing import Any

from bot.sandbox.cardenvelope import LOCALES, envelope_problem
from bot.sandbox.cardtree import (
    OVER_LIMIT,
    REMOVED_TAG,
    CardProblem,
    children,
    components,
    invalid,
    parse_error,
)

REMOVED_IN_V2 = frozenset({"note", "action"})
BUTTON_TYPES = frozenset(
    {
        "default",
        "primary",
        "danger",
        "text",
        "primary_text",
        "danger_text",
        "primary_filled",
        "danger_filled",
        "laser",
    }
)
BUTTON_SIZES = frozenset({"tiny", "small", "medium", "large"})
TEXT_SIZES = frozenset(
    {
        "heading-0",
        "heading-1",
        "heading-2",
        "heading-3",
        "heading-4",
        "heading",
        "normal",
        "notation",
        "xxxx-large",
        "xxx-large",
        "xx-large",
        "x-large",
        "large",
        "medium",
        "small",
        "x-small",
    }
)
BEHAVIORS = frozenset({"callback", "open_url"})
FLEX_MODES = frozenset({"none", "stretch", "flow", "bisect", "trisect"})
CONTAINERS = frozenset({"column_set", "form", "collapsible_panel", "interactive_container"})
MAX_DEPTH = 5
# what a form submits: each must be named to be told apart in the callback's form_value
FORM_FIELDS = frozenset(
    {
        "input",
        "select_static",
        "multi_select_static",
        "select_person",
        "multi_select_person",
        "date_picker",
        "picker_time",
        "picker_datetime",
        "select_img",
        "checker",
    }
)
NOT_IN_FORM = frozenset({"table", "chart", "form"})
FORM_ACTIONS = frozenset({"submit", "reset"})
_PIXELS = re.compile(r"[1-9][0-9]*px")


def v2_problem(card: dict[str, Any]) -> CardProblem | None:
    """The first JSON 2.0 rule `card` breaks (see the module), or None."""
    problem = envelope_problem(card)
    if problem is not None:
        return problem
    body = card["body"]
    sizes = _custom_sizes(card.get("config", {}))
    forms: list[tuple[str, dict[str, Any]]] = []
    for path, node in components(body["elements"], "ROOT -> body -> elements"):
        tag = node.get("tag")
        if tag in REMOVED_IN_V2:
            return invalid(
                REMOVED_TAG,
                f"cards of schema V2 no longer support this capability; "
                f"ErrorValue: unsupported tag {tag}",
                path,
            )
        wrong = _misplaced(tag, path) or _bad_value(node, sizes)
        if wrong:
            return parse_error(wrong, path)
        if tag == "form":
            forms.append((path, node))
    for path, form in forms:  # once each of its components is known to be well formed
        wrong = _bad_form(form)
        if wrong:
            return parse_error(wrong, path)
    if max((_depth(node) for node in body["elements"] if isinstance(node, dict)), default=0) > (
        MAX_DEPTH
    ):
        return invalid(OVER_LIMIT, f"component nesting exceeds the limit; ErrorValue: {MAX_DEPTH}")
    return None


def _custom_sizes(config: dict[str, Any]) -> frozenset[str]:
    """The text sizes a card defines itself (`config.style.text_size`)."""
    style = config.get("style")
    defined = style.get("text_size") if isinstance(style, dict) else None
    return frozenset(defined) if isinstance(defined, dict) else frozenset()


def _misplaced(tag: Any, path: str) -> str:
    """A component where 2.0 does not take it: a form below the body's elements, a table in
    a column set, a table or chart in a form."""
    if tag == "form" and path.count("[") > 1:
        return "tag: form"
    if tag in NOT_IN_FORM and "(tag: form) -> " in path:
        return f"tag: {tag} in form"
    if tag == "table" and "(tag: column_set) -> " in path:
        return "tag: table in column_set"
    return ""


def _bad_value(node: dict[str, Any], sizes: frozenset[str]) -> str:
    """The property whose value the component does not have, or ""."""
    tag = node.get("tag")
    versions = node.get("i18n_content")
    if versions is not None:
        unknown = sorted(set(versions) - LOCALES) if isinstance(versions, dict) else ["?"]
        if unknown:
            return f"i18n_content.{unknown[0]}"
    if "behaviors" in node:
        wrong = _bad_behaviors(node["behaviors"])
        if wrong:
            return wrong
    if tag == "button":
        return _bad_button(node)
    if tag == "markdown" and "text_size" in node:
        size = node["text_size"]
        return "" if size in TEXT_SIZES or size in sizes else f"text_size {size}"
    if tag == "column_set" and node.get("flex_mode", "none") not in FLEX_MODES:
        return f"flex_mode {node.get('flex_mode')}"
    if tag == "column":
        return _bad_column(node)
    return ""


def _bad_button(node: dict[str, Any]) -> str:
    """The button property whose value 2.0 does not have (its type, size or width), or ""."""
    width = node.get("width", "default")
    if node.get("type", "default") not in BUTTON_TYPES:
        return f"type {node.get('type')}"
    if node.get("size", "medium") not in BUTTON_SIZES:
        return f"size {node.get('size')}"
    if width not in ("default", "fill") and not (
        isinstance(width, str) and _PIXELS.fullmatch(width)
    ):
        return f"width {width}"
    if "form_action_type" in node and node["form_action_type"] not in FORM_ACTIONS:
        return f"form_action_type {node['form_action_type']}"
    return ""


def _bad_behaviors(behaviors: Any) -> str:
    """What is wrong with a component's interactions, or ""."""
    if not isinstance(behaviors, list):
        return "behaviors"
    for behavior in behaviors:
        if not isinstance(behavior, dict) or behavior.get("type") not in BEHAVIORS:
            return f"behaviors.type {behavior.get('type') if isinstance(behavior, dict) else ''}"
        kind = behavior["type"]
        if kind == "callback" and not isinstance(behavior.get("value", {}), (dict, str)):
            return "behaviors.value"
        if kind == "open_url" and not isinstance(behavior.get("default_url"), str):
            return "behaviors.default_url"
    return ""


def _bad_column(node: dict[str, Any]) -> str:
    """A column's width (auto, weighted or 16–600 px) or weight (1–5) it cannot have, or ""."""
    width = node.get("width", "auto")
    pixels = isinstance(width, str) and _PIXELS.fullmatch(width) and 16 <= int(width[:-2]) <= 600
    if width not in ("auto", "weighted") and not pixels:
        return f"width {width}"
    weight = node.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 5:
        return f"weight {weight}"
    return ""


def _bad_form(form: dict[str, Any]) -> str:
    """What a form lacks: its name, a name on each field, a submit button; or ""."""
    if not isinstance(form.get("name"), str) or not form["name"]:
        return "form.name"
    inside = [node for _, node in components(form.get("elements", []), "")]
    for node in inside:
        if node.get("tag") in FORM_FIELDS and not node.get("name"):
            return f"{node['tag']}.name"
    submits = [
        n for n in inside if n.get("tag") == "button" and n.get("form_action_type") == "submit"
    ]
    return "" if submits else "form: no button with form_action_type submit"


def _depth(node: dict[str, Any]) -> int:
    """How many containers deep the component goes (itself included)."""
    below = max((_depth(child) for child in children(node)), default=0)
    return below + (1 if node.get("tag") in CONTAINERS else 0)
