"""docs/security.md documents every security setting the code reads."""

from __future__ import annotations

import re
from pathlib import Path

import paigeant

SOURCES = Path(paigeant.__file__).parent
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"
MODULES = (
    *sorted(str(path.relative_to(SOURCES)) for path in (SOURCES / "security").glob("*.py")),
    "runtime/signer_choice.py",
    "runtime/identity_choice.py",
)


def test_every_security_variable_is_in_the_configuration_table() -> None:
    read = set()
    for module in MODULES:
        read |= set(re.findall(r'"(PAIGEANT_[A-Z_]+)"', (SOURCES / module).read_text()))
    assert "PAIGEANT_SIGNING_PRIVATE_KEY" in read
    table = {
        line.split("|")[1].strip().strip("`")
        for line in DOCS.read_text().splitlines()
        if line.startswith("| `PAIGEANT_")
    }
    missing = sorted(read - table)
    assert not missing, f"docs/security.md does not document {missing}"
