"""Fixtures shared by the language-model backend tests: the real default model, loaded once,
and served over HTTP by llama.cpp's OpenAI-compatible server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

# Nothing may be downloaded from the Hugging Face hub during tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from valuegym.lm.cpu import AMX_OVERRIDE_VARIABLE
from valuegym.lm.models import DEFAULT_MODEL, embedded_model_path

SERVER_START_TIMEOUT_S = 90


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


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(default_gguf):
    pytest.importorskip("llama_cpp.server", exc_type=ImportError)
    port = _free_port()
    # valuegym's entry point applies the buffer-type choice that llama_cpp.server cannot;
    # forced off here so that the AMX-safe path is exercised on every CPU, AMX or not.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "valuegym.lm.llamacpp_server",
            "--model",
            str(default_gguf),
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, AMX_OVERRIDE_VARIABLE: "0"},
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the llama.cpp server did not start (exit code {process.poll()})")
                time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
