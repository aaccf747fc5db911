"""Models: the protocol, providers, and deterministic test doubles."""

from ._protocol import Model, ModelRequest, ModelResponse, ModelSettings, StreamDelta, StreamingModel
from ._scripted import FunctionModel, ScriptedModel, ScriptExhaustedError, ScriptItem, step_of

__all__ = [
    "FunctionModel",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ScriptExhaustedError",
    "ScriptItem",
    "ScriptedModel",
    "StreamDelta",
    "StreamingModel",
    "step_of",
]
