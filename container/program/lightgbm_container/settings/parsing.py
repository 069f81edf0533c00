"""Reading one environment variable into a typed value, with an error that names it."""

from __future__ import annotations

from collections.abc import Mapping


class SettingsError(ValueError):
    """An environment variable holds a value the container cannot use."""


def first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of ``names`` that is set and not blank, with its value (aliases: newest name first)."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def integer(env: Mapping[str, str], *names: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
    found = first(env, *names)
    if found is None:
        return default
    name, raw = found
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise SettingsError(f"{name}={value} must be {bound}")
    return value


def text(env: Mapping[str, str], name: str) -> str | None:
    """A string variable; unset and empty are the same (the SDK sends "" for "none")."""
    return env.get(name, "").strip() or None


def boolean(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(f"{name}={env[name]!r} must be true or false")


def choice(env: Mapping[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = env.get(name, "").strip().lower() or default
    if raw not in choices:
        raise SettingsError(f"{name}={raw!r} must be one of {', '.join(choices)}")
    return raw
