"""Settings: argument, then PAIGEANT_DASHBOARD_* variable, then default; bad values are clear."""

from __future__ import annotations

import pytest

from paigeant import ConfigurationError
from paigeant_dashboard import DashboardSettings
from paigeant_dashboard.settings import LOOPBACK_HOSTS

from .conftest import DASHBOARD_TOKEN


def test_defaults_are_loopback_without_a_token() -> None:
    settings = DashboardSettings.load()
    assert settings.token is None and settings.allowed_hosts == LOOPBACK_HOSTS
    assert (settings.root_path, settings.trace_url, settings.secure_cookies) == ("", None, False)
    assert DASHBOARD_TOKEN not in repr(DashboardSettings(token=DASHBOARD_TOKEN))


def test_the_environment_then_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIGEANT_DASHBOARD_TOKEN", DASHBOARD_TOKEN)
    monkeypatch.setenv("PAIGEANT_DASHBOARD_ALLOWED_HOSTS", "Dash.Example.com, ops.example.com")
    monkeypatch.setenv("PAIGEANT_DASHBOARD_ROOT_PATH", "/paigeant/")
    monkeypatch.setenv("PAIGEANT_DASHBOARD_TRACE_URL", "https://t.example/trace/{trace_id}")
    monkeypatch.setenv("PAIGEANT_DASHBOARD_SECURE_COOKIES", "yes")
    monkeypatch.setenv("PAIGEANT_DASHBOARD_PAGE_SIZE", "25")
    settings = DashboardSettings.load()
    assert settings.token == DASHBOARD_TOKEN
    assert settings.allowed_hosts == ("dash.example.com", "ops.example.com")
    assert settings.root_path == "/paigeant"
    assert settings.trace_link("a" * 32) == "https://t.example/trace/" + "a" * 32
    assert settings.trace_link("not-hex") is None and settings.trace_link(None) is None
    assert settings.secure_cookies is True and settings.page_size == 25
    chosen = DashboardSettings.load(
        allowed_hosts=["x.example"], root_path="/other", page_size=10, secure_cookies=False
    )
    assert (chosen.allowed_hosts, chosen.root_path, chosen.page_size) == (
        ("x.example",),
        "/other",
        10,
    )
    assert chosen.secure_cookies is False


def test_a_specific_bind_address_is_an_allowed_host() -> None:
    assert DashboardSettings.load(bind_host="10.1.2.3").allowed_hosts == (
        *LOOPBACK_HOSTS,
        "10.1.2.3",
    )
    assert DashboardSettings.load(bind_host="0.0.0.0").allowed_hosts == LOOPBACK_HOSTS


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PAIGEANT_DASHBOARD_TOKEN", "short", "too short: use at least 16 characters"),
        ("PAIGEANT_DASHBOARD_ROOT_PATH", "no-slash", "root path must look like /paigeant"),
        ("PAIGEANT_DASHBOARD_ROOT_PATH", "/a b", "root path must look like /paigeant"),
        ("PAIGEANT_DASHBOARD_ROOT_PATH", "/workflows", "starts like one of its own pages"),
        ("PAIGEANT_DASHBOARD_TRACE_URL", "javascript:alert(1)//{trace_id}", "http(s) URL"),
        ("PAIGEANT_DASHBOARD_TRACE_URL", "https://t.example/", "containing {trace_id}"),
        ("PAIGEANT_DASHBOARD_PAGE_SIZE", "many", "PAIGEANT_DASHBOARD_PAGE_SIZE must be an integer"),
        ("PAIGEANT_DASHBOARD_PAGE_SIZE", "0", "page_size must be between 1 and 500"),
        ("PAIGEANT_DASHBOARD_SECURE_COOKIES", "perhaps", "must be 1/0, true/false"),
    ],
)
def test_bad_values_are_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        DashboardSettings.load()
