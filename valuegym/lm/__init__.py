"""Language models behind one small interface, and the backends that implement it.

>>> from valuegym.lm import load_language_model
>>> model = load_language_model()  # doctest: +SKIP
>>> [generation] = model.generate(["Say hello."], max_new_tokens=8, seed=0)  # doctest: +SKIP

Backends: ``"llamacpp"`` (llama-cpp-python on a GGUF file, the fast CPU path; the default
unless only transformers is installed), ``"transformers"`` (any Hugging Face causal LM, CPU or
GPU) and ``"openai"`` (any OpenAI-compatible HTTP server). Backends are imported only when
loaded.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from valuegym.lm.base import (
    Generation,
    LanguageModel,
    LanguageModelError,
    LanguageModelUnavailableError,
    Message,
    Prompt,
    SteeringUnsupportedError,
    TransientLanguageModelError,
)
from valuegym.lm.models import DEFAULT_MODEL, EMBEDDED_MODELS, embedded_model_installed
from valuegym.lm.steering import Steering
from valuegym.lm.wrappers import (
    CallLimitExceededError,
    CallLimitModel,
    ForwardingModel,
    PhaseProfile,
    ProfilingModel,
    RetryingModel,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "CallLimitExceededError",
    "CallLimitModel",
    "ForwardingModel",
    "Generation",
    "LanguageModel",
    "LanguageModelError",
    "LanguageModelUnavailableError",
    "Message",
    "PhaseProfile",
    "ProfilingModel",
    "Prompt",
    "RetryingModel",
    "Steering",
    "SteeringUnsupportedError",
    "TransientLanguageModelError",
    "available_backends",
    "default_backend",
    "load_language_model",
    "require_backend",
]

#: Keyword arguments of :func:`load_language_model` that go to the :class:`RetryingModel`.
_RETRY_OPTIONS = ("max_attempts", "initial_delay", "backoff", "max_delay")

#: Backend name -> (the modules it needs, what to install when they are missing).
BACKENDS: dict[str, tuple[tuple[str, ...], str]] = {
    "llamacpp": (("llama_cpp",), "pip install 'valuegym[demo]'"),
    "transformers": (("torch", "transformers"), "pip install 'valuegym[lm]'"),
    "openai": ((), "nothing (standard library only)"),
}


def available_backends() -> list[str]:
    """The backends whose dependencies are installed, the default first.

    Returns:
        Backend names, usable as ``load_language_model(backend=...)``.
    """
    return [
        name
        for name, (modules, _) in BACKENDS.items()
        if all(importlib.util.find_spec(module) is not None for module in modules)
    ]


def default_backend() -> str:
    """The backend used when none is named.

    Returns:
        ``"transformers"`` when it is installed and llama-cpp-python is not, else
        ``"llamacpp"`` (the demo's backend, so that loading without either names the demo's
        install).
    """
    installed = available_backends()
    only_transformers = "transformers" in installed and "llamacpp" not in installed
    return "transformers" if only_transformers else "llamacpp"


def require_backend(backend: str | None, model: str = DEFAULT_MODEL) -> str:
    """Check that a backend is installed, before anything is loaded or hashed.

    Args:
        backend: A backend name, or ``None`` for :func:`default_backend`.
        model: The model it will load; an embedded model that is not installed either is
            named in the same error, so a fresh install learns both commands at once.

    Returns:
        The backend's name.

    Raises:
        ValueError: If the backend name is unknown.
        LanguageModelUnavailableError: If the backend is not installed.
    """
    if backend is None:
        backend = default_backend()
    if backend not in BACKENDS:
        raise ValueError(f"backend {backend!r}: unknown (known: {sorted(BACKENDS)})")
    if backend not in available_backends():
        missing = f"backend {backend!r} is not installed: {BACKENDS[backend][1]}"
        if backend != "openai" and model in EMBEDDED_MODELS and not embedded_model_installed(model):
            missing += f"; nor is the model {model!r}: {EMBEDDED_MODELS[model].install}"
        raise LanguageModelUnavailableError(missing)
    return backend


def load_language_model(
    backend: str | None = None, model: str = DEFAULT_MODEL, **options: Any
) -> LanguageModel:
    """Load a language model by backend and model name.

    Args:
        backend: ``"llamacpp"``, ``"transformers"`` or ``"openai"``; ``None`` picks
            :func:`default_backend` (``"llamacpp"`` unless only transformers is installed).
        model: An embedded model name (default ``"smollm2-135m"``), a local path, a
            Hugging Face id (``transformers``) or the served model's name (``openai``).
        **options: Keyword arguments of the backend class (:class:`LlamaCppModel`,
            :class:`TransformersModel`, :class:`OpenAICompatibleModel`). For ``"openai"``,
            the model is wrapped in a :class:`RetryingModel`, which takes ``max_attempts``
            (default 5), ``initial_delay`` (default 0.25 s), ``backoff`` and ``max_delay``:
            a call gives up after about 4 s of failures, longer when the server asks to
            wait (``Retry-After``).

    Returns:
        The loaded model.

    Raises:
        ValueError: If the backend name is unknown.
        LanguageModelUnavailableError: If the backend or the model is not installed.
    """
    backend = require_backend(backend, model)
    if backend == "llamacpp":
        from valuegym.lm.llamacpp import LlamaCppModel

        return LlamaCppModel(model, **options)
    if backend == "transformers":
        from valuegym.lm.huggingface import TransformersModel

        return TransformersModel(model, **options)
    from valuegym.lm.openai_http import OpenAICompatibleModel

    retry = {name: options.pop(name) for name in _RETRY_OPTIONS if name in options}
    retry.setdefault("max_attempts", 5)
    retry.setdefault("initial_delay", 0.25)
    return RetryingModel(OpenAICompatibleModel(model=model, **options), **retry)
