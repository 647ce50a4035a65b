"""Pure functions from domain objects to Lark card JSON 2.0, and signed button payloads.

Empty until the Lark issue.
"""
