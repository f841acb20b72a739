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
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for field in fields(Args):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=int, default=field.default)
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


def report(name: str, ratio: float, goal: float, detail: str) -> None:
    verdict = "ok" if ratio >= goal else "BELOW GOAL"
    print(f"{name:<58} {ratio:6.2f}x (goal >= {goal}x, {verdict})  {detail}")


def main() -> None:
    args = parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    backend, bare, same = compare_llamacpp(args)
    report(
        "llamacpp backend with entropy / bare Llama.generate",
        backend / bare,
        0.9,
        f"{backend:.1f} vs {bare:.1f} tokens/s, same tokens: {same}",
    )
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
    report_judge_speed(args)


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
    from valuegym.measures.entailment import EntailmentClusterer, LanguageModelJudge

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
