"""Errors on-call can act on: one line, naming what was wrong; never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)


class OpsError(RuntimeError):
    """A verb cannot do what was asked; the message says why and what to do."""


@contextmanager
def aws_errors(where: str) -> Iterator[None]:
    """Turn the AWS failures a verb cannot mend into one-line OpsErrors that name ``where``."""
    try:
        yield
    except (EndpointConnectionError, ConnectTimeoutError) as exc:
        raise OpsError(f"cannot reach {where}: {exc}; is the endpoint up (an emulator still running)?") from None
    except (NoCredentialsError, NoRegionError) as exc:
        raise OpsError(f"{where}: {exc}; set AWS_PROFILE or AWS credentials and a region") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise OpsError(
            f"{where}: {exc.operation_name} failed with {error.get('Code', '?')}: {error.get('Message', '')}"
        ) from None
