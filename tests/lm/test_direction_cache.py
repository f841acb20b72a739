"""``directions: default``: built once into the user cache, keyed by model and pairs."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from valuegym.lm import direction_cache
from valuegym.lm.direction_cache import default_directions, default_directions_folder
from valuegym.lm.directions import SteeringDirections, read_pairs
from valuegym.lm.models import DEFAULT_MODEL, file_sha256, resolve_gguf_path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "valuegym" / "directions"


@pytest.fixture
def builds(monkeypatch) -> list[Path]:
    """Count builds; each gives a small set carrying the model's hash."""
    calls: list[Path] = []

    def build(model):
        calls.append(Path(model))
        vectors = {"stress": np.eye(2, 3, dtype=np.float32)}
        sha = file_sha256(resolve_gguf_path(DEFAULT_MODEL))
        return SteeringDirections(("stress",), vectors, {"model_sha256": sha, "layers": [0, 1]})

    monkeypatch.setattr(direction_cache, "build_directions", build)
    return calls


def test_built_once_keyed_by_model_and_pairs_then_reused(cache: Path, builds: list[Path]) -> None:
    pytest.importorskip("transformers")
    lines: list[str] = []
    folder = default_directions(DEFAULT_MODEL, announce=lines.append)
    model_sha = file_sha256(resolve_gguf_path(DEFAULT_MODEL))
    assert folder == cache / f"{model_sha[:16]}-{read_pairs().sha256[:16]}"
    assert folder == default_directions_folder(DEFAULT_MODEL)
    assert builds == [resolve_gguf_path(DEFAULT_MODEL)]
    assert len(lines) == 2
    assert lines[0].startswith("building steering directions from the shipped pairs for ")
    assert str(folder) in lines[0]
    assert lines[1].startswith("built steering directions in ")
    assert sorted(p.name for p in cache.iterdir()) == [folder.name]  # no staging left behind
    loaded = SteeringDirections.load(folder, model_sha256=model_sha)
    np.testing.assert_array_equal(loaded.vectors["stress"], np.eye(2, 3))
    again: list[str] = []
    assert default_directions(DEFAULT_MODEL, announce=again.append) == folder
    assert len(builds) == 1  # reused, silently
    assert again == []


def test_without_transformers_the_message_names_the_extra(
    cache: Path, builds: list[Path], monkeypatch
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError) as raised:
        default_directions(DEFAULT_MODEL)
    message = str(raised.value)
    assert "\n" not in message
    assert "pip install 'valuegym[lm]'" in message
    assert builds == []
    assert not cache.exists()
