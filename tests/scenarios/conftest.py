"""Fixtures of the scenario tests: a small deterministic language model for the runner's
control flow (the real model is exercised by test_shipped_scenarios.py)."""

from __future__ import annotations

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

    def generate(
        self,
        prompts: Sequence[Prompt],
        *,
        max_new_tokens: int = 64,
        temperature: float | Sequence[float] = 1.0,
        seed: int | None = None,
        stop: Sequence[str] = (),
    ) -> list[Generation]:
        self.generate_calls += 1
        self.prompts_seen.extend(prompts)
        temperatures = np.broadcast_to(np.asarray(temperature, dtype=float), (len(prompts),))
        generations = []
        for index, (prompt, temp) in enumerate(zip(prompts, temperatures, strict=True)):
            rng = np.random.default_rng([seed or 0, _prompt_key(prompt), index])
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

    def score(self, prompt: Prompt, continuations: Sequence[str]) -> np.ndarray:
        return np.array([-np.log(len(WORDS)) * max(1, len(c.split())) for c in continuations])


@pytest.fixture
def fake_model() -> FakeModel:
    """A fresh :class:`FakeModel`."""
    return FakeModel()
