"""Fixtures shared by the language-model backend tests: the real default model, loaded once."""

from __future__ import annotations

import os

# Nothing may be downloaded from the Hugging Face hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from valuegym.lm.models import DEFAULT_MODEL, embedded_model_path


@pytest.fixture(scope="session")
def default_gguf():
    return embedded_model_path(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def llamacpp_model():
    pytest.importorskip("llama_cpp")
    from valuegym.lm.llamacpp import LlamaCppModel

    # One thread: llama.cpp's worker threads spin-wait for each other, which stalls by
    # orders of magnitude when other processes compete for the cores (a busy CI machine).
    model = LlamaCppModel(DEFAULT_MODEL, n_threads=1)
    yield model
    model.close()


@pytest.fixture(scope="module")
def transformers_model():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from valuegym.lm.huggingface import TransformersModel

    # One thread for the same reason as llama.cpp: OpenMP workers spin-wait, which stalls
    # badly on busy shared cores. Restored after the module, as the setting is global.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = TransformersModel(DEFAULT_MODEL, device="cpu")
    yield model
    model.close()
    torch.set_num_threads(threads)
