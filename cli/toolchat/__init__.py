"""toolchat: tool-calling chats with Claude-style models from the terminal."""

__version__ = "0.1.0"
