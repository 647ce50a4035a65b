"""Everything the scheduler says in words, Chinese and English, in one place: the rule of a
spec ("每个工作日 09:00", "every Friday at 17:00") and the clarifying questions.

We generate the rule ourselves (cron-descriptor's zh_CN is incomplete and it cannot say "last
day of the month" or "first Monday"). Usage::

    describe(spec, "zh")    # "工作日 09:00–18:00 每 30 分钟"
    question(clarify, "en", task="deploy")
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import time

from workflows.schedule.clarify import Clarify
from workflows.schedule.spec import (
    WEEKDAYS,
    WEEKEND,
    WORKDAYS,
    Daily,
    DayFromEnd,
    Days,
    Either,
    Every,
    Festival,
    MonthDays,
    MonthWorkday,
    NthWeekdays,
    Once,
    Spec,
    TimeOfDay,
    Weekly,
    WeekStep,
    Workdays,
)

ZH_DAYS = dict(zip(WEEKDAYS, ("周一", "周二", "周三", "周四", "周五", "周六", "周日"), strict=True))
EN_DAYS = dict(
    zip(
        WEEKDAYS,
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        strict=True,
    )
)
ZH_NTH = {1: "第一个", 2: "第二个", 3: "第三个", 4: "第四个", 5: "第五个", -1: "最后一个"}
EN_NTH = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", -1: "last"}
EN_MONTHS: tuple[str, ...] = ("January", "February", "March", "April", "May", "June", "July")
EN_MONTHS += ("August", "September", "October", "November", "December")
EN_PERIODS = {"dawn": "the small hours", "morning": "the morning", "afternoon": "the afternoon"}
EN_PERIODS.update({"dusk": "the evening", "evening": "the evening", "night": "the night"})
EN_PERIODS.update({"noon": "the noon hour", "midnight": "midnight"})
ZH_PERIOD_WORDS = {"dawn": "凌晨", "morning": "早上", "afternoon": "下午", "dusk": "傍晚"}
ZH_PERIOD_WORDS.update({"noon": "中午", "midnight": "午夜"})
ZH_PERIOD_WORDS.update({"evening": "晚上", "night": "夜里"})
ZH_EXAMPLES = {"dawn": "凌晨3点", "morning": "早上9点", "afternoon": "下午3点", "dusk": "傍晚6点"}
ZH_EXAMPLES.update({"evening": "晚上8点", "night": "夜里11点"})
EN_EXAMPLES = {"dawn": "3am", "morning": "9am", "afternoon": "3pm", "dusk": "6pm"}
EN_EXAMPLES.update({"evening": "8pm", "night": "11pm"})


def _en_list(items: Sequence[str]) -> str:
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _ordinal(value: int) -> str:
    suffix = "th" if 10 <= value % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(value % 10, "th")
    return f"{value}{suffix}"


def _times(times: Sequence[TimeOfDay], language: str) -> str:
    words = [str(time) for time in times]
    return "、".join(words) if language == "zh" else _en_list(words)


ZH_FESTIVALS = {"chuxi": "除夕", "chunjie": "春节", "yuanxiao": "元宵节", "duanwu": "端午节"}
ZH_FESTIVALS.update({"qixi": "七夕", "zhongqiu": "中秋节", "chongyang": "重阳节", "laba": "腊八"})
ZH_FESTIVALS.update(
    {"yuandan": "元旦", "laodong": "劳动节", "guoqing": "国庆节", "qingming": "清明"}
)
EN_FESTIVALS = {"chuxi": "Chinese New Year's Eve", "chunjie": "Chinese New Year"}
EN_FESTIVALS.update({"yuanxiao": "the Lantern Festival", "duanwu": "the Dragon Boat Festival"})
EN_FESTIVALS.update({"qixi": "Qixi", "zhongqiu": "the Mid-Autumn Festival", "laba": "Laba"})
EN_FESTIVALS.update({"chongyang": "the Double Ninth Festival", "yuandan": "New Year's Day"})
EN_FESTIVALS.update({"laodong": "Labour Day", "guoqing": "National Day", "qingming": "Qingming"})
EN_FESTIVALS.update({"christmas": "Christmas", "christmas_eve": "Christmas Eve"})
EN_FESTIVALS.update({"new_years_eve": "New Year's Eve", "halloween": "Halloween"})
EN_FESTIVALS.update({"valentines": "Valentine's Day", "independence": "July 4"})
EN_FESTIVALS.update({"boxing": "Boxing Day", "womens_day": "Women's Day (8 March)"})
EN_FESTIVALS.update({"arbor_day": "Arbor Day (12 March)", "april_fools": "April Fools' Day"})
EN_FESTIVALS.update({"youth_day": "Youth Day (4 May)", "childrens_day": "Children's Day (1 June)"})
EN_FESTIVALS.update({"party_day": "1 July", "army_day": "1 August", "teachers_day": "10 September"})
EN_FESTIVALS.update({"singles_day": "11 November", "double_twelve": "12 December"})


def _zh_festival(name: str) -> str:
    if name.startswith("lunar-"):
        _, month, day = name.split("-")
        return f"农历{month}月{day}日"
    return ZH_FESTIVALS.get(name, name)


def _en_festival(name: str) -> str:
    if name.startswith("lunar-"):
        _, month, day = name.split("-")
        return f"day {day} of lunar month {month}"
    return EN_FESTIVALS.get(name, name)


def _zh_more(days: Days, prefix: str) -> str:
    if isinstance(days, Workdays):
        return "每个工作日（中国法定）" if days.calendar == "cn" else "每个工作日"
    if isinstance(days, MonthWorkday):
        if days.near:
            return f"{prefix}离 {days.near} 日最近的工作日"
        return prefix + ("第一个工作日" if days.nth == 1 else "最后一个工作日")
    if isinstance(days, DayFromEnd):
        return f"{prefix}倒数第 {days.nth} 天"
    if isinstance(days, WeekStep):
        return f"每 {days.weeks} 周的" + "、".join(ZH_DAYS[d] for d in days.weekdays)
    if isinstance(days, Festival):
        return "每年" + _zh_festival(days.name)
    assert isinstance(days, Either)
    return _zh_days(days.month_days, ()) + "，以及" + _zh_days(days.weekly, ())


def _en_more(days: Days, scope: str) -> str:
    if isinstance(days, Workdays):
        return "every working day (China)" if days.calendar == "cn" else "every weekday"
    if isinstance(days, MonthWorkday):
        if days.near:
            return f"on the working day nearest the {_ordinal(days.near)} {scope}"
        return f"on the {'first' if days.nth == 1 else 'last'} working day {scope}"
    if isinstance(days, DayFromEnd):
        return f"on the {_ordinal(days.nth)}-to-last day {scope}"
    if isinstance(days, WeekStep):
        names = _en_list([EN_DAYS[d] for d in days.weekdays])
        return f"every {days.weeks} weeks on {names}"
    if isinstance(days, Festival):
        return f"every year on {_en_festival(days.name)}"
    assert isinstance(days, Either)
    return _en_days(days.month_days, ()) + " and " + _en_days(days.weekly, ())


def _zh_days(days: Days, months: Sequence[int]) -> str:
    if isinstance(days, Daily):
        return "每年" + "、".join(f"{m}月" for m in months) + "每天" if months else "每天"
    if isinstance(days, Weekly):
        if days.weekdays == WORKDAYS:
            return "每个工作日"
        if days.weekdays == WEEKEND:
            return "每周六、周日"
        names = "每" + "、".join(ZH_DAYS[d] for d in days.weekdays)
        return "、".join(f"{m}月" for m in months) + "的" + names if months else names
    prefix = "每年" + "、".join(f"{m}月" for m in months) if months else "每月"
    if not isinstance(days, MonthDays | NthWeekdays):
        return _zh_more(days, prefix)
    if isinstance(days, MonthDays):
        parts = [f"{d}日" for d in days.days] + (["最后一天"] if days.last else [])
        return prefix + "、".join(parts)
    return prefix + "、".join(f"{ZH_NTH[n]}{ZH_DAYS[d]}" for n, d in days.positions)


def _en_days(days: Days, months: Sequence[int]) -> str:
    only = " in " + _en_list([EN_MONTHS[m - 1] for m in months]) if months else ""
    if isinstance(days, Daily):
        return "every day" + only
    if isinstance(days, Weekly):
        if days.weekdays == WORKDAYS:
            return "every weekday" + only
        if days.weekdays == WEEKEND:
            return "every Saturday and Sunday" + only
        return "every " + _en_list([EN_DAYS[d] for d in days.weekdays]) + only
    scope = (
        "of " + _en_list([EN_MONTHS[m - 1] for m in months]) + " every year"
        if months
        else "of every month"
    )
    if not isinstance(days, MonthDays | NthWeekdays):
        return _en_more(days, scope)
    if isinstance(days, MonthDays):
        parts = [f"the {_ordinal(d)}" for d in days.days]
        parts += ["the last day"] if days.last else []
        return f"on {_en_list(parts)} {scope}"
    parts = [f"the {EN_NTH[n]} {EN_DAYS[d]}" for n, d in days.positions]
    return f"on {_en_list(parts)} {scope}"


def _step(minutes: int, language: str) -> str:
    if minutes % 1440 == 0:
        count, zh_unit, en_unit = minutes // 1440, "天", "day"
    elif minutes % 60 == 0:
        count, zh_unit, en_unit = minutes // 60, "小时", "hour"
    else:
        count, zh_unit, en_unit = minutes, "分钟", "minute"
    if language == "zh":
        return f"每 {count} {zh_unit}" if count > 1 else f"每{zh_unit}"
    return f"every {count} {en_unit}s" if count > 1 else f"every {en_unit}"


def _every(spec: Every, language: str) -> str:
    rule = _every_rule(spec, language)
    if spec.end is None:
        return rule
    whole_day = spec.end.time() == time.max  # 持续3天: up to that day's end
    last = spec.end.strftime("%Y-%m-%d" if whole_day else "%Y-%m-%d %H:%M")
    return f"{rule} (until {last})" if language == "en" else f"{rule}（到 {last} 为止）"


def _every_rule(spec: Every, language: str) -> str:
    step = _step(spec.minutes, language)
    if spec.anchor is not None and spec.minutes % 1440 == 0:
        at = spec.anchor.strftime("%H:%M")
        first = spec.anchor.strftime("%Y-%m-%d")
        if language == "zh":
            return f"{step} {at}（从 {first} 起）"
        return f"{step} at {at} (from {first})"
    if language == "zh":
        days = ""
        if spec.weekdays or spec.workdays:
            chosen = Workdays(spec.workdays) if spec.workdays else Weekly(spec.weekdays)
            days = _zh_days(chosen, ()).removeprefix("每个").removeprefix("每")
        window = f"{spec.window.start}–{spec.window.end} " if spec.window else ""
        return (f"{days} {window}{step}" if days else f"{window}{step}").strip()
    parts = [step]
    if spec.window is not None:
        parts.append(f"from {spec.window.start} to {spec.window.end}")
    if spec.workdays:
        parts.append("on working days (China)" if spec.workdays == "cn" else "on weekdays")
    if spec.weekdays:
        parts.append(
            "on weekdays"
            if spec.weekdays == WORKDAYS
            else _en_days(Weekly(spec.weekdays), ()).replace("every ", "on ")
        )
    return " ".join(parts)


def describe(spec: Spec, language: str) -> str:
    """The rule in words, `zh` or `en` (anything else: zh)."""
    if isinstance(spec, Once):
        moment = spec.at.strftime("%Y-%m-%d %H:%M")
        return f"{moment}（一次）" if language != "en" else f"once, on {moment}"
    if isinstance(spec, Every):
        return _every(spec, "en" if language == "en" else "zh")
    first = None if spec.start is None else spec.start.isoformat()
    last = None if spec.end is None else spec.end.isoformat()
    if language == "en":
        rule = f"{_en_days(spec.days, spec.months)} at {_times(spec.times, 'en')}"
        bounds = [f"from {first}"] if first else []
        bounds += [f"until {last}"] if last else []
        return f"{rule} ({', '.join(bounds)})" if bounds else rule
    rule = f"{_zh_days(spec.days, spec.months)} {_times(spec.times, 'zh')}"
    if first and last:
        return f"{rule}（{first} 至 {last}）"
    if last:
        return f"{rule}（到 {last} 为止）"
    return rule if first is None else f"{rule}（从 {first} 起）"


# ---- questions ---------------------------------------------------------------------------------

ZH_QUESTIONS = {
    "what_time": "{task}具体在几点？例如“每天早上9点”“明天下午3点”。",
    "no_time": "什么时候{task}？请给出时间，例如“明天上午10点”或“每个工作日9点”。",
    "vague_period": "{period}具体是几点？例如“{example}”。",
    "passed_today": "今天 {time} 已经过了：是明天 {time} 执行一次，还是每天 {time}？",
    "passed_today_pm": "今天 {time} 已经过了：是下午{hour}点、明天 {time}，还是每天 {time}？",
    "passed_date": "{date} {time} 已经过去了，请给一个将来的时间。",
    "noon_or_midnight": "12 点是中午 12 点还是午夜 12 点？",
    "midnight_of_day": "午夜是指这一天开始的 00:00，还是这一天结束时（第二天 00:00）？"
    "这一天开始请写“0点”。",
    "am_or_pm": "{hour} 点是上午还是下午？",
    "period_hour": "{hour} 点不在{period}，请确认时间，例如“下午3点”或“15点”。",
    "evening_small_hours": "晚上{hour}点是指今晚还是明天凌晨{hour}点？",
    "day_month": "“{text}”是几月几日？请写成“4月5日”或“2026-04-05”。",
    "bad_date": "这个日期不存在（{month}月{day}日），请确认日期。",
    "bad_day": "每月没有这一天，请确认日期。",
    "bad_time": "这个时间不存在，请确认几点几分。",
    "bad_zone": "无法识别时区“{text}”，请写成“北京时间”或“UTC+8”。",
    "which_zone": "“{text}”可以指多个时区，请写明城市，例如“北京时间”“芝加哥时间”。",
    "short_month": "不是每个月都有 {day} 日：是每月最后一天，还是只在有 {day} 日的月份执行？",
    "leap_day": "2月{day}日只有闰年才有：是每年2月的最后一天，还是只在闰年执行？",
    "dst_gap": "{time} 因夏令时切换并不存在，请换一个时间。",
    "one_time": "给了多个时间：是每天都在这些时间执行，还是只执行一次？请说明日期或“每天”。",
    "conflict": "时间说法有冲突，请只给一个时间，例如“每周一上午10点”或“明天下午3点”。",
    "which_day": "具体是哪一天？例如“每周一”“每月1号”。",
    "when": "具体是什么时候？例如“30分钟后”“明天上午10点”。",
    "how_often": "在这个时间段内多久执行一次？例如“每30分钟”。",
    "too_often": "最短间隔是 1 分钟，请换一个间隔。",
    "every_other_day": "“每隔N天”是每 N 天还是每 N+1 天？请写成“每2天”这样的说法。",
    "nth_or_step": "“{text}”是每隔几周一次，还是每月的第几个？"
    "请写成“每两周的周二”或“每月第二个周二”。",
    "two_dates": "每年的几个日期不同，请分成几个定时任务，每条一个日期，"
    "例如“每年6月30日下午5点对账”。",
    "before_after": "“之前/之后”是一段时间，请给出确切的时间，例如“下午2点50分”。",
    "holidays_only": "还不能只在节假日执行（放假日期每年由国务院公布）：请给出具体日期，例如"
    "“10月1日上午10点”，或改成“每个工作日”“每周六”。",
    "unsupported": "这个周期我还不支持，请换一种说法，例如“每周一”“每月第一个周一”“每2小时”。",
    "unreadable": "我没看懂其中的时间，请换一种说法，例如“每天9点”“每周五下午5点”“30分钟后”。",
    "past": "这个时间已经过去了，请给一个将来的时间。",
    "past_this_year": "今年的 {date} 已经过了：是明年这一天 {time}，还是每年这一天 {time}？",
    "weekday_mismatch": "{date} 并不是{weekday_zh}，请确认是哪一天。",
    "once_or_hourly": "{start} 到 {end}：是在 {start} 执行一次，还是在这段时间内每小时一次？",
    "end_before_start": "结束日期 {date} 在第一次执行之前，请确认到哪天为止。",
    "count_splits_day": "这个任务每天执行不止一次，“共{runs}次”会停在某一天的中途："
    "请改成到哪天为止，例如“到3月31日为止”。",
}
EN_QUESTIONS = {
    "what_time": 'At what time{should}? For example "every day at 9am" or "tomorrow at 3pm".',
    "no_time": 'When should{quoted} run? Give a time, e.g. "tomorrow at 10am" or '
    '"every weekday at 9:00".',
    "vague_period": 'What time in {period}? For example "at {example}".',
    "passed_today": "{time} today has already passed: do you mean tomorrow at {time}, or every "
    "day at {time}?",
    "passed_today_pm": "{time} today has already passed: do you mean {hour} pm today, tomorrow "
    "at {time}, or every day at {time}?",
    "passed_date": "{date} {time} is in the past; please give a time in the future.",
    "noon_or_midnight": "Do you mean 12 noon or 12 midnight?",
    "midnight_of_day": "Midnight at the start of that day (00:00) or at its end (00:00 the next "
    'day)? Say "at 00:00" for the start.',
    "am_or_pm": "Is that {hour} am or {hour} pm?",
    "period_hour": '{hour}:00 is not in {period}; which time do you mean, e.g. "3pm" or "15:00"?',
    "evening_small_hours": "Do you mean {hour} tonight or {hour} am tomorrow?",
    "day_month": 'Is {text} day/month or month/day? Please write the date as "April 5" or '
    '"2026-04-05", and the time with am/pm.',
    "bad_date": "That date does not exist ({month}/{day}); which date do you mean?",
    "bad_day": "No month has that day; which day do you mean?",
    "bad_time": "That time does not exist; which time do you mean?",
    "bad_zone": 'I don\'t know the time zone "{text}"; try "UTC+8" or "London time".',
    "which_zone": '"{text}" names several time zones; which city\'s time do you mean '
    '(e.g. "Chicago time", "Beijing time")?',
    "leap_day": "February has a {day}th only in leap years: the last day of February each "
    "year, or only in leap years?",
    "short_month": "Not every month has a {day}th: the last day of each month, or only the "
    "months that have one?",
    "dst_gap": "{time} does not exist (daylight saving time starts); please pick another time.",
    "one_time": "Several times were given: every day at those times, or just once? Please say "
    'which day, or "every day".',
    "conflict": 'The times given conflict; please give one, e.g. "every Monday at 10am" or '
    '"tomorrow at 3pm".',
    "which_day": 'On which day? For example "every Monday" or "on the 1st of every month".',
    "when": 'When exactly? For example "in 30 minutes" or "tomorrow at 10am".',
    "how_often": 'How often within that window? For example "every 30 minutes".',
    "too_often": "The shortest step is one minute; please pick another interval.",
    "every_other_day": 'Every N days or every N+1 days? Please say "every 2 days".',
    "nth_or_step": '"{text}": every few weeks, or that weekday of each month? Please say e.g. '
    '"every 2 weeks on Tuesday" or "the 2nd Tuesday of every month".',
    "two_dates": "Those yearly dates fall on different days of the month; please make one job "
    'per date, e.g. "every year on June 30 at 5pm close the books".',
    "before_after": '"Before" or "after" is a span of time; please give the exact time, e.g. '
    '"at 2:50pm".',
    "holidays_only": "I can't run a job only on holidays (their dates change every year); please "
    'give the dates, e.g. "October 1 at 10am", or say "every weekday" or "every Saturday".',
    "unsupported": 'I can\'t schedule that pattern yet; try "every Monday", "the first Monday '
    'of every month" or "every 2 hours".',
    "unreadable": 'I couldn\'t read the time; try "every day at 9am", "every Friday at 5pm" '
    'or "in 30 minutes".',
    "past": "That time is in the past; please give a time in the future.",
    "past_this_year": "{date} has passed this year: next year at {time}, or every year at {time}?",
    "weekday_mismatch": "{date} is not a {weekday_en}; which day do you mean?",
    "once_or_hourly": "{start} to {end}: once at {start}, or every hour in between?",
    "end_before_start": "The last day {date} comes before the first run; until which day?",
    "count_splits_day": "This job runs more than once a day, so {runs} runs would stop partway "
    'through a day; say the last day instead, e.g. "until March 31".',
}


def question(clarify: Clarify, language: str, task: str | None = None) -> str:
    """The clarifying question for `clarify`, in `language` (zh or en)."""
    values: dict[str, str] = dict(clarify.values)
    period = values.get("period", "")
    if "weekday" in values:
        values["weekday_zh"] = ZH_DAYS.get(values["weekday"], "")
        values["weekday_en"] = EN_DAYS.get(values["weekday"], "")
    if language == "en":
        values["task"] = f" {task}" if task else ""
        values["should"] = f' should "{task}" run' if task else ""
        values["quoted"] = f' "{task}"' if task else " it"
        values["period"] = EN_PERIODS.get(period, "that part of the day")
        values["example"] = EN_EXAMPLES.get(period, "9am")
        template = EN_QUESTIONS.get(clarify.topic, EN_QUESTIONS["unreadable"])
    else:
        values["task"] = f"“{task}”" if task else ""
        values["period"] = ZH_PERIOD_WORDS.get(period, "这个时段")
        values["example"] = ZH_EXAMPLES.get(period, "早上9点")
        template = ZH_QUESTIONS.get(clarify.topic, ZH_QUESTIONS["unreadable"])
    return template.format_map(_Defaults(values))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""
