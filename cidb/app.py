"""The one Typer application; the command modules register their verbs on it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="CIDB pipeline toolkit: on-call verbs for a deployed stack or an emulator, and load tests.",
    no_args_is_help=True,
    add_completion=False,
)
