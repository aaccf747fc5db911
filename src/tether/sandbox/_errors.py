"""The sandbox's errors, placed in Tether's tree (see ``tether.core``)."""

from __future__ import annotations

from ..core import ConfigurationError, ToolError


class SandboxUnavailableError(ConfigurationError):
    """Isolation does not work on this host, so the sandbox refuses to run anything.

    Raised at start-up when ``bwrap`` is missing, when a namespace cannot be created,
    or when a probe inside the sandbox reached what it must not (the network, a host
    file, the host's environment). Never silently replaced by unisolated execution.
    """


class SandboxError(ToolError):
    """A sandboxed execution could not be carried out (the code's own failure is not
    this: a non-zero exit status is a normal result)."""
