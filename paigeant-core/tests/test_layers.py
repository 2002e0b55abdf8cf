"""The wings of ``paigeant`` import only downward (DESIGN section 1), checked from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import paigeant

PACKAGE = Path(paigeant.__file__).parent

#: Rank of each wing (or top-level module), lowest first; a module may import only its own
#: rank or lower. ``__init__`` is the public facade over everything.
RANKS: dict[str, int] = {
    "errors": 0,
    "settings": 0,
    "hookspecs": 0,
    "transports": 1,
    "security": 1,
    "workflow": 2,
    "plugins": 3,
    "runtime": 4,
    "store": 4,
    "builtin_plugins": 4,
    "agents": 5,
    "cli": 6,
    "__main__": 6,
    "testing": 6,
    "__init__": 7,
}

TOP_LEVEL_MODULES = {
    "__init__",
    "__main__",
    "hookspecs",
    "plugins",
    "builtin_plugins",
    "settings",
    "errors",
}


def _wing(module: str) -> str:
    """Wing of a dotted module path relative to the package (``runtime.step`` -> ``runtime``)."""
    return module.split(".", 1)[0] if module else "__init__"


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    """Dotted name of ``path`` relative to ``root`` and whether it is a package ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def _imported_modules(
    tree: ast.AST, module: str, is_package: bool, top: str
) -> list[tuple[int, str]]:
    """Every ``(line, dotted module)`` inside the package that ``tree`` imports."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == top or alias.name.startswith(top + "."):
                    found.append((node.lineno, alias.name[len(top) + 1 :]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and (node.module == top or node.module.startswith(top + ".")):
                target = node.module[len(top) + 1 :]
            else:
                continue
            if node.module is None or target == "":
                # ``from . import x``: each name may be a module of that package.
                for alias in node.names:
                    found.append((node.lineno, ".".join(filter(None, [target, alias.name]))))
            else:
                found.append((node.lineno, target))
    return found


def upward_imports(root: Path, top: str = "paigeant") -> list[str]:
    """Describe every import under ``root`` that reaches a wing ranked above its own."""
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module, is_package = _module_name(path, root)
        wing = _wing(module)
        if wing not in RANKS:
            problems.append(f"{path.relative_to(root)}: wing {wing!r} has no rank in RANKS")
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, target in _imported_modules(tree, module, is_package, top):
            target_wing = _wing(target)
            if target_wing not in RANKS:  # a name defined by the package itself (``__version__``)
                target_wing = "__init__"
            if RANKS[target_wing] > RANKS[wing]:
                problems.append(
                    f"{path.relative_to(root)}:{line} imports {top}.{target or '(package)'} "
                    f"({target_wing}, rank {RANKS[target_wing]}) from {wing} "
                    f"(rank {RANKS[wing]})"
                )
    return problems


def test_imports_only_run_downward() -> None:
    problems = upward_imports(PACKAGE)
    assert not problems, "imports that run upward:\n" + "\n".join(problems)


def test_the_top_level_holds_only_the_facade_and_the_lowest_modules() -> None:
    top = {path.stem for path in PACKAGE.glob("*.py")}
    assert top == TOP_LEVEL_MODULES, (
        f"unexpected top-level modules: {sorted(top - TOP_LEVEL_MODULES)}"
    )


def test_every_wing_says_what_lives_there_and_what_it_may_import() -> None:
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text()))
        assert doc, f"{folder.name}/__init__.py has no docstring"
        assert "import" in doc, f"{folder.name}/__init__.py does not say what it may import"


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("security/bad.py", "from ..runtime.step import StepRunner\n", "runtime, rank 4"),
        ("transports/bad.py", "from paigeant.workflow import wire\n", "workflow, rank 2"),
        ("workflow/bad.py", "def f():\n    from ..plugins import get_signer\n", "plugins, rank 3"),
        ("runtime/bad.py", "from .. import __version__\n", "__init__, rank 7"),
        ("plugins.py", "import paigeant.cli.app\n", "cli, rank 6"),
    ],
)
def test_the_check_names_an_upward_import(
    tmp_path: Path, path: str, source: str, expected: str
) -> None:
    for wing in ("security", "transports", "workflow", "runtime", "cli"):
        (tmp_path / wing).mkdir()
        (tmp_path / wing / "__init__.py").write_text("")
    (tmp_path / "__init__.py").write_text("")
    (tmp_path / path).write_text(source)
    (problem,) = upward_imports(tmp_path)
    assert problem.startswith(f"{path}:"), problem
    assert expected in problem, problem


def test_the_check_accepts_downward_and_sideways_imports(tmp_path: Path) -> None:
    for wing in ("runtime", "store", "workflow"):
        (tmp_path / wing).mkdir()
        (tmp_path / wing / "__init__.py").write_text("")
    (tmp_path / "__init__.py").write_text("from .runtime import x\n")
    (tmp_path / "store" / "monitor.py").write_text(
        "from ..runtime.worker import Worker\nfrom ..workflow.events import E\nfrom . import sqlite\n"
    )
    assert upward_imports(tmp_path) == []
