"""Formatting shared by pages and live updates: folding, durations, path segments."""

from __future__ import annotations

import pytest

from paigeant_dashboard.render import duration_text, fold, path_segment, pretty, short, size_text


def test_short_values_are_not_folded_and_long_ones_are() -> None:
    assert fold({"a": 1}).preview is None and fold({"a": 1}).text == '{\n  "a": 1\n}'
    assert fold("plain text").text == "plain text"
    long = fold("\n".join(f"line {i}" for i in range(40)))
    assert long.lines == 40 and long.preview is not None
    assert long.preview.startswith("line 0\nline 1") and long.preview.endswith(" …")
    wide = fold("x" * 5000)
    assert wide.preview is not None and len(wide.preview) < 500 and wide.size == "5.0 kB"
    assert pretty({"é": None}) == '{\n  "é": null\n}'


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, ""),
        (0.0042, "4 ms"),
        (0.25, "250 ms"),
        (2.5, "2.50 s"),
        (12.25, "12.2 s"),
        (185, "3m 05s"),
        (7380, "2h 03m"),
    ],
)
def test_durations(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_sizes_paths_and_short_text() -> None:
    assert [size_text(n) for n in (12, 4200, 1_300_000)] == ["12 B", "4.2 kB", "1.3 MB"]
    assert path_segment("a/b?c#d e%") == "a%2Fb%3Fc%23d%20e%25"
    assert short({"k": "v" * 200}, 20) == '{"k": "vvvvvvvvvvvv…'
    assert short("two\n  lines") == "two lines" and short(None) == ""
