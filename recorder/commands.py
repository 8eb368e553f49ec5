"""The `rdt` commands this package provides."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `rdt` app."""
