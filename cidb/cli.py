"""The ``cidb`` command line: ``cidb --help`` lists every verb.

The verbs themselves live in ``ops/`` (on-call) and ``loadtest/`` (load tests and benchmarks);
the modules here only parse options and print.
"""

from __future__ import annotations

from cidb import loadtest_commands, ops_commands
from cidb.app import app

__all__ = ["app", "loadtest_commands", "ops_commands"]
