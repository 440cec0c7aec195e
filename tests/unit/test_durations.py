import pytest

from logtui.core.durations import DurationError, format_duration, parse_duration, parse_window


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("5m", 300), ("1h", 3600), ("1d", 86400), ("500ms", 0.5), ("10", 10),
    ("0.5", 0.5), ("1.5m", 90), ("2m30s", 150), ("1h30m", 5400), ("1s500ms", 1.5),
    (" 2M ", 120),
])
def test_durations_as_users_type_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["0", "0s", "30s2m", "1m1m", "5x", "", "m", "1 m", "-1s",
                                  "1e3", "nan", "inf"])
def test_what_is_no_duration(text: str) -> None:
    with pytest.raises(DurationError, match="expected a duration like 30s, 5m, 1h or 2m30s"):
        parse_duration(text)


def test_windows_and_their_names() -> None:
    assert parse_window("all") is None and parse_window("2m30s") == 150
    assert [format_duration(s) for s in (None, 300, 5400, 0.5)] == ["all", "5m", "90m", "0.5s"]
