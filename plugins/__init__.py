"""Plugin contract, registry and discovery, policy engine, runbooks, built-in plugins.

Empty until the plugins issue.
"""
