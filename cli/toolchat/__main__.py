import os
import sys

# `python -m toolchat` puts the current folder first on the import path; the `toolchat` command does
# not. Take it off, so a requests.py or yaml.py where the user stands never replaces toolchat's own
# imports (handler modules are found from their tools file's folder: see handlers.py).
if not getattr(sys.flags, "safe_path", False) and sys.path and sys.path[0] in (os.getcwd(), ""):
    del sys.path[0]

from .main import run  # noqa: E402

run()
