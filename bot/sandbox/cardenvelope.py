"""The envelope of a card JSON 2.0 (root, `config`, `header`, `body`): only the properties
and values "卡片 JSON 2.0 结构" and "标题" give them, the rules listed in
`bot.sandbox.cardschema` (the components inside are judged there).

    problem = envelope_problem(card)   # None, or CardProblem
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.cardtree import NOT_SHARED, CardProblem, invalid, parse_error

ROOT_KEYS = frozenset({"schema", "config", "card_link", "header", "body"})
BODY_KEYS = frozenset(
    {
        "elements",
        "direction",
        "padding",
        "horizontal_spacing",
        "horizontal_align",
        "vertical_spacing",
        "vertical_align",
    }
)
HEADER_KEYS = frozenset(
    {"title", "subtitle", "text_tag_list", "i18n_text_tag_list", "template", "icon", "padding"}
)
CONFIG_KEYS = frozenset(
    {
        "streaming_mode",
        "streaming_config",
        "summary",
        "locales",
        "enable_forward",
        "update_multi",
        "width_mode",
        "use_custom_translation",
        "enable_forward_interaction",
        "style",
    }
)
TEMPLATES = frozenset(
    {
        "blue",
        "wathet",
        "turquoise",
        "green",
        "yellow",
        "orange",
        "red",
        "carmine",
        "violet",
        "purple",
        "indigo",
        "grey",
        "default",
    }
)
WIDTH_MODES = frozenset({"default", "compact", "fill"})
SWITCHES = frozenset(
    {
        "update_multi",
        "streaming_mode",
        "enable_forward",
        "use_custom_translation",
        "enable_forward_interaction",
    }
)
TAG_COLOURS = frozenset(
    {
        "neutral",
        "blue",
        "turquoise",
        "lime",
        "orange",
        "violet",
        "indigo",
        "wathet",
        "green",
        "yellow",
        "red",
        "purple",
        "carmine",
    }
)
TEXT_TAGS = frozenset({"plain_text", "lark_md"})
LOCALES = frozenset(
    {
        "zh_cn",
        "en_us",
        "ja_jp",
        "zh_hk",
        "zh_tw",
        "id_id",
        "vi_vn",
        "th_th",
        "pt_br",
        "es_es",
        "ko_kr",
        "de_de",
        "fr_fr",
        "it_it",
        "ru_ru",
        "ms_my",
    }
)


def envelope_problem(card: dict[str, Any]) -> CardProblem | None:
    """The root, config, header and body: known properties only, shared, a titled header."""
    stray = sorted(set(card) - ROOT_KEYS)
    if stray:
        return parse_error(stray[0])
    config = card.get("config", {})
    if not isinstance(config, dict) or set(config) - CONFIG_KEYS:
        return parse_error(f"config.{min(set(config) - CONFIG_KEYS, default='')}")
    wrong = _bad_config(config)
    if wrong:
        return parse_error(f"config.{wrong}")
    locales = config.get("locales", [])
    unknown = [x for x in locales if x not in LOCALES] if isinstance(locales, list) else [locales]
    if unknown:
        return parse_error(f"config.locales: {unknown[0]}")
    if config.get("update_multi") is False:
        return invalid(NOT_SHARED, "update_multi is false")
    header = card.get("header", {})
    if not isinstance(header, dict) or set(header) - HEADER_KEYS:
        return parse_error(f"header.{min(set(header) - HEADER_KEYS, default='')}")
    if "template" in header and header["template"] not in TEMPLATES:
        return parse_error(f"header.template: {header['template']}")
    if "header" in card and not isinstance(header.get("title"), dict):
        return parse_error("header.title")
    wrong = _bad_header(header, _custom_colours(config))
    if wrong:
        return parse_error(f"header.{wrong}")
    body = card.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("elements"), list):
        return parse_error("body.elements")
    extra = sorted(set(body) - BODY_KEYS)
    return parse_error(f"body.{extra[0]}") if extra else None


def _bad_config(config: dict[str, Any]) -> str:
    """The config value 2.0 does not take (a width mode, a switch that is no boolean, a
    summary without content), or ""."""
    if config.get("width_mode", "default") not in WIDTH_MODES:
        return f"width_mode {config.get('width_mode')}"
    for switch in sorted(SWITCHES & set(config)):
        if not isinstance(config[switch], bool):
            return switch
    summary = config.get("summary")
    if summary is not None and not (
        isinstance(summary, dict)
        and (
            isinstance(summary.get("content"), str) or isinstance(summary.get("i18n_content"), dict)
        )
    ):
        return "summary"
    return ""


def _custom_colours(config: dict[str, Any]) -> frozenset[str]:
    """The colours a card defines itself (`config.style.color`), usable as a tag's colour."""
    style = config.get("style")
    defined = style.get("color") if isinstance(style, dict) else None
    return frozenset(defined) if isinstance(defined, dict) else frozenset()


def _bad_header(header: dict[str, Any], colours: frozenset[str]) -> str:
    """The header text or suffix tag 2.0 does not take, or ""."""
    for key in ("title", "subtitle"):
        if key in header and not _is_text(header[key]):
            return key
    tags = header.get("text_tag_list", [])
    if not isinstance(tags, list):
        return "text_tag_list"
    for index, tag in enumerate(tags):
        if not isinstance(tag, dict) or tag.get("tag") != "text_tag":
            return f"text_tag_list[{index}].tag"
        text = tag.get("text")
        if not _is_text(text) or not isinstance(text, dict) or text["tag"] != "plain_text":
            return f"text_tag_list[{index}].text"
        if tag.get("color", "neutral") not in TAG_COLOURS | colours:
            return f"text_tag_list[{index}].color {tag.get('color')}"
    return ""


def _is_text(node: Any) -> bool:
    """A text object: `plain_text` or `lark_md` with a string content (or per-language
    versions in `i18n_content`)."""
    return (
        isinstance(node, dict)
        and node.get("tag") in TEXT_TAGS
        and (isinstance(node.get("content"), str) or isinstance(node.get("i18n_content"), dict))
    )
