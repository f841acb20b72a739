"""``directions: default``: the shipped pairs' directions for a model, built once per user.

A scenario that says ``lm.steering.directions: default`` steers with the directions of the
shipped contrastive pairs (:func:`~valuegym.lm.directions.read_pairs`) on the agent's own model
file, built at every block the first time they are asked for and kept under
:func:`~valuegym.lm.models.user_cache_dir` in ``directions/<model sha256>-<pairs sha256>``
(both cut to 16 hex digits). The folder is built beside its final place and renamed into it, so
a half-built set is never read and two runs building at once both end with a whole one. So a
fresh machine runs a steered scenario with two commands (install, run); building needs
transformers (the ``lm`` extra).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from valuegym.lm.directions import PROVENANCE_FILE, build_directions, read_pairs
from valuegym.lm.models import file_sha256, resolve_gguf_path, user_cache_dir

__all__ = ["DEFAULT_DIRECTIONS", "default_directions", "default_directions_folder"]

#: The ``lm.steering.directions`` value that asks for the cached shipped-pair directions.
DEFAULT_DIRECTIONS: Final = "default"


def default_directions_folder(model: str | Path) -> Path:
    """Where the shipped pairs' directions for a GGUF model are cached (built or not).

    Args:
        model: An embedded model name or a ``.gguf`` file.

    Returns:
        ``<cache>/directions/<model sha256[:16]>-<pairs sha256[:16]>``.
    """
    model_sha = file_sha256(resolve_gguf_path(model))
    return user_cache_dir() / "directions" / f"{model_sha[:16]}-{read_pairs().sha256[:16]}"


def default_directions(model: str | Path, *, announce: Callable[[str], None] | None = None) -> Path:
    """The cached shipped-pair directions of a model, built on first use.

    Args:
        model: An embedded model name or a ``.gguf`` file.
        announce: Receives one line before a build (what and where) and one after (how
            long); nothing is announced when the cache already holds them.

    Returns:
        The folder holding ``directions.json`` and ``directions.npz``.

    Raises:
        ImportError: (one line) When they must be built and transformers is not installed.
    """
    folder = default_directions_folder(model)
    if (folder / PROVENANCE_FILE).is_file():
        return folder
    try:
        import torch  # noqa: F401 - only checked: building needs it
        import transformers  # noqa: F401
    except ImportError:
        raise ImportError(
            "lm.steering.directions: default: building the directions needs transformers and "
            "torch; install them with `pip install 'valuegym[lm]'`"
        ) from None
    model_file = resolve_gguf_path(model)
    if announce is not None:
        announce(
            f"building steering directions from the shipped pairs for {model_file.name} at "
            f"every block into {folder} (once; about half a minute on 2 CPU cores, more when "
            "the model is read into transformers for the first time)"
        )
    started = time.perf_counter()
    directions = build_directions(model_file)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        directions.save(staging)
        try:
            staging.rename(folder)
        except OSError:  # built meanwhile by another run: keep that one
            if not (folder / PROVENANCE_FILE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if announce is not None:
        announce(f"built steering directions in {time.perf_counter() - started:.0f} s")
    return folder
