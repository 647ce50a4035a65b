"""LangGraph workflows (incident, schedule confirmation), approvals, LLM providers, scheduling.

Empty until the incident and scheduling issues; graphs talk to Lark only through a `Messenger`
protocol implemented by `bot`, never by importing it.
"""
