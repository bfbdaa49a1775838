"""Asking the user on the terminal before a tool marked `confirm: true` runs."""

from __future__ import annotations

from contextlib import nullcontext


def terminal_approver(view=None):
    """approve(spec, call): ask on /dev/tty; [a]lways stops asking about that tool for this run.

    The ToolRunner asks only about tools that need it (confirm, no --yes, no --allow-tool). `view`
    may offer paused(): the live display stops redrawing while the question is on screen.
    """
    always: set[str] = set()

    def approve(tool, call):
        if tool.name in always:
            return None
        try:
            # Two handles: a text-mode "r+" handle on a terminal fails as unseekable.
            tty_in = open("/dev/tty", encoding="utf-8")
            tty_out = open("/dev/tty", "w", encoding="utf-8")
        except OSError:
            return (
                f"not run: tool {tool.name!r} needs the user's confirmation and there is no "
                "terminal to ask on (the user can allow it with -y or --allow-tool)"
            )
        paused = getattr(view, "paused", None)
        with tty_in, tty_out, paused() if paused else nullcontext():
            from .text import compact_json, neutralise

            # The input exactly, on one line (JSON escapes line ends), every control shown escaped.
            tty_out.write(f"Run {neutralise(tool.name)} {neutralise(compact_json(call.input))}? [y]es/[n]o/[a]lways: ")
            tty_out.flush()
            answer = tty_in.readline().strip().lower()
        if answer in ("a", "always"):
            always.add(tool.name)
            return None
        if answer in ("y", "yes"):
            return None
        return f"not run: the user declined to run {tool.name!r}"

    return approve
