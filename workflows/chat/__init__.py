"""The chat agent: questions in a group answered with read-only tools, streamed into a card."""
