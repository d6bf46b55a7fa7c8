"""Names of the things being monitored, kept apart from the stack package.

The Pulumi layer passes the deployed names (possibly Pulumi Outputs); the local evaluator and
tests use :meth:`MonitoredResources.from_spec`. Either way monitoring never imports ``stack``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.spec import DeploymentSpec
from queries import LOG_GROUP_ROLES

NameLike = Any
"""A resource name: ``str``, or a ``pulumi.Output[str]`` in the Pulumi layer."""

ROLES = LOG_GROUP_ROLES
"""The three functions, by role; saved queries name their log groups by the same roles."""


@dataclass(frozen=True)
class MonitoredResources:
    queue_name: NameLike
    dlq_name: NameLike
    topic_name: NameLike
    collector_function: NameLike
    reporter_function: NameLike
    verifier_function: NameLike
    collector_log_group: NameLike
    reporter_log_group: NameLike
    verifier_log_group: NameLike

    @classmethod
    def from_spec(cls, spec: DeploymentSpec) -> MonitoredResources:
        return cls(
            queue_name=spec.queue_name,
            dlq_name=spec.dlq_name,
            topic_name=spec.topic_name,
            collector_function=spec.collector.name,
            reporter_function=spec.reporter.name,
            verifier_function=spec.verifier.name,
            collector_log_group=spec.collector.log_group,
            reporter_log_group=spec.reporter.log_group,
            verifier_log_group=spec.verifier.log_group,
        )

    def function(self, role: str) -> NameLike:
        return getattr(self, f"{_checked(role)}_function")

    def log_group(self, role: str) -> NameLike:
        return getattr(self, f"{_checked(role)}_log_group")


def _checked(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"unknown function role {role!r}; use one of {ROLES}")
    return role
