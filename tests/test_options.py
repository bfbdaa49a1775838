"""options.py is the one declaration of every option: Settings, the config file and the README
agree with it."""

from __future__ import annotations

import dataclasses
import re

from conftest import ROOT
from toolchat import options
from toolchat.settings import Settings


def test_settings_fields_have_the_defaults_the_options_table_declares():
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    for option in options.OPTIONS:
        if option.setting:
            default = tuple(option.default) if option.type is list else option.default
            assert fields[option.name] == default, option.name


def test_the_readme_option_table_lists_exactly_the_options_of_the_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| option | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(
        re.findall(
            r"(?<![\w-])(-{1,2}[a-z][a-z-]*)",
            " ".join(row.split("|")[1] for row in table.splitlines() if row.startswith("| `")),
        )
    )
    declared = {flag for option in options.for_command("ask") for flag in option.flags}
    typer_own = {"--version", "-h", "--help", "--install-completion", "--show-completion"}
    assert documented - typer_own == declared


def test_every_config_key_is_an_option_row():
    assert options.CONFIG_KEYS == {o.name for o in options.OPTIONS if o.config}
    assert "api_key" not in options.CONFIG_KEYS  # keys stay in the environment
