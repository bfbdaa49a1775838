"""Which endpoint a run talks to: the wire dialect (`--api`), its default base URL and model, where
its key and base URL come from in the environment, and named profiles from the config file.

A profile is a mapping in the config file's `profiles:` (`-p/--profile NAME`, `TOOLCHAT_PROFILE`):
its keys stand in for the config file's own (flags > environment > profile > config > defaults).
Keys never live in files: `key_env: NAME` names the environment variable that holds the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .errors import UsageError
from .options import DEFAULT_BASE_URL, DEFAULT_MODEL

APIS = ("anthropic", "openai")
DEFAULT_BASE_URLS = {"anthropic": DEFAULT_BASE_URL, "openai": "https://api.openai.com"}
# chat.completions has no common model name: this is OpenAI's own small model; local servers and
# gateways want theirs (-m, TOOLCHAT_MODEL or a profile's `model`).
DEFAULT_MODELS = {"anthropic": DEFAULT_MODEL, "openai": "gpt-4o-mini"}
# The variables a key is taken from, first set first. OPENAI_API_KEY is never sent to an Anthropic
# endpoint, nor ANTHROPIC_* to an OpenAI one.
KEY_VARIABLES = {
    "anthropic": ("TOOLCHAT_API_KEY", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "openai": ("TOOLCHAT_API_KEY", "OPENAI_API_KEY"),
}
# Variables of options.py rows that belong to one dialect only (OPENAI_BASE_URL, ANTHROPIC_BASE_URL):
# a row's variable with another dialect's prefix is not read.
PREFIXES = {"anthropic": "ANTHROPIC_", "openai": "OPENAI_"}
PROFILE_KEYS = frozenset(
    {"api", "base_url", "model", "auth_style", "headers", "key_env", "max_tokens", "system", "temperature"}
)


def check_api(value: Any, where: str = "--api") -> str:
    api = str(value).strip().lower()
    if api not in APIS:
        raise UsageError(f"{where}: {value!r} is not one of {', '.join(APIS)}")
    return api


def foreign(variable: str, api: str) -> bool:
    """Whether an environment variable belongs to a dialect other than `api`."""
    return any(variable.startswith(prefix) for name, prefix in PREFIXES.items() if name != api)


def select_profile(config: Mapping[str, Any], name: str | None, path: Path | str = "the config file") -> dict:
    """The profile `name` of the config file's `profiles:` (empty when no name is given)."""
    profiles = config.get("profiles")
    if profiles is not None and not isinstance(profiles, dict):
        raise UsageError(f"{path}: profiles: must be a mapping of NAME: {{api, base_url, model, ...}}")
    if not name:
        return {}
    if not profiles or name not in profiles:
        known = ", ".join(sorted(str(p) for p in profiles or {})) or "none defined"
        raise UsageError(f"--profile: no profile {name!r} in {path} (profiles: {known})")
    profile = profiles[name]
    if not isinstance(profile, dict):
        raise UsageError(f"{path}: profiles.{name}: must be a mapping")
    if "api_key" in profile or "key" in profile:
        raise UsageError(
            f"{path}: profiles.{name}: keep API keys out of config files; name the variable that holds it with key_env"
        )
    unknown = sorted(str(k) for k in set(profile) - PROFILE_KEYS)
    if unknown:
        raise UsageError(
            f"{path}: profiles.{name}.{unknown[0]}: unknown setting (known: {', '.join(sorted(PROFILE_KEYS))})"
        )
    if "key_env" in profile and (not isinstance(profile["key_env"], str) or not profile["key_env"].strip()):
        raise UsageError(f"{path}: profiles.{name}.key_env: the name of an environment variable")
    if "api" in profile:
        check_api(profile["api"], f"{path}: profiles.{name}.api")
    return dict(profile)


def credentials(api: str, env: Mapping[str, str], key_env: str | None = None) -> tuple[str | None, str | None]:
    """(key, the variable it came from). A profile's key_env is the only place its key may come
    from: a key meant for one endpoint is never sent to another. (None, key_env) when unset."""
    if key_env:
        value = env.get(key_env.strip(), "").strip()
        return (value or None), key_env.strip()
    for name in KEY_VARIABLES[api]:
        if env.get(name, "").strip():
            return env[name].strip(), name
    return None, None


def missing_key(settings: Any) -> UsageError | None:
    """The error for a profile whose key_env names a variable that is not set (else None)."""
    if getattr(settings, "api_key", None) or not getattr(settings, "key_source", None):
        return None
    return UsageError(
        f"no API key: {settings.key_source} is not set (key_env of profile {getattr(settings, 'profile', None)!r})",
        type="missing_credentials",
    )
