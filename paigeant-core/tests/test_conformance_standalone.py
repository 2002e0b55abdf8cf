"""The conformance suite runs from a folder with no configuration, as a plugin author first tries it.

A plain ``pytest`` on one file subclassing ``TransportConformance``: tests pass, a missing
capability skips with a reason that says what to implement, and pytest-asyncio's loop-scope
deprecation warning is not printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SUBCLASS = """
from paigeant.testing import TransportConformance
from paigeant.transports.inmemory import InMemoryBroker, InMemoryTransport


class TestAcme(TransportConformance):
    def make_transport(self):
        broker = self.__dict__.setdefault("broker", InMemoryBroker())
        return InMemoryTransport(broker=broker)
"""

WARNING = '"asyncio_default_fixture_loop_scope" is unset'


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PAIGEANT_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_suite_runs_in_a_folder_without_configuration(tmp_path: Path) -> None:
    (tmp_path / "test_acme.py").write_text(SUBCLASS)
    selected = "idempotent or preserved or second_settle or restart"
    done = _pytest(tmp_path, "test_acme.py", "-k", selected)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "rootdir: " + str(tmp_path) in output and "configfile" not in output
    assert "3 passed, 2 skipped" in output, output
    assert "define `async def restart_broker(self)`" in output, "the skip reason is not shown"
    assert WARNING not in output and "PytestDeprecationWarning" not in output, output


def test_the_warning_is_there_without_paigeants_pytest_plugin(tmp_path: Path) -> None:
    """The check above can fail: without the plugin pytest-asyncio does print the warning."""
    (tmp_path / "test_acme.py").write_text(SUBCLASS)
    done = _pytest(tmp_path, "-p", "no:paigeant", "test_acme.py", "-k", "idempotent")
    assert done.returncode == 0, done.stdout + done.stderr
    assert WARNING in done.stdout + done.stderr


def test_a_configured_project_is_left_alone(tmp_path: Path) -> None:
    (tmp_path / "test_acme.py").write_text(SUBCLASS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    done = _pytest(tmp_path, "test_acme.py", "-k", "idempotent")
    assert done.returncode == 0, done.stdout + done.stderr
    assert WARNING in done.stdout + done.stderr, "the plugin changed a configured project"
