"""The built wheels install with pip in a fresh virtualenv, outside the workspace, and work."""

from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

IMPORT_CHECK = """
import sys, paigeant
try:
    import paigeant.testing
except ImportError as exc:
    assert "paigeant-core[testing]" in str(exc), exc
else:
    raise AssertionError("paigeant.testing imported without the [testing] extra")
assert 'pydantic_ai' not in sys.modules, 'import paigeant loaded pydantic-ai'
from paigeant import get_transport, InMemoryTransport
assert isinstance(get_transport(), InMemoryTransport)
from importlib.resources import files
assert files('paigeant').joinpath('py.typed').is_file()
import importlib.util
assert importlib.util.find_spec('pytest_paigeant'), 'the pytest plugin module is not in the wheel'
import paigeant_dashboard
dashboard = files('paigeant_dashboard')
for name in ('py.typed', 'templates/workflows.html', 'static/dashboard.js', 'static/dashboard.css'):
    assert dashboard.joinpath(name).is_file(), name
print(paigeant.__version__)
"""


def _run(*args: str, **kwargs: Any) -> str:
    """Run a command, failing the test with its output when it fails."""
    done = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is needed to build the wheels")
def test_wheels_install_and_import_in_a_fresh_virtualenv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run("uv", "build", "--all-packages", "--wheel", "--out-dir", str(dist), cwd=ROOT)
    wheels = sorted(dist.glob("*.whl"))
    names = [w.name for w in wheels]
    assert any(n.startswith("paigeant_core-") for n in names), names
    assert any(n.startswith("paigeant-0") for n in names), names
    assert any(n.startswith("paigeant_dashboard-") for n in names), names

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--find-links",
        str(dist),
        *map(str, wheels),
        cwd=tmp_path,
    )
    assert _run(python, "-c", IMPORT_CHECK, cwd=tmp_path).strip() == "0.1.0"
    listed = _run(
        str(env_dir / "bin" / "paigeant"),
        "plugins",
        cwd=tmp_path,
        env={"PATH": str(env_dir / "bin"), "COLUMNS": "200"},
    )
    assert "inmemory" in listed
