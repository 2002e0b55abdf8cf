"""Fixtures for paigeant-postgres tests: the real PostgreSQL on loopback, a schema per test run.

When PostgreSQL is unreachable the tests are skipped with the reason, except under ``CI=true``,
where they fail: CI must not go green without having run them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

#: The server the tests use (trust auth, database ``test``); loopback only.
POSTGRES_URL = os.environ.get("PAIGEANT_POSTGRES_TEST_URL", "postgresql://127.0.0.1:5432/test")
START_HINT = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
)


def postgres_problem() -> str | None:
    """Why PostgreSQL at POSTGRES_URL cannot be used, or None when it answers."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=2) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unreachable ({str(exc).strip()}); {START_HINT}"
    return None


@pytest.fixture(scope="session")
def _postgres_status() -> str | None:
    return postgres_problem()


@pytest.fixture(autouse=True)
def _require_postgres(_postgres_status: str | None) -> None:
    """Skip (or under CI=true, fail) when PostgreSQL is unreachable."""
    if _postgres_status is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{_postgres_status} (CI=true: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(_postgres_status)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the test database."""
    return POSTGRES_URL


@pytest.fixture(scope="session")
def schema(_postgres_status: str | None) -> Iterator[str]:
    """A schema unique to this test run, dropped (with everything in it) at the end."""
    name = f"paigeant_test_{uuid.uuid4().hex[:10]}"
    yield name
    if _postgres_status is None:
        drop_schema(name)


def drop_schema(name: str) -> None:
    """Drop schema ``name`` and its tables."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture(autouse=True)
def _private_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No PAIGEANT_* setting from the caller, and a private PAIGEANT_HOME."""
    for var in [name for name in os.environ if name.startswith("PAIGEANT_") and "TEST" not in name]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("PAIGEANT_HOME", str(tmp_path_factory.mktemp("paigeant-home")))
