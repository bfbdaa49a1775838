"""A run assembled in one place: Settings -> dialect, transport, tool sources + runner, sinks, Chat."""

from __future__ import annotations

from .settings import Settings


def tool_runner(settings: Settings, approve=None):
    """The tools of the settings' tools files under the settings' policy (deny, allow, --yes,
    --no-parallel, output cap); `approve(spec, call)` asks about tools marked confirm."""
    from .toolsources.runner import ToolRunner
    from .toolsources.yaml import YamlSource

    return ToolRunner([YamlSource(list(settings.tools))], deny=settings.deny_tools,
                      allow=settings.allow_tools, yes=settings.yes, parallel=settings.parallel,
                      output_cap=settings.tool_output_cap, approve=approve)
