"""Questions to the bot in the chat: conversations, tools, the streamed answer card."""
