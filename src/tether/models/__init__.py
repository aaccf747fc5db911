"""Models: the protocol, providers, and deterministic test doubles."""

from ._answer import TruncatedResponseError
from ._anthropic import AnthropicModel
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._local import LocalModel, default_local_model_path
from ._openai import DEFAULT_COMPATIBLE_MAX_TOKENS, OpenAIModel
from ._pricing import (
    DEFAULT_PRICES,
    PRICE_TABLE_VERSION,
    CostEstimate,
    ModelPrice,
    PriceTable,
    cost,
)
from ._protocol import (
    Model,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    StreamDelta,
    StreamingModel,
)
from ._scripted import FunctionModel, ScriptedModel, ScriptExhaustedError, ScriptItem, step_of
from ._select import MODEL_ENV, ModelSpec, parse_model_spec, select_model

__all__ = [
    "DEFAULT_COMPATIBLE_MAX_TOKENS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_PRICES",
    "MODEL_ENV",
    "PRICE_TABLE_VERSION",
    "AnthropicModel",
    "CostEstimate",
    "FunctionModel",
    "LocalModel",
    "Model",
    "ModelPrice",
    "ModelRequest",
    "ModelResponse",
    "ModelSettings",
    "ModelSpec",
    "OpenAIModel",
    "PriceTable",
    "ScriptExhaustedError",
    "ScriptItem",
    "ScriptedModel",
    "StreamDelta",
    "StreamingModel",
    "TruncatedResponseError",
    "cost",
    "default_local_model_path",
    "parse_model_spec",
    "select_model",
    "step_of",
]
