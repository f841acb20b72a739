import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

import numpy as np
import pytest

from valuegym.lm.base import LanguageModelUnavailableError, TransientLanguageModelError
from valuegym.lm.openai_http import (
    OpenAICompatibleModel,
    ScoringUnsupportedError,
    ServerUnreachableError,
    top_k_entropy_interval,
)

CHAT_PROMPT = [{"role": "user", "content": "Write one sentence about apples."}]
TEXT_PROMPT = "The capital of France is"
SMOLLM2_VOCABULARY = 49152


def exact_entropy(probabilities):
    positive = probabilities[probabilities > 0]
    return float(-np.sum(positive * np.log(positive)))


def test_interval_is_exact_for_a_uniform_distribution():
    vocabulary = 1000
    log_probs = np.full(10, -np.log(vocabulary))
    lower, width = top_k_entropy_interval(log_probs, vocab_size=vocabulary, top_k=10)
    assert lower == pytest.approx(np.log(vocabulary))
    assert width == pytest.approx(0.0, abs=1e-12)
    # Without the ordering, the tail might be concentrated: a wide interval.
    lower, width = top_k_entropy_interval(log_probs, vocab_size=vocabulary)
    assert lower < np.log(vocabulary) <= lower + width


def test_fully_listed_distribution_has_exact_entropy_and_no_bound():
    probabilities = np.array([0.5, 0.25, 0.25])
    lower, width = top_k_entropy_interval(np.log(probabilities), vocab_size=3, top_k=3)
    assert lower == pytest.approx(1.5 * np.log(2))
    assert width == 0.0
    assert top_k_entropy_interval([0.0], vocab_size=10) == (0.0, 0.0)


@pytest.mark.parametrize("concentration", [0.01, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("top_k", [1, 5, 20])
def test_true_entropy_lies_within_the_interval(concentration, top_k):
    rng = np.random.default_rng(int(concentration * 100) + top_k)
    vocabulary = 500
    for _ in range(50):
        probabilities = rng.dirichlet(np.full(vocabulary, concentration))
        true_entropy = exact_entropy(probabilities)
        order = np.argsort(probabilities)[::-1]
        listed = np.log(probabilities[order[:top_k]])
        ordered = top_k_entropy_interval(listed, vocab_size=vocabulary, top_k=top_k)
        unordered = top_k_entropy_interval(listed, vocab_size=vocabulary)
        for lower, width in (ordered, unordered):
            assert lower - 1e-9 <= true_entropy <= lower + width + 1e-9
        assert ordered[0] >= unordered[0] - 1e-12
        assert ordered[0] + ordered[1] <= unordered[0] + unordered[1] + 1e-9
        # A sampled token from outside the top-k listed too (as llama.cpp's server does).
        outsider = np.log(probabilities[order[rng.integers(top_k, vocabulary)]])
        lower, width = top_k_entropy_interval(
            np.append(listed, outsider), vocab_size=vocabulary, top_k=top_k
        )
        assert lower - 1e-9 <= true_entropy <= lower + width + 1e-9


def test_unordered_lower_end_holds_where_renormalised_top_k_would_overshoot():
    # Two unlikely tokens listed, the likely one missing: their renormalised entropy (log 2)
    # is far above the true entropy; the lumped-tail lower end is not.
    probabilities = np.array([0.998, 0.001, 0.001])
    true_entropy = exact_entropy(probabilities)
    assert np.log(2) > true_entropy
    lower, width = top_k_entropy_interval(np.log(probabilities[1:]), vocab_size=3)
    assert lower - 1e-12 <= true_entropy <= lower + width + 1e-12


def test_interval_rejects_impossible_input():
    with pytest.raises(ValueError, match="<= 0"):
        top_k_entropy_interval([0.5], vocab_size=10)
    with pytest.raises(ValueError, match="exceed vocab_size"):
        top_k_entropy_interval([-1.0] * 4, vocab_size=3)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_server_gives_one_clear_error_quickly():
    model = OpenAICompatibleModel(f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    with pytest.raises(ServerUnreachableError, match="is unreachable") as caught:
        model.generate(["hello"], max_new_tokens=4)
    assert isinstance(caught.value, LanguageModelUnavailableError)
    assert isinstance(caught.value, TransientLanguageModelError)


def test_silent_server_times_out_as_a_transient_error():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts connections in the backlog, never answers
        port = listener.getsockname()[1]
        model = OpenAICompatibleModel(f"http://127.0.0.1:{port}/v1", timeout=0.3)
        with pytest.raises(TransientLanguageModelError, match=r"no answer within 0\.3 s"):
            model.generate(["hello"], max_new_tokens=4)


def test_api_key_is_sent_from_the_environment_and_never_shown(monkeypatch):
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["authorization"] = self.headers.get("Authorization")
            seen["body"] = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            answer = {
                "choices": [
                    {
                        "text": " ok",
                        "finish_reason": "stop",
                        "logprobs": {"token_logprobs": [-0.1], "top_logprobs": [{" ok": -0.1}]},
                    }
                ]
            }
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("VALUEGYM_TEST_KEY", "sk-secret-123")
        model = OpenAICompatibleModel(
            f"http://127.0.0.1:{server.server_port}/v1", "m", api_key_env="VALUEGYM_TEST_KEY"
        )
        [generation] = model.generate(["hi"], max_new_tokens=1, temperature=0.5, seed=1)
    finally:
        server.shutdown()
    assert seen["authorization"] == "Bearer sk-secret-123"
    assert "sk-secret" not in repr(model)
    assert "sk-secret" not in str(vars(model))
    assert seen["body"]["temperature"] == 0.5
    assert seen["body"]["logprobs"] == 20
    assert generation.text == " ok"
    assert generation.token_logprob.tolist() == [-0.1]


@pytest.fixture
def served_model(llama_server):
    # top_k=0, min_p=0: the server then samples from the plain tempered distribution.
    return OpenAICompatibleModel(
        llama_server,
        "smollm2-135m",
        top_logprobs=10,
        vocab_size=SMOLLM2_VOCABULARY,
        sampling_params={"top_k": 0, "min_p": 0.0},
    )


@pytest.mark.slow
def test_server_generation_reports_estimated_entropies(served_model):
    generations = served_model.generate(
        [TEXT_PROMPT, CHAT_PROMPT], max_new_tokens=10, temperature=0.7, seed=5
    )
    for generation in generations:
        assert generation.text
        assert generation.length > 0
        assert generation.entropy_is_estimate
        assert generation.entropy_tail_bound.shape == (generation.length,)
        assert np.all(generation.entropy_tail_bound >= 0)
        assert np.all(np.isfinite(generation.token_entropy))
        assert np.all(generation.token_entropy >= 0)
        assert np.all(generation.sampled_entropy >= 0)
        assert np.all(generation.token_logprob <= 0)
    again = served_model.generate(
        [TEXT_PROMPT, CHAT_PROMPT], max_new_tokens=10, temperature=0.7, seed=5
    )
    assert [g.text for g in again] == [g.text for g in generations]
    [greedy] = served_model.generate([CHAT_PROMPT], max_new_tokens=5, temperature=0)
    assert np.all(greedy.sampled_entropy == 0)


def tokens_within_common_prefix(text, other, llamacpp_model, token_ids):
    """How many leading tokens of ``token_ids`` (giving ``text``) also start ``other``."""
    common = 0
    while common < min(len(text), len(other)) and text[common] == other[common]:
        common += 1
    for count in range(len(token_ids), -1, -1):
        if len(llamacpp_model._detokenize(token_ids[:count])) <= common:
            return count
    return 0


@pytest.mark.slow
def test_server_interval_contains_the_full_vocabulary_entropy(served_model, llamacpp_model):
    for prompt in (TEXT_PROMPT, CHAT_PROMPT):
        [served] = served_model.generate([prompt], max_new_tokens=12, temperature=0)
        [local] = llamacpp_model.generate([prompt], max_new_tokens=12, temperature=0)
        # The server's llama.cpp context rounds slightly differently, so greedy paths may part
        # at a near tie; each position is comparable while the earlier tokens agree.
        n = tokens_within_common_prefix(local.text, served.text, llamacpp_model, local.token_ids)
        assert n >= 3
        tolerance = 1e-2
        assert np.all(served.token_entropy[:n] <= local.token_entropy[:n] + tolerance)
        upper = served.token_entropy + served.entropy_tail_bound
        assert np.all(local.token_entropy[:n] <= upper[:n] + tolerance)
        np.testing.assert_allclose(served.token_logprob[:n], local.token_logprob[:n], atol=1e-2)


@pytest.mark.slow
def test_server_scoring_is_faithful_or_refused_clearly(served_model, llamacpp_model):
    with pytest.raises(ScoringUnsupportedError, match="chat prompts cannot be scored"):
        served_model.score(CHAT_PROMPT, ["Apples."])
    continuations = [" Paris.", " a purple banana."]
    try:
        scores = served_model.score(TEXT_PROMPT, continuations)
    except ScoringUnsupportedError as error:
        # llama-cpp-python shifts echoed log-probabilities by one token for models without
        # a BOS token (SmolLM2); the check must catch that rather than return wrong numbers.
        message = str(error)
    else:
        message = "scored"
        np.testing.assert_allclose(
            scores, llamacpp_model.score(TEXT_PROMPT, continuations), atol=0.05
        )
    assert message == "scored" or "disagree with its generation" in message


class DelayedServer:
    """A local OpenAI-style completions server answering each request after a fixed delay.

    It records every request body and the most requests it held in flight at once. Each
    choice's text is the prompt itself (with the choice index), so tests can check order.
    """

    def __init__(self, delay_s=0.2, honour_n=True):
        self.delay_s = delay_s
        self.honour_n = honour_n
        self.bodies = []
        self.in_flight = 0
        self.max_in_flight = 0
        lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    server.bodies.append(body)
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                # Later prompts answer sooner, so answers arrive out of order.
                time.sleep(server.delay_s * (1.0 if "late" in body["prompt"] else 0.5))
                samples = body.get("n", 1) if server.honour_n else 1
                choices = [
                    {
                        "index": index,
                        "text": f"{body['prompt']}#{index}",
                        "finish_reason": "stop",
                        "logprobs": {"token_logprobs": [-0.5], "top_logprobs": [{"a": -0.5}]},
                    }
                    for index in reversed(range(samples))
                ]
                payload = json.dumps({"choices": choices}).encode()
                with lock:
                    server.in_flight -= 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"

    def __enter__(self):
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


def test_a_batch_is_sent_concurrently_and_returned_in_prompt_order():
    prompts = [f"prompt {i} {'late' if i < 4 else 'early'}" for i in range(8)]
    with DelayedServer() as server:
        model = OpenAICompatibleModel(server.url, max_concurrency=8)
        generations = model.generate(prompts, max_new_tokens=4, seed=1)
    assert [g.text for g in generations] == [f"{p}#0" for p in prompts]
    assert len(server.bodies) == 8
    assert server.max_in_flight == 8
    assert len({body["seed"] for body in server.bodies}) == 8


def test_concurrency_is_bounded():
    with DelayedServer(delay_s=0.05) as server:
        model = OpenAICompatibleModel(server.url, max_concurrency=2)
        model.generate([f"p{i}" for i in range(6)], max_new_tokens=4)
    assert server.max_in_flight <= 2
    with pytest.raises(ValueError, match="max_concurrency"):
        OpenAICompatibleModel(server.url, max_concurrency=0)


def test_samples_of_one_prompt_are_one_request_with_n():
    with DelayedServer(delay_s=0.01) as server:
        model = OpenAICompatibleModel(server.url)
        generations = model.generate(["same"] * 10 + ["other"], max_new_tokens=4, seed=2)
    assert [g.text for g in generations] == [f"same#{i}" for i in range(10)] + ["other#0"]
    same_requests = [body for body in server.bodies if body["prompt"] == "same"]
    assert len(same_requests) == 1
    assert same_requests[0]["n"] == 10
    assert all("n" not in body for body in server.bodies if body["prompt"] == "other")


def test_a_server_that_ignores_n_gets_one_request_per_sample():
    with DelayedServer(delay_s=0.01, honour_n=False) as server:
        model = OpenAICompatibleModel(server.url)
        generations = model.generate(["same"] * 4, max_new_tokens=4, temperature=0.7)
        assert len(generations) == 4
        assert all(g.text.startswith("same#") for g in generations)
        assert len(server.bodies) == 1 + 3
        assert not model.use_n
        server.bodies.clear()
        model.generate(["same"] * 3, max_new_tokens=4)
        assert len(server.bodies) == 3
        assert all("n" not in body for body in server.bodies)
