"""Where a run's time and tokens go: per phase, in the model, in measurement and in the env.

A :class:`RunTiming` gathers the :class:`~valuegym.lm.wrappers.ProfilingModel` of every model
a run loads (:func:`~valuegym.runs.population.load_lm_model` wraps each one) and the
seconds the runner spends measuring and stepping the env. The runner marks where the work
happens: ``with timing.phase("speech"):`` counts model calls towards a phase,
``with timing.measuring("speech"):`` counts the seconds of a measurement (less any model time
inside it, e.g. the scoring of mutual information), ``with timing.stepping_env():`` the env's.

Phases: ``speech`` (utterances), ``act`` (act scoring), ``semantic`` (semantic-entropy samples
and their clustering), ``information`` (mutual-information samples and cross-scoring),
``replay`` (counterfactual replay) and ``env``. Calls a model repeated after a transient
failure (a server's 429 or 5xx, a time-out, a dropped connection) are counted per phase as
``retries``, and by kind of failure in the total's ``retries_by_kind``. The timing goes to the
run summary and the report, never to the records: timings and retries differ between runs,
records must not.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from valuegym.lm.wrappers import PhaseProfile, ProfilingModel

__all__ = ["PHASES", "RunTiming"]

#: The phases a run reports, in this order (others follow, sorted).
PHASES: Final = ("speech", "act", "appraisal", "semantic", "information", "replay", "env")


class RunTiming:
    """Tokens and seconds of a run, per phase.

    Args:
        models: The run's models; the :class:`ProfilingModel` among them are counted.
        clock: Function giving seconds (replaceable in tests).
    """

    def __init__(
        self, models: Iterable[Any] = (), *, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.models: list[ProfilingModel] = []
        self.measure_seconds: defaultdict[str, float] = defaultdict(float)
        self.env_seconds = 0.0
        self._clock = clock
        self.add_models(models)

    def add_models(self, models: Iterable[Any]) -> None:
        """Count the calls of these models too (those that are :class:`ProfilingModel`)."""
        self.models.extend(model for model in models if isinstance(model, ProfilingModel))

    def _model_seconds(self) -> float:
        return sum(p.seconds for model in self.models for p in model.phases.values())

    @contextlib.contextmanager
    def phase(self, label: str) -> Iterator[None]:
        """Count the model calls made inside the ``with`` block towards ``label``."""
        with contextlib.ExitStack() as stack:
            for model in self.models:
                stack.enter_context(model.phase(label))
            yield

    @contextlib.contextmanager
    def measuring(self, label: str) -> Iterator[None]:
        """Count the block's seconds, less the model's, as measurement in ``label``."""
        start, in_model = self._clock(), self._model_seconds()
        try:
            yield
        finally:
            elapsed = self._clock() - start - (self._model_seconds() - in_model)
            self.measure_seconds[label] += max(elapsed, 0.0)

    @contextlib.contextmanager
    def stepping_env(self) -> Iterator[None]:
        """Count the block's seconds as the env's (resets and steps)."""
        start = self._clock()
        try:
            yield
        finally:
            self.env_seconds += self._clock() - start

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The timing as plain dicts, by phase, then ``total`` over the phases.

        Each has ``calls, generated_tokens, prompt_tokens_read, retries, model_seconds,
        measure_seconds, env_seconds``; the total also ``retries_by_kind`` (e.g.
        ``{"overloaded": 2, "dropped": 1}``).
        """
        model: defaultdict[str, PhaseProfile] = defaultdict(PhaseProfile)
        for wrapped in self.models:
            for label, counted in wrapped.phases.items():
                summed = model[label]
                summed.calls += counted.calls
                summed.generated_tokens += counted.generated_tokens
                summed.prompt_tokens_read += counted.prompt_tokens_read
                summed.seconds += counted.seconds
                summed.add_retries(counted.retries)
        used = set(model) | set(self.measure_seconds) | ({"env"} if self.env_seconds else set())
        labels = [label for label in PHASES if label in used] + sorted(used - set(PHASES))
        phases = {
            label: {
                "calls": model[label].calls,
                "generated_tokens": model[label].generated_tokens,
                "prompt_tokens_read": model[label].prompt_tokens_read,
                "retries": sum(model[label].retries.values()),
                "model_seconds": round(model[label].seconds, 6),
                "measure_seconds": round(self.measure_seconds.get(label, 0.0), 6),
                "env_seconds": round(self.env_seconds if label == "env" else 0.0, 6),
            }
            for label in labels
        }
        total: dict[str, Any] = {
            key: sum(values[key] for values in phases.values())
            for key in ("calls", "generated_tokens", "prompt_tokens_read", "retries")
        }
        for key in ("model_seconds", "measure_seconds", "env_seconds"):
            total[key] = round(sum(values[key] for values in phases.values()), 6)
        retries_by_kind: Counter[str] = Counter()
        for profile in model.values():
            retries_by_kind.update(profile.retries)
        total["retries_by_kind"] = dict(sorted(retries_by_kind.items()))
        return {**phases, "total": total}
