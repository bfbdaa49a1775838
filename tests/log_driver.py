"""A real process that runs one chat against a server and logs it (until the log sink is wired
into the CLI): `python tests/log_driver.py DB BASE_URL PROMPT [TOOLS_FILE]`. The key comes from
TOOLCHAT_API_KEY; the answer is printed as it streams, as the plain view does."""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    from toolchat.chat import Chat
    from toolchat.logdb import LogDB
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
    sink = LogSink(LogDB(db_path, secrets=(key,)), messages, model=settings.model,
                   system=settings.system, base_url=base_url, sources=sources_of(box.tools.values()))
    view = PlainView(quiet=True)
    try:
        for event in chat.run(messages):
            sink.handle(event)
            view.handle(event)
    finally:
        sink.close()
        transport.close()
    return chat.result.exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
