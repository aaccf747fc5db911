"""The command line: ``tether run|resume|resolve|runs|show``."""

from ._app import app, main

__all__ = ["app", "main"]
