"""Natural-language schedules: Chinese and English text → an intermediate form (`spec`) →
APScheduler 3 triggers (`compiler`), the rule in words (`wording`), a model as a fallback
(`fallback`). No database, no Lark, no model SDK unless the fallback is used.

Usage::

    from workflows.schedule import parse, next_runs, cron_of, describe

    result = parse("每个工作日早上9点检查服务器健康", timezone="Asia/Shanghai")
    if result.status == "scheduled" and result.spec is not None:
        next_runs(result.spec, now, 3)     # the trigger's own next fire times
        cron_of(result.spec)               # "0 9 * * 1-5"
        describe(result.spec, "zh")        # "每个工作日 09:00"
    else:
        result.question                    # clarify: what to ask, in the text's language
"""

from workflows.schedule.compiler import (
    COALESCE,
    JOB_DEFAULTS,
    MAX_INSTANCES,
    MISFIRE_GRACE_TIME,
    cron_of,
    kind_of,
    next_runs,
    trigger_for,
    trigger_for_cron,
)
from workflows.schedule.parser import DEFAULT_TIMEZONE, ParseResult, language_of, parse
from workflows.schedule.spec import (
    Calendar,
    Daily,
    Every,
    MonthDays,
    NthWeekdays,
    Once,
    Spec,
    SpecError,
    TimeOfDay,
    Weekly,
    Window,
    from_json,
    to_json,
)
from workflows.schedule.wording import describe

__all__ = [
    "COALESCE",
    "DEFAULT_TIMEZONE",
    "JOB_DEFAULTS",
    "MAX_INSTANCES",
    "MISFIRE_GRACE_TIME",
    "Calendar",
    "Daily",
    "Every",
    "MonthDays",
    "NthWeekdays",
    "Once",
    "ParseResult",
    "Spec",
    "SpecError",
    "TimeOfDay",
    "Weekly",
    "Window",
    "cron_of",
    "describe",
    "from_json",
    "kind_of",
    "language_of",
    "next_runs",
    "parse",
    "to_json",
    "trigger_for",
    "trigger_for_cron",
]
