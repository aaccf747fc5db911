"""Test doubles of the outside world: a fault-injecting OpenAI-compatible server, a
clock that skips time and predictable ids.

(Scripted models live in :mod:`tether.models`.)
"""

from ._clock import FakeClock, SequentialIds
from ._fault_server import FAULTS, Fault, FaultServer, Received, closed_port, counting_responder

__all__ = ["FAULTS", "FakeClock", "Fault", "FaultServer", "Received", "SequentialIds",
           "closed_port", "counting_responder"]
