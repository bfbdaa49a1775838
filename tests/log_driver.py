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
    from toolchat.toolbox import load_files
    from toolchat.transport import Transport, messages_url
    from toolchat.views.plain import PlainView

    db_path, base_url, prompt = argv[:3]
    tools = argv[3:4]
    key = os.environ["TOOLCHAT_API_KEY"]
    settings = Settings(base_url=base_url, api_key=key, key_source="TOOLCHAT_API_KEY",
                        system=os.environ.get("DRIVER_SYSTEM"))
    transport = Transport(messages_url(base_url), settings.credential_header())
    box = load_files(tools)
    chat = Chat(settings, box, transport)
    messages = [{"role": "user", "content": prompt}]
    try:
        db = LogDB(db_path, secrets=(key,))
    except LogError as exc:  # the run goes on, unlogged
        print(f"toolchat: warning: not logged: {exc.message}", file=sys.stderr)
        sinks = []
    else:
        sinks = [LogSink(db, messages, model=settings.model, system=settings.system,
                         base_url=base_url, sources=sources_of(box.tools.values()))]
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
