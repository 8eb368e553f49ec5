"""The core ``rdt`` commands: ``sample``, ``ls``, ``log``, ``export``, ``import``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the core commands to the ``rdt`` app."""
