"""``python -m cidb`` runs the ``cidb`` command line."""

from cidb.cli import app

app(prog_name="cidb")
