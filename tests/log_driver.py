"""A real process that runs one chat against a server and logs it (until the log sink is wired
into the CLI): `python tests/log_driver.py DB BASE_URL PROMPT [TOOLS_FILE]`. The key comes from
TOOLCHAT_API_KEY; the answer is printed as it streams, as the plain view does."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    from toolchat.chat import Chat
    from toolchat.logdb import LogDB, LogError
    from toolchat.settings import Settings
    from toolchat.sinks.log import LogSink, sources_of
    from toolchat.views.plain import PlainView

    db_path, base_url, prompt = argv[:3]
    tools = argv[3:4]
    key = os.environ["TOOLCHAT_API_KEY"]
    settings = Settings(base_url=base_url, api_key=key, key_source="TOOLCHAT_API_KEY",
                        system=os.environ.get("DRIVER_SYSTEM"))
    try:  # the loop as it is built before the seams (issue 11) ...
        from toolchat.toolbox import load_files
        from toolchat.transport import Transport, messages_url

        transport = Transport(messages_url(base_url), settings.credential_header())
        box = load_files(tools)
        chat = Chat(settings, box, transport)
        specs = box.tools.values()
    except ImportError:  # ... and with the dialect and tool-source seams
        from toolchat.dialects.anthropic import AnthropicDialect
        from toolchat.toolsources.yaml import load_files
        from toolchat.transport import Transport

        dialect = AnthropicDialect()
        transport = Transport(dialect.url(base_url), dialect.headers(settings))
        box = load_files(tools)
        chat = Chat(settings, dialect, transport, box)
        specs = box.all.values()
    messages = [{"role": "user", "content": prompt}]
    try:
        db = LogDB(db_path, secrets=(key,))
    except LogError as exc:  # the run goes on, unlogged
        print(f"toolchat: warning: not logged: {exc.message}", file=sys.stderr)
        sinks = []
    else:
        sinks = [LogSink(db, messages, model=settings.model, system=settings.system,
                         base_url=base_url, sources=sources_of(specs))]
    sinks.append(PlainView(quiet=True))
    try:
        for event in chat.run(messages):
            for sink in sinks:
                sink.handle(event)
    finally:
        for sink in sinks:
            getattr(sink, "close", lambda: None)()
        transport.close()
    return chat.result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
