"""The ``paigeant`` command (``app``) and the demo it runs; the top wing, which may import any
other. Nothing in the library imports it.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
