"""Theme files are user input: every mistake is one ThemeError naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from logtui.ui.themes import ThemeError, load_theme, load_themes, shipped_dir

VALID = 'name = "mine"\nprimary = "#0178d4"\n'


def test_the_shipped_themes_load() -> None:
    assert {"logtui-dark", "logtui-light", "logtui-high-contrast"} <= load_themes(
        shipped_dir()).keys()


@pytest.mark.parametrize(("extra", "message"), [
    ("dark = \"yes\"\n", "dark = 'yes' is not true or false"),
    ("text_alpha = \"x\"\n", "text_alpha = 'x' is not a number"),
    ("variables = 5\n", "[variables] must be names set to text"),
    ("[variables]\nstatus-2xx = 5\n", "[variables] must be names set to text"),
    ("[variables]\nblock-cursor = [1, 2]\n", "[variables] must be names set to text"),
    ("[variables]\nstatus-5xx = \"not a colour\"\n", "status-5xx = 'not a colour' is not a colour"),
    ("secondary = 7\n", "secondary = 7 is not a colour"),
    ("primray = \"#fff\"\n", "unknown key 'primray'"),
])
def test_a_bad_theme_file_is_one_error_naming_it(tmp_path: Path, extra: str,
                                                 message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID + extra)
    with pytest.raises(ThemeError) as caught:
        load_theme(path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_good_theme_file_sets_status_colours(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(VALID + "dark = false\n[variables]\nstatus-5xx = \"#ff0000\"\n")
    theme = load_theme(path)
    assert theme.dark is False and theme.variables["status-5xx"] == "#ff0000"
