"""The event source mapping's Invoke is throttled; the messages must come back, not vanish."""

from loadtest.emulator.esm import MappingFaults
from loadtest.faults.catalog import Fault, FaultPlan

NAME = "lambda-throttle"
FAULT = Fault(
    name=NAME,
    does="the event source mapping's every 4th Invoke is refused (TooManyRequestsException), up to 10",
    alarms=("reporter-throttles",),
    plan=lambda spec: FaultPlan(mapping=MappingFaults(throttle_every=4, throttle_limit=10)),
)
