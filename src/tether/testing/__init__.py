"""Test doubles of the outside world: a fault-injecting OpenAI-compatible server.

(Scripted models live in :mod:`tether.models`.)
"""

from ._fault_server import FAULTS, Fault, FaultServer, Received, closed_port, counting_responder

__all__ = ["FAULTS", "Fault", "FaultServer", "Received", "closed_port", "counting_responder"]
