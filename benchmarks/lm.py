"""Speed of the language-model backends against their bare engines, measured in the same run.

Every comparison generates greedily from the same chat prompts with the embedded default
model (SmolLM2-135M); rates are generated tokens per second, best of ``--repeats``. Run
``python benchmarks/lm.py`` (``--help`` for the options).

Goals (issue 5):
- ``llamacpp`` backend with per-token entropy: >= 0.9x the tokens/s of bare llama-cpp-python
  generation (``Llama.generate``, greedy) of the same tokens.
- ``transformers`` backend with per-token entropy: >= 0.93x bare ``model.generate`` on the
  same prompts and batch.
- ``transformers`` backend, 8 prompts in one batch: >= 4x the tokens/s of the same 8 one at
  a time.
- Entailment clustering of K=10 samples (issue 13): at most one judge call per pair of distinct
  samples, batched; judge calls and seconds per set are printed.

Goals (issue 14), timings interleaved and the median kept:
- ``llamacpp``, 8 different short prompts, ~48 new tokens each, in one ``generate`` call:
  >= 1.6x the generated tokens/s of the same prompts one call at a time.
- ``llamacpp``, 10 samples of one ~600-token prompt in one call: seconds per generated token
  (prompt reads included) <= 0.3x that of a single sample.
- ``openai`` against a local server answering each request after a fixed delay: 8 prompts
  finish in <= 1.5x one request's time, and K=10 samples are one request with ``n``.
- ``llamacpp`` on shared cores: a generation beside a CPU-bound process, default threads
  (those other processes leave free) against every core (the backend before issue 14).
- LM-agent step overhead (prompt building, measurement, records) <= 0.2x the backend's own
  time for the same tokens, at 8 agents: a Commons scenario with 8 LM agents (all speak each
  step, one batched ``generate``) run by ``run_scenario``; overhead is the run's wall time less
  model loading, the seconds in the model and in the env (all from the run's timing).

Goal (issue 23):
- The listener appraisal (semantic repetition, valence judge, listener surprisal) on the
  shipped ``conversation_hammered`` scenario: the text-mode step's model time (the language
  model's seconds plus the appraisal's own: clusterer and judge) with appraisal <= 1.5x the
  language model's seconds of the same episodes without appraisal; the wall time of the
  episodes (less model loading) is printed beside it.

Goal (issue 24):
- Steered generation (one steering vector added at 3 blocks, every prompt steered) costs
  <= 1.2x plain generation of the same prompts (s/token), for ``llamacpp`` (control vectors)
  and ``transformers`` (forward hooks); 8 chat prompts in one call, timings interleaved and
  the median kept.

Goal (issue 22):
- A replay with its manipulation check (the low and high stated stress cells' samples, each
  scored under both prompts) costs <= 1.5x the same replay without it: same contexts, same
  grid, the check on and off, timings interleaved and the median kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from valuegym.lm.base import LanguageModel
from valuegym.lm.huggingface import TransformersModel, converted_gguf_folder
from valuegym.lm.llamacpp import LlamaCppModel
from valuegym.lm.models import DEFAULT_MODEL, embedded_model_path

TOPICS = ["apples", "rivers", "trains", "the moon", "friendship", "winter", "bees", "music"]


@dataclass(frozen=True)
class Args:
    """Benchmark options."""

    llamacpp_tokens: int = 64
    """new tokens per llama.cpp generation"""
    transformers_tokens: int = 24
    """new tokens per transformers generation"""
    batch_size: int = 8
    """prompts in the batched transformers comparison"""
    threads: int = 0
    """CPU threads of llama.cpp (0: every core)"""
    torch_threads: int = 0
    """CPU threads of torch (0: torch's default); 1 is steadier on a busy shared machine"""
    repeats: int = 2
    """best of this many timings is kept (others may share the machine)"""
    throughput_repeats: int = 5
    """timings per case of the issue-14 comparisons (the median is kept)"""
    agent_steps: int = 6
    """steps of the 8-agent overhead scenario"""
    appraisal_episodes: int = 2
    """episodes of the hammered scenario per timing of the appraisal comparison"""
    parts: str = "all"
    """comma-separated: bare, transformers, batch, samples, openai, shared, judge, agents,
    replay, check, appraisal, steer (or all)"""


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(
            f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default
        )
    return Args(**vars(parser.parse_args()))


def chat_prompt(topic: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Write a long, detailed story about {topic}."}]


def best_rates(runs: list[Callable[[], int]], repeats: int) -> list[float]:
    """Highest tokens/s of each run (a function returning the tokens it generated).

    The runs take turns, so a change in the machine's load affects them alike.
    """
    rates: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, measured in zip(runs, rates, strict=True):
            start = time.perf_counter()
            tokens = run()
            measured.append(tokens / (time.perf_counter() - start))
    return [max(measured) for measured in rates]


def compare_llamacpp(args: Args) -> tuple[float, float, bool]:
    """Backend vs bare ``Llama.generate`` tokens/s for one prompt, and whether tokens agree."""
    from llama_cpp import Llama

    backend = LlamaCppModel(DEFAULT_MODEL, n_threads=args.threads or None)
    bare = Llama(
        model_path=str(embedded_model_path(DEFAULT_MODEL)),
        n_ctx=2048,
        n_threads=backend.n_threads,
        n_threads_batch=backend.n_threads,
        verbose=False,
    )
    prompt = chat_prompt(TOPICS[0])
    prompt_ids = backend._encode_prompt(prompt, "prompt")
    [reference] = backend.generate([prompt], max_new_tokens=args.llamacpp_tokens, temperature=0)

    def run_backend() -> int:
        [generation] = backend.generate(
            [prompt], max_new_tokens=args.llamacpp_tokens, temperature=0
        )
        return generation.length

    bare_tokens: list[int] = []

    def run_bare() -> int:
        bare_tokens.clear()
        bare.reset()  # no prompt cache: the backend reads the prompt every call too
        for token in bare.generate(prompt_ids, temp=0.0, top_k=1, reset=True):
            bare_tokens.append(token)
            if len(bare_tokens) == reference.length:
                break
        return len(bare_tokens)

    rate_backend, rate_bare = best_rates([run_backend, run_bare], args.repeats)
    same = tuple(bare_tokens) == reference.token_ids
    backend.close()
    bare.close()
    return rate_backend, rate_bare, same


def compare_transformers(args: Args) -> tuple[float, float, float]:
    """Backend batch, bare ``model.generate`` batch, and backend one-at-a-time tokens/s."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    backend = TransformersModel(DEFAULT_MODEL, device="cpu")
    folder = converted_gguf_folder(embedded_model_path(DEFAULT_MODEL))
    tokenizer = AutoTokenizer.from_pretrained(folder, padding_side="left")
    bare = AutoModelForCausalLM.from_pretrained(folder, dtype="float32").eval()
    prompts = [chat_prompt(TOPICS[i % len(TOPICS)]) for i in range(args.batch_size)]
    texts = [
        tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
        for p in prompts
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    eos = bare.generation_config.eos_token_id

    def run_backend_batch() -> int:
        generations = backend.generate(
            prompts, max_new_tokens=args.transformers_tokens, temperature=0
        )
        return sum(g.length for g in generations)

    def run_backend_single() -> int:
        return sum(
            backend.generate([p], max_new_tokens=args.transformers_tokens, temperature=0)[0].length
            for p in prompts
        )

    def run_bare() -> int:
        with torch.inference_mode():
            output = bare.generate(
                **inputs, do_sample=False, max_new_tokens=args.transformers_tokens
            )
        generated = output[:, inputs["input_ids"].shape[1] :].tolist()
        # Count up to and including the first end token, as the backend does.
        return sum(row.index(eos) + 1 if eos in row else len(row) for row in generated)

    rate_batch, rate_bare, rate_single = best_rates(
        [run_backend_batch, run_bare, run_backend_single], args.repeats
    )
    return rate_batch, rate_bare, rate_single


def median_seconds(runs: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median wall-clock seconds of each run; the runs take turns (interleaved)."""
    seconds: list[list[float]] = [[] for _ in runs]
    for _ in range(repeats):
        for run, measured in zip(runs, seconds, strict=True):
            start = time.perf_counter()
            run()
            measured.append(time.perf_counter() - start)
    return [statistics.median(measured) for measured in seconds]


def compare_batch(args: Args) -> tuple[float, float, int]:
    """Tokens/s of llamacpp: 8 short prompts in one call, and one call at a time.

    Returns the two rates and how many prompts' greedy tokens agree between the modes.
    """
    model = LlamaCppModel(DEFAULT_MODEL, n_threads=args.threads or None)
    prompts = [chat_prompt(topic) for topic in TOPICS]
    tokens = {"batch": 0, "single": 0}
    outputs: dict[str, list] = {}

    def run_batch() -> None:
        outputs["batch"] = model.generate(prompts, max_new_tokens=48, temperature=0)
        tokens["batch"] = sum(g.length for g in outputs["batch"])

    def run_single() -> None:
        outputs["single"] = [
            model.generate([p], max_new_tokens=48, temperature=0)[0] for p in prompts
        ]
        tokens["single"] = sum(g.length for g in outputs["single"])

    batch_s, single_s = median_seconds([run_batch, run_single], args.throughput_repeats)
    same = sum(
        a.token_ids == b.token_ids for a, b in zip(outputs["batch"], outputs["single"], strict=True)
    )
    model.close()
    return tokens["batch"] / batch_s, tokens["single"] / single_s, same


def compare_samples(args: Args) -> tuple[float, float, int]:
    """Seconds per generated token of llamacpp: 10 samples of a long prompt, and 1 sample."""
    model = LlamaCppModel(DEFAULT_MODEL, n_threads=args.threads or None)
    history = " ".join(
        f"On day {day} the orchard had {day % 7} apples and the agents talked about {topic}."
        for day, topic in enumerate(TOPICS * 4)
    )
    prompt = [{"role": "user", "content": f"{history} Summarise what happened."}]
    prompt_tokens = len(model._encode_prompt(prompt, "prompt"))
    counts = {"ten": 0, "one": 0}

    def run_ten() -> None:
        generations = model.generate([prompt] * 10, max_new_tokens=48, seed=1)
        counts["ten"] = sum(g.length for g in generations)

    def run_one() -> None:
        counts["one"] = model.generate([prompt], max_new_tokens=48, seed=1)[0].length

    ten_s, one_s = median_seconds([run_ten, run_one], args.throughput_repeats)
    model.close()
    return ten_s / counts["ten"], one_s / counts["one"], prompt_tokens


class DelayedServer:
    """A local OpenAI-style completions server answering each request after a fixed delay."""

    def __init__(self, delay_s: float) -> None:
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                time.sleep(delay_s)
                choice = {
                    "text": " ok",
                    "finish_reason": "stop",
                    "logprobs": {"token_logprobs": [-0.1], "top_logprobs": [{" ok": -0.1}]},
                }
                choices = [dict(choice, index=i) for i in range(body.get("n", 1))]
                payload = json.dumps({"choices": choices}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_port}/v1"


def compare_openai(args: Args) -> tuple[float, float, int, int]:
    """Seconds of 8 prompts and of one request; requests and ``n`` of a K=10 call."""
    from valuegym.lm.openai_http import OpenAICompatibleModel

    server = DelayedServer(delay_s=0.2)
    model = OpenAICompatibleModel(server.url, "test")
    prompts = [f"Say something about {topic}." for topic in TOPICS]
    eight_s, one_s = median_seconds(
        [
            lambda: model.generate(prompts, max_new_tokens=8),
            lambda: model.generate(prompts[:1], max_new_tokens=8),
        ],
        args.throughput_repeats,
    )
    server.requests.clear()
    model.generate([prompts[0]] * 10, max_new_tokens=8, seed=3)
    n_requests, n = len(server.requests), server.requests[0].get("n", 1)
    server.http.shutdown()
    return eight_s, one_s, n_requests, n


def compare_shared_cores(args: Args) -> dict[str, float]:
    """Seconds of one generation beside a CPU-bound process and alone, per thread policy.

    ``every core`` is the backend before issue 14 (all cores, whatever else runs);
    ``free cores`` is the default now (``n_threads=None``).
    """
    cores = len(os.sched_getaffinity(0))
    every = LlamaCppModel(DEFAULT_MODEL, n_threads=cores)
    free = LlamaCppModel(DEFAULT_MODEL)
    prompt = [chat_prompt(TOPICS[0])]
    runs = [
        lambda: every.generate(prompt, max_new_tokens=48, temperature=0),
        lambda: free.generate(prompt, max_new_tokens=48, temperature=0),
    ]
    alone_every, alone_free = median_seconds(runs, args.throughput_repeats)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        loaded_every, loaded_free = median_seconds(runs, args.throughput_repeats)
    finally:
        busy.kill()
        busy.wait()
    every.close()
    free.close()
    return {
        "alone_every": alone_every,
        "alone_free": alone_free,
        "loaded_every": loaded_every,
        "loaded_free": loaded_free,
    }


def agent_overhead(args: Args) -> dict[str, float]:
    """Seconds of an 8-LM-agent run: wall (less loading), in the model, in measurement, env.

    The medians of ``throughput_repeats`` runs; each run loads its model (timed and left out).
    """
    import tempfile

    from valuegym.lm import load_language_model
    from valuegym.runs.runner import run_scenario
    from valuegym.scenarios.validation import validate_scenario

    scenario = validate_scenario(
        {
            "name": "agent-overhead",
            "seed": 0,
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [{"id": "villager", "kind": "lm", "count": 8, "lm": {"max_new_tokens": 24}}],
            "episodes": 1,
            "max_steps": args.agent_steps,
            "measure": {"utterances": True},
        }
    )
    loading: list[float] = []

    def load(*arguments: object, **options: object) -> object:
        start = time.perf_counter()
        model = load_language_model(*arguments, **options)
        loading.append(time.perf_counter() - start)
        return model

    measured: dict[str, list[float]] = {"wall": [], "model": [], "measure": [], "env": []}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.throughput_repeats):
            start = time.perf_counter()
            result = run_scenario(scenario, f"{scratch}/{repeat}", progress=False, load_model=load)
            wall = time.perf_counter() - start - loading[-1]
            total = result.folder.read_summary()["timing"]["total"]
            measured["wall"].append(wall)
            measured["model"].append(total["model_seconds"])
            measured["measure"].append(total["measure_seconds"])
            measured["env"].append(total["env_seconds"])
            measured.setdefault("overhead", []).append(
                (wall - total["model_seconds"] - total["env_seconds"]) / total["model_seconds"]
            )
            measured.setdefault("tokens", []).append(total["generated_tokens"])
    return {key: statistics.median(values) for key, values in measured.items()}


def replay_cost(args: Args) -> dict[str, float]:
    """Seconds per generated token of a replay against plain batched generation of its prompts.

    A small quickstart run is recorded, then replayed under prompt stress x temperature (K=2
    per cell, every context); the peer generates, for each context, the same number of
    sequences of its recorded prompt in one call, at the cells' temperatures and with the
    agents' truncation (top-p, min-p), so that both sides sample alike. Loading is left out of
    both.
    """
    import json
    import tempfile

    from valuegym.lm import load_language_model
    from valuegym.lm.sampling import Truncation
    from valuegym.records import RunFolder
    from valuegym.runs.replay import replay_run
    from valuegym.runs.runner import run_scenario
    from valuegym.scenarios.schema import CounterfactualSpec
    from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

    scenario = scenario_with_overrides(
        load_scenario("quickstart"),
        {"episodes": 1, "max_steps": 6, "measure.counterfactual": None, "design": None},
    )
    # Generation only: the manipulation check's scoring is extra work a plain peer has not.
    grid = CounterfactualSpec(
        prompt_stress=[0.1, 0.9],
        temperature=[0.7, 1.0],
        samples=2,
        placebo=False,
        manipulation_check=False,
    )
    lm = scenario.agents[0].lm
    assert lm is not None
    truncation = Truncation(top_p=lm.top_p, top_k=lm.top_k, min_p=lm.min_p)
    per_context = [
        temperature
        for _ in grid.prompt_stress
        for temperature in grid.temperature
        for _ in range(grid.samples)
    ]
    model = load_language_model("llamacpp", DEFAULT_MODEL)
    ratios, replay_rates, plain_rates = [], [], []
    with tempfile.TemporaryDirectory() as scratch:
        run_scenario(scenario, scratch, progress=False, load_model=lambda *a, **o: _Unclosed(model))
        rows = RunFolder(Path(scratch)).read("utterances").to_pylist()
        for repeat in range(args.throughput_repeats):
            start = time.perf_counter()
            replay_run(
                scratch,
                grid,
                overwrite=True,
                progress=False,
                load_model=lambda *a, **o: _Unclosed(model),
            )
            replay_seconds = time.perf_counter() - start
            replayed = RunFolder(Path(scratch)).read("replay")
            replay_tokens = sum(replayed.column("length").to_pylist())
            for path in Path(scratch, "records").glob("replay-*"):
                path.unlink()
            start = time.perf_counter()
            plain_tokens = 0
            for index, row in enumerate(rows):
                prompt = json.loads(row["prompt"])
                outputs = model.generate(
                    [prompt] * len(per_context),
                    max_new_tokens=lm.max_new_tokens,
                    temperature=per_context,
                    truncation=truncation,
                    seed=repeat * 100 + index,
                )
                plain_tokens += sum(output.length for output in outputs)
            plain_seconds = time.perf_counter() - start
            replay_rates.append(replay_seconds / replay_tokens)
            plain_rates.append(plain_seconds / plain_tokens)
            ratios.append(replay_rates[-1] / plain_rates[-1])
    model.close()
    return {
        "ratio": statistics.median(ratios),
        "replay": statistics.median(replay_rates),
        "plain": statistics.median(plain_rates),
    }


def manipulation_check_cost(args: Args) -> dict[str, float]:
    """Seconds of a replay with its manipulation check and without it (medians), and its size.

    A quickstart run (1 episode, 8 steps, its four entries taking turns) is recorded once, then
    replayed alternately with ``manipulation_check`` on and off under the same grid (stated
    stress 0.1 or 0.9 x temperature 0.7 or 1.0, placebo cells, K=2, 2 contexts per entry).
    Loading is left out of both.
    """
    import tempfile

    from valuegym.lm import load_language_model
    from valuegym.records import RunFolder
    from valuegym.runs.replay import replay_run
    from valuegym.runs.runner import run_scenario
    from valuegym.scenarios.schema import CounterfactualSpec
    from valuegym.scenarios.validation import load_scenario, scenario_with_overrides

    scenario = scenario_with_overrides(
        load_scenario("quickstart"),
        {"episodes": 1, "max_steps": 8, "measure.counterfactual": None, "design": None},
    )
    with_check = CounterfactualSpec(
        prompt_stress=[0.1, 0.9], temperature=[0.7, 1.0], samples=2, per_entry=2
    )
    without = with_check.model_copy(update={"manipulation_check": False})
    # Loaded once per set of options, with the options the replay asks for (exact_scoring).
    models: dict[tuple[tuple[str, object], ...], LanguageModel] = {}

    def load_model(backend: str, name: str, **options: object) -> _Unclosed:
        key = tuple(sorted(options.items()))
        if key not in models:
            models[key] = load_language_model(backend, name, **options)
        return _Unclosed(models[key])

    load = {"load_model": load_model}
    load_model("llamacpp", DEFAULT_MODEL, exact_scoring=False)  # the replay's, loaded untimed
    size: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        run_scenario(scenario, scratch, progress=False, **load)

        def replay(grid: CounterfactualSpec) -> None:
            result = replay_run(scratch, grid, overwrite=True, progress=False, **load)
            for path in Path(scratch, "records").glob("replay-*"):
                path.unlink()  # the next replay regenerates every episode
            size["contexts"] = result.contexts
            if grid.manipulation_check:
                checks = RunFolder(Path(scratch)).read("manipulation")
                size["scored"] = checks.num_rows
                size["scored_tokens"] = sum(checks.column("length").to_pylist())

        on_s, off_s = median_seconds(
            [lambda: replay(with_check), lambda: replay(without)], args.throughput_repeats
        )
    for model in models.values():
        model.close()
    return {"on": on_s, "off": off_s, **size}


class _Unclosed:
    """A model that a replay may close without closing the benchmark's shared one."""

    def __init__(self, model: object) -> None:
        self._model = model

    def __getattr__(self, name: str) -> object:
        return getattr(self._model, name)

    def close(self) -> None:
        pass


def appraisal_cost(args: Args) -> dict[str, float]:
    """Seconds of the hammered scenario's episodes with and without listener appraisal.

    Timings interleaved, ``throughput_repeats`` of each, medians kept. Model loading is timed
    and left out; the intervention is left out of both (it is not a step).
    """
    import tempfile

    from valuegym.lm import load_language_model
    from valuegym.runs.runner import run_scenario
    from valuegym.scenarios.catalog import resolve_scenario_path
    from valuegym.scenarios.loader import load_yaml_file
    from valuegym.scenarios.validation import validate_scenario

    data = load_yaml_file(resolve_scenario_path("conversation_hammered"))
    data["episodes"] = args.appraisal_episodes
    data["measure"] = {}
    with_appraisal = validate_scenario(data)
    without = validate_scenario({k: v for k, v in data.items() if k != "appraisal"})
    loading: list[float] = []

    def load(*arguments: object, **options: object) -> object:
        start = time.perf_counter()
        model = load_language_model(*arguments, **options)
        loading.append(time.perf_counter() - start)
        return model

    measured: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.throughput_repeats):
            for label, scenario in (("on", with_appraisal), ("off", without)):
                start = time.perf_counter()
                result = run_scenario(
                    scenario, f"{scratch}/{label}{repeat}", progress=False, load_model=load
                )
                wall = time.perf_counter() - start - loading[-1]
                timing = result.folder.read_summary()["timing"]
                total = timing["total"]
                appraisal = timing.get("appraisal", {})
                own = appraisal.get("measure_seconds", 0.0)  # clusterer and judge
                measured.setdefault(f"{label}_wall", []).append(wall)
                measured.setdefault(f"{label}_model", []).append(total["model_seconds"] + own)
                measured.setdefault(f"{label}_scored", []).append(appraisal.get("calls", 0))
    return {key: statistics.median(values) for key, values in measured.items()}


def steering_cost(args: Args) -> dict[str, tuple[float, float]]:
    """Per backend, median seconds per generated token of steered and of plain generation.

    A seeded random unit direction, 4 units long, at blocks 10, 15 and 20 (of 30), for all 8
    prompts of the call; greedy, ``transformers_tokens`` new tokens (both backends alike).
    """
    import numpy as np

    from valuegym.lm.steering import Steering

    direction = np.random.default_rng(24).standard_normal(576).astype(np.float32)
    steering = Steering(
        {block: 4.0 * direction / np.linalg.norm(direction) for block in (10, 15, 20)}
    )
    prompts = [chat_prompt(topic) for topic in TOPICS]
    costs: dict[str, tuple[float, float]] = {}
    for name, model in (
        ("llamacpp", LlamaCppModel(DEFAULT_MODEL, n_threads=args.threads or None)),
        ("transformers", TransformersModel(DEFAULT_MODEL, device="cpu")),
    ):
        measured: dict[str, list[float]] = {"steered": [], "plain": []}
        for _ in range(args.throughput_repeats):
            for label, options in (("steered", {"steering": steering}), ("plain", {})):
                start = time.perf_counter()
                generations = model.generate(
                    prompts, max_new_tokens=args.transformers_tokens, temperature=0, **options
                )
                seconds = time.perf_counter() - start
                measured[label].append(seconds / sum(g.length for g in generations))
        costs[name] = (statistics.median(measured["steered"]), statistics.median(measured["plain"]))
        model.close()
    return costs


def report(name: str, ratio: float, goal: float, detail: str) -> None:
    verdict = "ok" if ratio >= goal else "BELOW GOAL"
    print(f"{name:<58} {ratio:6.2f}x (goal >= {goal}x, {verdict})  {detail}")


def report_at_most(name: str, ratio: float, goal: float, detail: str) -> None:
    verdict = "ok" if ratio <= goal else "ABOVE GOAL"
    print(f"{name:<58} {ratio:6.2f}x (goal <= {goal}x, {verdict})  {detail}")


def main() -> None:
    args = parse_args()
    parts = set(args.parts.split(","))
    if "all" in parts:
        parts = {
            "bare",
            "transformers",
            "batch",
            "samples",
            "openai",
            "shared",
            "judge",
            "agents",
            "replay",
            "check",
            "appraisal",
            "steer",
        }
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    if "bare" in parts:
        backend, bare, same = compare_llamacpp(args)
        report(
            "llamacpp backend with entropy / bare Llama.generate",
            backend / bare,
            0.9,
            f"{backend:.1f} vs {bare:.1f} tokens/s, same tokens: {same}",
        )
    if "transformers" in parts:
        batch, bare, single = compare_transformers(args)
        report(
            f"transformers backend / bare model.generate, batch {args.batch_size}",
            batch / bare,
            0.93,
            f"{batch:.1f} vs {bare:.1f} tokens/s",
        )
        report(
            f"transformers backend, batch {args.batch_size} / one at a time",
            batch / single,
            4,
            f"{batch:.1f} vs {single:.1f} tokens/s",
        )
    if "batch" in parts:
        together, alone, same = compare_batch(args)
        report(
            "llamacpp 8 short prompts, one call / one at a time",
            together / alone,
            1.6,
            f"{together:.1f} vs {alone:.1f} tokens/s, same greedy tokens: {same}/8",
        )
    if "samples" in parts:
        ten, one, prompt_tokens = compare_samples(args)
        report_at_most(
            f"llamacpp 10 samples of a {prompt_tokens}-token prompt, s/token / 1 sample",
            ten / one,
            0.3,
            f"{ten * 1000:.1f} vs {one * 1000:.1f} ms per generated token",
        )
    if "openai" in parts:
        eight_s, one_s, n_requests, n = compare_openai(args)
        report_at_most(
            "openai 8 prompts / one request, 0.2 s server delay",
            eight_s / one_s,
            1.5,
            f"{eight_s:.3f} vs {one_s:.3f} s; K=10: {n_requests} request(s), n={n}",
        )
    if "shared" in parts:
        seconds = compare_shared_cores(args)
        print(
            "llamacpp beside a CPU-bound process, every core / free cores: "
            f"{seconds['loaded_every'] / seconds['loaded_free']:.2f}x faster now  "
            f"(loaded {seconds['loaded_every']:.2f} vs {seconds['loaded_free']:.2f} s; alone "
            f"{seconds['alone_every']:.2f} vs {seconds['alone_free']:.2f} s; "
            f"slowdown under load: before {seconds['loaded_every'] / seconds['alone_every']:.2f}x,"
            f" after {seconds['loaded_free'] / seconds['alone_free']:.2f}x)"
        )
    if "judge" in parts:
        report_judge_speed(args)
    if "replay" in parts:
        costs = replay_cost(args)
        report_at_most(
            "replay s/token / plain batched generation of the same prompts",
            costs["ratio"],
            1.2,
            f"{costs['replay'] * 1000:.1f} vs {costs['plain'] * 1000:.1f} ms per generated token "
            "(2 stated stresses x 2 temperatures x K=2 per context, measurement included)",
        )
    if "check" in parts:
        cost = manipulation_check_cost(args)
        report_at_most(
            "replay with manipulation check / without (same grid, contexts)",
            cost["on"] / cost["off"],
            1.5,
            f"{cost['on']:.2f} vs {cost['off']:.2f} s for {cost['contexts']:.0f} contexts; "
            f"{cost['scored']:.0f} samples scored twice ({cost['scored_tokens']:.0f} tokens)",
        )
    if "appraisal" in parts:
        cost = appraisal_cost(args)
        report_at_most(
            "hammered text-mode step model time, appraisal on / off",
            cost["on_model"] / cost["off_model"],
            1.5,
            f"{cost['on_model']:.2f} vs {cost['off_model']:.2f} s in models "
            f"({cost['on_scored']:.0f} appraisal model calls); episodes' wall time less "
            f"loading {cost['on_wall']:.2f} vs {cost['off_wall']:.2f} s "
            f"({cost['on_wall'] / cost['off_wall']:.2f}x)",
        )
    if "steer" in parts:
        for backend, (steered, plain) in steering_cost(args).items():
            report_at_most(
                f"{backend} steered / plain generation, s/token (3 blocks)",
                steered / plain,
                1.2,
                f"{steered * 1000:.1f} vs {plain * 1000:.1f} ms per generated token, 8 prompts",
            )
    if "agents" in parts:
        seconds = agent_overhead(args)
        report_at_most(
            "LM-agent step overhead / model time, 8 agents (llamacpp)",
            seconds["overhead"],
            0.2,
            f"median of {args.throughput_repeats}: {seconds['overhead']:.4f}x; "
            f"{seconds['wall']:.2f} s wall less loading, "
            f"{seconds['model']:.2f} s in the model ({seconds['tokens']:.0f} tokens), "
            f"{seconds['measure']:.2f} s measuring, {seconds['env']:.3f} s in the env",
        )


JUDGE_PROMPTS = [
    "Can you help me carry some boxes this afternoon? Answer in one short sentence.",
    "Will you come to my party on Saturday? Answer in one short sentence.",
    "Do you agree that we should harvest fewer apples this year? Answer in one short sentence.",
]


def report_judge_speed(args: Args, n_samples: int = 10) -> None:
    """Entailment clustering of K samples per prompt, SmolLM2 as judge: judge calls and seconds.

    The goal (issue 13): at most one judgement per pair of distinct samples, K (K - 1) / 2,
    fewer through transitivity, in one judge batch per cluster.
    """
    from valuegym.measures.clustering import EntailmentClusterer
    from valuegym.measures.entailment import LanguageModelJudge

    model = LlamaCppModel(DEFAULT_MODEL, n_threads=args.threads or None)
    for index, question in enumerate(JUDGE_PROMPTS):
        prompt = [{"role": "user", "content": question}]
        samples = model.generate([prompt] * n_samples, max_new_tokens=32, seed=index)
        texts = [sample.text for sample in samples]
        clusterer = EntailmentClusterer(LanguageModelJudge(model))
        start = time.perf_counter()
        labels = clusterer.cluster(texts)
        seconds = time.perf_counter() - start
        distinct = len(set(texts))
        print(
            f"entailment clustering, set {index}: K={n_samples}, {distinct} distinct, "
            f"{labels.max() + 1} clusters, {clusterer.pair_judgements} pair judgements "
            f"(at most {distinct * (distinct - 1) // 2}) in {clusterer.judge_batches} batches, "
            f"{seconds:.1f} s"
        )
    model.close()


if __name__ == "__main__":
    main()
