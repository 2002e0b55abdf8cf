"""Helpers every transport shares: credentials hidden in URLs, the poison reason."""

from __future__ import annotations

import pytest

from paigeant import redact_url, too_many_deliveries


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@cache:6380/1", "redis://***@cache:6380/1"),
        ("amqp://guest:guest@127.0.0.1:5672/vhost", "amqp://***@127.0.0.1:5672/vhost"),
        ("nats://TOKEN@nats.example:4222", "nats://***@nats.example:4222"),
        (
            "rediss://user:pw@[::1]:6379/0?ssl_cert_reqs=none",
            "rediss://***@[::1]:6379/0?ssl_cert_reqs=none",
        ),
        ("unix:///run/redis.sock", "unix:///run/redis.sock"),
        ("redis://cache?password=s3cret&db=2", "redis://cache?password=***&db=2"),
        ("unix:///run/redis.sock?db=0&password=s3cret", "unix:///run/redis.sock?db=0&password=***"),
        ("nats://host:4222?token=TOKEN", "nats://host:4222?token=***"),
        ("redis://u:s3cret@host:99999/0", "redis://***@host:99999/0"),  # a bad port: no error
        ("amqp://guest:p%40ss@rabbit/", "amqp://***@rabbit/"),
    ],
)
def test_redact_url_hides_user_password_and_token(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url) and "TOKEN" not in redact_url(url)


def test_too_many_deliveries_names_both_counts() -> None:
    assert too_many_deliveries(5, 5) == "delivered 5 times without success (max_deliveries=5)"
