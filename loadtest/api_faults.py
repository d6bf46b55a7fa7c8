"""Fail chosen AWS API calls with a chosen error, between the handler and the endpoint.

A rule is installed as a botocore ``before-call`` hook on a session or a client: when it
matches, botocore gets an error response instead of sending the request, and raises the
same ``ClientError`` that the endpoint would have caused. The pipeline code is untouched.
botocore does not retry such a response, so a rule stands for an error that outlasted the
SDK's retries.

This module imports only the standard library at load time, because a function instance
loads it from its file (see :mod:`loadtest.lambda_bootstrap`); botocore comes from the
artifact's layer when a rule fires.

Example::

    rule = FaultRule("s3.DeleteObject", "NotImplemented", 501, key_suffix=".lock", when_param="IfMatch")
    install_rules(s3_client.meta.events, [rule])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FaultRule:
    operation: str  # "service.Operation", e.g. "s3.DeleteObject"
    code: str  # the error code the caller sees, e.g. "SlowDown"
    status: int  # its HTTP status, e.g. 503
    key_suffix: str = ""  # only calls whose Key ends with this
    when_param: str = ""  # only calls that carry this parameter (e.g. IfMatch: conditional requests)
    every: int = 1  # fail every Nth matching call
    limit: int = 0  # fail at most this many (0: no limit)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_PARAMS = "cidb_api_params"


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-call`` sees the serialized request; keep the API parameters for the rules."""
    context[_PARAMS] = dict(params)


class _Injector:
    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.matched = 0
        self.injected = 0

    def __call__(self, model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> Any:
        rule, params = self.rule, (context or {}).get(_PARAMS, {})
        if f"{model.service_model.service_name}.{model.name}" != rule.operation:
            return None
        if rule.key_suffix and not str(params.get("Key", "")).endswith(rule.key_suffix):
            return None
        if rule.when_param and rule.when_param not in params:
            return None
        self.matched += 1
        if self.matched % rule.every or (rule.limit and self.injected >= rule.limit):
            return None
        self.injected += 1
        return _error_response(rule)


def _error_response(rule: FaultRule) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse

    message = f"injected by the load test ({rule.operation} -> {rule.status} {rule.code})"
    http = AWSResponse("https://fault.invalid/", rule.status, {}, None)
    parsed = {
        "Error": {"Code": rule.code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": rule.status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return http, parsed


def install_rules(events: Any, rules: list[FaultRule]) -> list[_Injector]:
    """Register each rule on a botocore event emitter (``session.events`` or ``client.meta.events``)."""
    injectors = [_Injector(rule) for rule in rules]
    events.register("before-parameter-build", _remember_params)
    for injector in injectors:
        events.register_last("before-call", injector)  # after the API-call counter, which still counts the call
    return injectors


def rules_from_dicts(items: list[dict[str, Any]]) -> list[FaultRule]:
    return [FaultRule(**item) for item in items]
