"""The embedded AWS emulator: a real moto server, in its own process, on loopback.

Example::

    with MotoServer() as moto:
        boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name="us-east-1")
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from ops.target import EMULATOR_CREDENTIALS, EMULATOR_REGION

HOST = "127.0.0.1"
REGION = EMULATOR_REGION
ACCOUNT_ID = "123456789012"  # moto's default account
CREDENTIALS = EMULATOR_CREDENTIALS


class EmulatorError(RuntimeError):
    """The emulator did not start or stopped answering."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class MotoServer:
    """Start moto's server (through :mod:`loadtest.emulator.moto_main`) on a free port; stop it on exit.

    With ``iam``, moto checks every signed request against the caller's identity policies after the
    first ``free_calls`` (moto's ``INITIAL_NO_AUTH_ACTION_COUNT``), which the harness spends on its own
    admin user (:func:`loadtest.emulator.roles.admin_credentials`).
    """

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        startup_timeout: float = 30.0,
        port: int | None = None,
        iam: bool = False,
        free_calls: int = 3,
    ) -> None:
        self.port = port or free_port()
        self.iam, self.free_calls = iam, free_calls
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> MotoServer:
        self._log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "loadtest.emulator.moto_main", "-H", HOST, "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(self.free_calls)} if self.iam else None,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmulatorError(f"moto server exited with code {self._proc.returncode} before answering")
            try:
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/data.json", timeout=1).close()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise EmulatorError(f"moto server did not answer on {self.endpoint_url} within {self.startup_timeout:.0f} s")

    def wait(self) -> int:
        """Block until the server exits (on-call practice: ``cidb emulator`` runs until Ctrl-C)."""
        return self._proc.wait() if self._proc else 0

    def stop(self) -> None:
        if self._proc and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self._proc = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
