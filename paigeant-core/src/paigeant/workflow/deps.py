"""Import paths of dependency classes, so deps given at dispatch can be rebuilt in a worker."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .messages import DepsEnvelope

__all__ = ["DepsImportError", "envelope_for", "import_path", "rebuild_deps"]


class DepsImportError(ImportError):
    """A dependencies class named in a message cannot be imported or validated in this worker."""


def _main_module_name() -> str | None:
    """Best importable name of the ``__main__`` module (a script run as ``python x.py``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return str(spec.name)
    file = getattr(main, "__file__", None)
    if not file:
        return None
    path = Path(file).resolve().with_suffix("")
    for root in (Path(os.getcwd()).resolve(), *(Path(p).resolve() for p in sys.path if p)):
        try:
            parts = path.relative_to(root).parts
        except ValueError:
            continue
        if parts and all(part.isidentifier() for part in parts):
            return ".".join(parts)
    return None


def import_path(cls: type) -> str:
    """Return ``module:QualName`` for ``cls``, resolving ``__main__`` to an importable module."""
    module = cls.__module__
    if module == "__main__":
        module = _main_module_name() or module
    return f"{module}:{cls.__qualname__}"


def envelope_for(deps: BaseModel) -> DepsEnvelope:
    """Serialize a pydantic dependencies object with its import path."""
    return DepsEnvelope(type=import_path(type(deps)), data=deps.model_dump(mode="json"))


def _import(path: str) -> type[BaseModel]:
    module_name, _, qualname = path.partition(":")
    if module_name == "__main__":
        raise DepsImportError(
            f"deps type {path!r} was defined in a script run as __main__ that could not be "
            "located; move it to an importable module or run the script from the project root"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise DepsImportError(
            f"cannot import deps type {path!r} in this worker ({exc}); make its module "
            "importable here (same code on every worker, PYTHONPATH or an installed package)"
        ) from exc
    if not (isinstance(target, type) and issubclass(target, BaseModel)):
        raise DepsImportError(f"deps type {path!r} is not a pydantic model")
    return target


def rebuild_deps(envelope: DepsEnvelope, expected: type[BaseModel] | None = None) -> BaseModel:
    """Rebuild deps from ``envelope``, validated with ``expected`` when the worker knows the type."""
    cls = expected if expected is not None else _import(envelope.type)
    try:
        return cls.model_validate(envelope.data)
    except ValidationError as exc:
        raise DepsImportError(
            f"deps for {envelope.type!r} do not validate as {cls.__qualname__}: {exc}"
        ) from exc
