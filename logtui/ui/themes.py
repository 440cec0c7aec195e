"""Themes as data: TOML files from the shipped `themes/` folder and the user's folder.

Each file becomes a `textual.theme.Theme`; `[variables]` may set the status-class colours
(`status-2xx` ...). A file with an unknown key or a colour Textual cannot read is an error
that names the file, so a typo never silently falls back to defaults.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from logtui.ui.colors import STATUS_DEFAULTS

COLOUR_KEYS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
               "background", "surface", "panel", "boost")
KEYS = {f.name for f in fields(Theme)}
# Theme's other settings and the TOML types they take (true/false, numbers).
NON_COLOUR_KEYS: dict[str, type | tuple[type, ...]] = {
    "dark": bool, "luminosity_spread": (int, float), "text_alpha": (int, float)}
KIND_NAMES = {bool: "true or false", (int, float): "a number"}
DEFAULT_THEME = "logtui-dark"


class ThemeError(ValueError):
    pass


def shipped_dir() -> Path:
    """`themes/` inside the installed package, or beside it in a source checkout."""
    packaged = resources.files("logtui") / "themes"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "themes"


def user_dir() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(config) / "logtui" / "themes"


def load_theme(path: Path) -> Theme:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ThemeError(f"{path}: {error}") from None
    unknown = data.keys() - KEYS
    if unknown:
        raise ThemeError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    if not isinstance(data.get("name"), str) or "primary" not in data:
        raise ThemeError(f"{path}: a theme needs a 'name' and a 'primary' colour")
    for key, kind in NON_COLOUR_KEYS.items():
        if key in data and not isinstance(data[key], kind):
            raise ThemeError(f"{path}: {key} = {data[key]!r} is not {KIND_NAMES[kind]}")
    given = data.pop("variables", {})
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise ThemeError(f"{path}: [variables] must be names set to text, as in "
                         "status-5xx = \"#ff5555\"")
    variables = {**STATUS_DEFAULTS, **given}
    for key, value in [*((k, data[k]) for k in COLOUR_KEYS if k in data), *variables.items()]:
        try:
            Color.parse(value)
        except (ColorParseError, AttributeError, TypeError, ValueError):
            if key in COLOUR_KEYS or key.startswith("status-"):
                raise ThemeError(f"{path}: {key} = {value!r} is not a colour") from None
    return Theme(**data, variables=variables)


def load_themes(*folders: Path) -> dict[str, Theme]:
    """Every theme in the folders, later folders overriding earlier ones by name."""
    themes: dict[str, Theme] = {}
    for folder in folders or (shipped_dir(), user_dir()):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                theme = load_theme(path)
                themes[theme.name] = theme
    return themes


def resolve(name: str, themes: dict[str, Theme]) -> str:
    """The full name for `name` ('dark' finds 'logtui-dark'); ThemeError when unknown."""
    for candidate in (name, f"logtui-{name}"):
        if candidate in themes:
            return candidate
    raise ThemeError(f"unknown theme {name!r}: expected one of "
                     f"{', '.join(sorted(t.removeprefix('logtui-') for t in themes))}")
