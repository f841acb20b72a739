"""Build a scenario's listener appraisal: clusterers, valence judges and models, checked early.

:func:`build_appraiser` turns the scenario's ``appraisal`` (and each agent's own) into an
:class:`~valuegym.agents.appraisal.Appraiser` for the population, before any record is written:
a judge or model that cannot be loaded or reached stops the run with one line naming the key.
One clusterer per distinct setting, one valence judge per kind and one appraisal model serve
every listener (their caches are shared).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from valuegym.agents.appraisal import Appraiser, ListenerSettings
from valuegym.lm import LanguageModelError
from valuegym.runs.population import Population, PopulationError, load_lm_model
from valuegym.scenarios.schema import ListenerAppraisalSpec, Scenario

__all__ = ["appraisal_description", "build_appraiser", "listener_specs"]


def listener_specs(scenario: Scenario) -> list[ListenerAppraisalSpec | None]:
    """Each agent's appraisal settings in population order: its own, else the scenario's."""
    return [
        spec.appraisal if spec.appraisal is not None else scenario.appraisal
        for _, spec in scenario.expanded_agents()
    ]


def _appraisal_model(
    scenario: Scenario, population: Population, load_model: Callable[..., Any] | None
) -> tuple[Any, bool]:
    """The model judges ask: ``appraisal.model``, else the first LM agent's (or ``None``).

    Returns:
        The model, and whether ``appraisal.model`` set it (then non-LM listeners feel
        surprise under it too).
    """
    if scenario.appraisal is not None and scenario.appraisal.model is not None:
        model = load_lm_model(scenario.appraisal.model, "appraisal", load_model)
        population.models.append(model)
        # One call, so that a server that does not answer stops the run before it starts.
        _first_call(
            "appraisal.model",
            repr(scenario.appraisal.model.model),
            lambda: model,
            lambda made: made.score("Hello,", [" how are you?"]),
        )
        return model, True
    if population.lm_groups:
        return population.lm_groups[0].agent.model, False
    return None, False


def build_appraiser(
    scenario: Scenario, population: Population, load_model: Callable[..., Any] | None = None
) -> Appraiser | None:
    """The population's appraiser, or ``None`` when no listener appraises.

    Args:
        scenario: The validated scenario.
        population: Its env and agents (the appraisal model, when loaded, joins its models).
        load_model: Loads language models (see :func:`~valuegym.runs.population.load_lm_model`).

    Returns:
        The appraiser, its judges checked with one call each.

    Raises:
        PopulationError: A judge or model that cannot be loaded or does not answer, naming
            the scenario key.
    """
    specs = listener_specs(scenario)
    if all(spec is None for spec in specs):
        return None
    model, declared = _appraisal_model(scenario, population, load_model)
    clusterers: dict[tuple[str, float | None], Any] = {}
    judges: dict[str, Any] = {}
    settings: list[ListenerSettings | None] = []
    for member, spec in zip(population.members, specs, strict=True):
        if spec is None:
            settings.append(None)
            continue
        where = (
            f"agents.{member.entry.index}.appraisal"
            if member.spec.appraisal is not None
            else "appraisal"
        )
        repetition = spec.repetition
        key = (repetition.clusterer, repetition.threshold)
        if key not in clusterers:
            clusterers[key] = _clusterer(repetition.clusterer, repetition.threshold, model, where)
        judge_kind = spec.valence.judge
        if judge_kind != "off" and judge_kind not in judges:
            judges[judge_kind] = _judge(judge_kind, model, where)
        own_model = (
            population.lm_groups[member.lm_group].agent.model
            if member.lm_group is not None
            else (model if declared else None)
        )
        settings.append(
            ListenerSettings(
                clusterer=clusterers[key],
                valence_judge=judges.get(judge_kind),
                valence_weight=spec.valence.weight,
                model=own_model if spec.surprise.per_nat > 0 else None,
                per_nat=spec.surprise.per_nat,
                rate=spec.surprise.rate,
                context_lines=spec.surprise.context_lines,
                overheard=spec.overheard,
            )
        )
    window = int(getattr(population.env.unwrapped.rules, "repetition_window", 8))
    return Appraiser(settings, window, model)


def _clusterer(kind: str, threshold: float | None, model: Any, where: str) -> Any:
    from valuegym.measures.clustering import get_clusterer

    judge = None
    if kind == "entailment":
        if model is None:
            raise PopulationError(
                f"{where}.repetition.clusterer: entailment asks a language model; add an "
                "LM agent or set appraisal.model"
            )
        from valuegym.measures.entailment import LanguageModelJudge

        judge = LanguageModelJudge(model)
    return _first_call(
        f"{where}.repetition.clusterer",
        f"the {kind} clusterer",
        lambda: get_clusterer(kind, judge=judge, threshold=threshold),  # type: ignore[arg-type]
        lambda made: made.cluster(["Could you help me?", "Can you help me?"]),
    )


def _judge(kind: str, model: Any, where: str) -> Any:
    from valuegym.measures.valence import get_valence_judge

    if kind == "lm" and model is None:
        raise PopulationError(
            f"{where}.valence.judge: lm asks a language model; add an LM agent or set "
            "appraisal.model"
        )
    return _first_call(
        f"{where}.valence.judge",
        f"the {kind} judge",
        lambda: get_valence_judge(kind, model=model),  # type: ignore[arg-type]
        lambda made: made.valence(["Thank you, that helps a lot."]),
    )


def _first_call(
    key: str, what: str, make: Callable[[], Any], probe: Callable[[Any], object]
) -> Any:
    """Make a judge (or model) and call it once; a failure is one line naming the key."""
    try:
        made = make()
        probe(made)
    except ImportError as error:  # its package is not installed
        raise PopulationError(f"{key}: {error}") from None
    except (LanguageModelError, OSError, ValueError) as error:  # e.g. a server not answering
        raise PopulationError(
            f"{key}: {what} failed its first call: {' '.join(str(error).split())}"
        ) from None
    return made


def appraisal_description(appraiser: Appraiser | None) -> dict[str, Any] | None:
    """What appraised, for the run's summary: clusterers, judges and models by listener."""
    if appraiser is None:
        return None
    listeners = []
    for index, settings in enumerate(appraiser.settings):
        judge = settings.valence_judge
        listeners.append(
            {
                "agent": index,
                "clusterer": settings.clusterer.describe(),
                "valence_judge": judge.describe() if judge is not None else None,
                "valence_weight": settings.valence_weight,
                "surprise_model": getattr(settings.model, "name", None),
                "per_nat": settings.per_nat,
                "rate": settings.rate,
                "context_lines": settings.context_lines,
                "overheard": settings.overheard,
            }
        )
    return {"window": appraiser.window, "listeners": listeners}
