"""Finding activities in a module named on the command line (``MODULE[:ATTR]``)."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from .activity import Activity, SupportsActivity, as_activity

__all__ = ["load_activities"]


def _is_activity(value: Any) -> bool:
    if isinstance(value, Activity):
        return True
    return not isinstance(value, type) and isinstance(value, SupportsActivity)


def load_activities(target: str) -> list[Activity]:
    """Import ``MODULE`` or ``MODULE:ATTR`` and return the activities found there.

    ``ATTR`` may name one activity (or agent) or a list of them; without it, every activity
    defined at the module's top level is returned. The current directory is importable.
    """
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import {module_name!r} to find activities: {exc}") from exc
    if attr:
        try:
            value = getattr(module, attr)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None
        values = list(value) if isinstance(value, list | tuple) else [value]
    else:
        values = [v for v in vars(module).values() if _is_activity(v)]
    found: dict[str, Activity] = {}
    for value in values:
        act = as_activity(value)
        found.setdefault(act.name, act)
    if not found:
        raise ImportError(
            f"no activities found in {target!r}: decorate async functions with @activity"
        )
    return list(found.values())
