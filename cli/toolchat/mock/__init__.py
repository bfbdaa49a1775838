"""Local Anthropic-compatible mock server with a scripted model.

Import ``cli.mock.server`` for ``MockServer``; this package stays import-light so that
``import toolchat.mock`` costs nothing for code that never starts the server.
"""
