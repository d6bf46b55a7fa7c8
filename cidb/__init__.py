"""The ``cidb`` command line; ``cidb/cli.py`` is its entry point."""
