"""``--latency``: AWS call delays, Lambda cold starts and SQS poller scaling for the embedded emulator."""

from loadtest.latency.delays import LatencyHook, LatencyProfile, Percentiles, Sampler
from loadtest.latency.profiles import PROFILES, Profile
from loadtest.latency.scaling import EMULATOR_CEILING, PollerScaling

__all__ = [
    "EMULATOR_CEILING",
    "PROFILES",
    "LatencyHook",
    "LatencyProfile",
    "Percentiles",
    "PollerScaling",
    "Profile",
    "Sampler",
]
