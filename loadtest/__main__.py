"""``python -m loadtest`` runs the ``cidb`` command line."""

from loadtest.cli import app

app(prog_name="cidb")
