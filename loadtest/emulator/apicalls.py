"""Count AWS API calls by service and operation, bytes written to S3, and calls that IAM denied.

Counting happens in the client (botocore's ``before-call`` event), so it sees exactly the
calls our code makes, in whichever process makes them, whatever the endpoint.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import urlparse

# Where loadtest/faults/injection.py says its fabricated answers come from: an injected AccessDenied is not IAM's.
INJECTED_FAULT_HOST = "fault.invalid"


class ApiCallCounter:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.s3_bytes_written = 0
        self.denied: Counter[str] = Counter()  # service.Operation answered AccessDenied

    def install(self, session: Any) -> ApiCallCounter:
        """Register on a boto3 Session; clients made from it afterwards are counted."""
        session.events.register("before-call", self._before_call)
        session.events.register("after-call", self._after_call)
        return self

    def _before_call(self, model: Any = None, params: dict[str, Any] | None = None, **_: Any) -> None:
        service = model.service_model.service_name
        self.calls[f"{service}.{model.name}"] += 1
        if service == "s3" and model.name == "PutObject" and params:
            self.s3_bytes_written += _body_size(params.get("body"))

    def _after_call(
        self, http_response: Any = None, parsed: dict[str, Any] | None = None, model: Any = None, **_: Any
    ) -> None:
        if http_response is None or urlparse(http_response.url).hostname == INJECTED_FAULT_HOST:
            return
        parsed = parsed or {}
        code = (parsed.get("Error") or {}).get("Code", "")
        denied = http_response.status_code == 403 and code.startswith("AccessDenied")
        # DeleteObjects answers 200 and denies key by key.
        denied = denied or any(e.get("Code") == "AccessDenied" for e in parsed.get("Errors") or [])
        if denied:
            self.denied[f"{model.service_model.service_name}.{model.name}"] += 1

    def take(self) -> tuple[dict[str, int], int, dict[str, int]]:
        """Counts since the last take (calls, S3 bytes written, denied calls), then reset."""
        calls, written, denied = dict(self.calls), self.s3_bytes_written, dict(self.denied)
        self.calls.clear()
        self.denied.clear()
        self.s3_bytes_written = 0
        return calls, written, denied


def _body_size(body: Any) -> int:
    """Size of a request body, which botocore has usually wrapped in a BytesIO by now."""
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "getbuffer"):
        return body.getbuffer().nbytes
    return 0
