"""``python -m paigeant``: the same as the ``paigeant`` command."""

from __future__ import annotations

from .cli.app import main

main()
