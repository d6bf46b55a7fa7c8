"""The faults chosen for one run, put in place, counted, and judged against the alarms that fired."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.emulator.esm import MappingFaults, MappingState
from loadtest.faults import FAULTS
from loadtest.faults.catalog import Fault, FaultPlan, FaultSetup, alarm_matches
from loadtest.faults.injection import injected_counts
from pipeline.spec import DeploymentSpec

ALL = "all"


class UnknownFault(ValueError):
    pass


def parse_fault_names(values: list[str]) -> tuple[str, ...]:
    """``--fault a,b --fault c`` or ``--fault all``, in the catalog's order, each once."""
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if ALL in names:
        return tuple(FAULTS)
    unknown = [name for name in names if name not in FAULTS]
    if unknown:
        raise UnknownFault(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)} (or {ALL})")
    return tuple(name for name in FAULTS if name in names)


def fault_overrides(names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        out.update(FAULTS[name].overrides)
    return out


@dataclass
class ActiveFaults:
    """The faults of one run, with the directory where function instances claim their injections."""

    faults: list[Fault]
    plans: list[FaultPlan]
    token_dir: Path
    planted: dict[str, int] = field(default_factory=dict)

    @classmethod
    def prepare(cls, names: tuple[str, ...], spec: DeploymentSpec, token_dir: Path) -> ActiveFaults:
        faults = [FAULTS[name] for name in names]
        return cls(faults, [fault.plan(spec) for fault in faults], token_dir)

    def rules_for(self, role: str) -> tuple[dict[str, Any], ...]:
        return tuple(rule.to_dict() for plan in self.plans for rule in plan.rules.get(role, ()))

    def mapping(self) -> MappingFaults:
        found = [plan.mapping for plan in self.plans if plan.mapping is not None]
        if not found:
            return MappingFaults()
        return MappingFaults(
            duplicate_every=max(m.duplicate_every for m in found),
            duplicate_delay_seconds=max(m.duplicate_delay_seconds for m in found),
            throttle_every=max(m.throttle_every for m in found),
            throttle_limit=max(m.throttle_limit for m in found),
        )

    @property
    def poison(self) -> int:
        return sum(plan.poison for plan in self.plans)

    def plant(self, setup: FaultSetup) -> None:
        for fault, plan in zip(self.faults, self.plans, strict=True):
            if plan.before_run is not None:
                self.planted[fault.name] = plan.before_run(setup)

    def injected(self, mapping: MappingState) -> dict[str, int]:
        counts = injected_counts(self.token_dir)
        out = {}
        for fault, plan in zip(self.faults, self.plans, strict=True):
            n = counts.get(fault.name, 0) + self.planted.get(fault.name, 0)
            if plan.mapping is not None:
                n += mapping.duplicates_delivered + len(mapping.refused)
            out[fault.name] = n
        return out

    def describe(self, mapping: MappingState) -> list[dict[str, Any]]:
        injected = self.injected(mapping)
        return [
            {
                "fault": fault.name,
                "does": fault.does,
                "injected": injected[fault.name],
                "expected_alarms": list(fault.alarms),
                "why_no_alarm": fault.why_no_alarm,
                "overrides": fault.overrides,
                "poison": plan.poison,
                "dlq_records": plan.dlq_records,
            }
            for fault, plan in zip(self.faults, self.plans, strict=True)
        ]


def judge_faults(faults: list[dict[str, Any]], fired: list[str]) -> list[dict[str, Any]]:
    """Each fault with the alarms that fired for it and the expected ones that did not."""
    judged = []
    for fault in faults:
        missing = [a for a in fault["expected_alarms"] if not any(alarm_matches(a, name) for name in fired)]
        judged.append({**fault, "alarms_missing": missing, "alarms_fired": fired})
    return judged
