"""Fixtures of the scenario tests: a small deterministic language model for the runner's
control flow (the real model is exercised by test_shipped_scenarios.py)."""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence

import numpy as np
import pytest

from valuegym.lm.base import Generation, LanguageModel, Prompt

WORDS = ("yes", "no", "maybe", "later", "thanks", "sorry", "sure", "busy")


def _prompt_key(prompt: Prompt) -> int:
    text = prompt if isinstance(prompt, str) else "".join(m["content"] for m in prompt)
    return zlib.crc32(text.encode())


class FakeModel(LanguageModel):
    """Words drawn from a softmax over :data:`WORDS` seeded by (seed, prompt, position).

    Its per-token distributions are exact, so entropies are known: at temperature 1 the
    distribution is uniform over the words (entropy log 8).
    """

    name = "fake:words"
    words = WORDS

    def __init__(self) -> None:
        self.generate_calls = 0
        self.prompts_seen: list[Prompt] = []

    def _generate(
        self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation
    ) -> list[Generation]:
        self.generate_calls += 1
        self.prompts_seen.extend(prompts)
        generations = []
        for index, (prompt, temp) in enumerate(zip(prompts, temperatures, strict=True)):
            if seed is None or isinstance(seed, int):
                entropy = [seed or 0, _prompt_key(prompt), index]
            else:  # one SeedSequence per prompt (common random numbers across prompts)
                entropy = [int(seed[index].generate_state(1)[0]), _prompt_key(prompt)]
            rng = np.random.default_rng(entropy)
            ids = tuple(int(i) for i in rng.integers(0, len(WORDS), max_new_tokens))
            n = len(ids)
            generations.append(
                Generation(
                    text=" ".join(WORDS[i] for i in ids),
                    token_ids=ids,
                    token_entropy=np.full(n, np.log(len(WORDS))),
                    sampled_entropy=np.full(n, np.log(len(WORDS)) if temp > 0 else 0.0),
                    token_logprob=np.full(n, -np.log(len(WORDS))),
                    finish_reason="length",
                )
            )
        return generations

    def _score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        return np.array([-np.log(len(WORDS)) * max(1, len(c.split())) for c in continuations])


@pytest.fixture
def fake_model() -> FakeModel:
    """A fresh :class:`FakeModel`."""
    return FakeModel()


STATED_WORDS = ("calm", "fine", "ok", "sure", "busy", "tired", "tense", "stressed")
_STRESS_TEXT = re.compile(r"\(stress (\d+\.\d+)/1\)")


def stated_stress(prompt: Prompt) -> float:
    """The stress a prompt states (``describe_stress``'s number), 0 when it states none."""
    text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
    match = _STRESS_TEXT.search(text)
    return float(match.group(1)) if match else 0.0


class StatedStressModel(LanguageModel):
    """A language model whose next-token distribution depends on the stated stress, known exactly.

    Every token is drawn independently from ``softmax(beta * s * z / T)`` over
    :data:`STATED_WORDS`, with ``s`` the stress the prompt states, ``z`` evenly spaced in
    ``[-1, 1]`` and ``T`` the sampling temperature; it never ends early. So the entropy of what
    it says, summed over ``n`` tokens, is exactly ``n * H(softmax(beta * s * z / T))``:
    :meth:`sequence_entropy` gives the truth a replay must recover. With ``ignores_state``
    the distribution is the ``s = 0`` one whatever the prompt says.
    """

    name = "test:stated-stress"

    def __init__(self, beta: float = 3.0, *, ignores_state: bool = False) -> None:
        self.beta = beta
        self.ignores_state = ignores_state
        self.z = np.linspace(-1.0, 1.0, len(STATED_WORDS))

    def logits(self, prompt: Prompt) -> np.ndarray:
        stress = 0.0 if self.ignores_state else stated_stress(prompt)
        return self.beta * stress * self.z

    def sequence_entropy(self, stress: float, temperature: float, n_tokens: int) -> float:
        """The exact sampled-distribution entropy of ``n_tokens`` tokens (nats)."""
        stress = 0.0 if self.ignores_state else stress
        scaled = self.beta * stress * self.z / temperature
        p = np.exp(scaled - scaled.max())
        p /= p.sum()
        return float(-n_tokens * np.sum(p * np.log(p)))

    def _generate(
        self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation
    ) -> list[Generation]:
        from valuegym.lm.sampling import TokenSampler

        sampler = TokenSampler(temperatures, seed, truncation)
        generations = []
        for index, prompt in enumerate(prompts):
            logits = self.logits(prompt)[None, :]
            draws = [sampler.draw(logits, (index,)) for _ in range(max_new_tokens)]
            ids = tuple(int(d.token_ids[0]) for d in draws)
            generations.append(
                Generation(
                    text=" ".join(STATED_WORDS[i] for i in ids),
                    token_ids=ids,
                    token_entropy=np.array([d.token_entropy[0] for d in draws]),
                    sampled_entropy=np.array([d.sampled_entropy[0] for d in draws]),
                    token_logprob=np.array([d.token_logprob[0] for d in draws]),
                    finish_reason="length",
                )
            )
        return generations

    def _score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        logits = self.logits(prompt)
        log_p = logits - logits.max()
        log_p -= np.log(np.exp(log_p).sum())
        unknown = math.log(1e-3)
        scores = []
        for text in continuations:
            words = text.lower().strip(".").split()
            scores.append(
                sum(log_p[STATED_WORDS.index(w)] if w in STATED_WORDS else unknown for w in words)
            )
        return np.array(scores)
