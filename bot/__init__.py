"""The running app: CLI, configuration, HTTP endpoints, logs and (next) the Lark transport."""
