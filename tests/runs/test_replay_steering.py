"""The steering channel in the replay grid: cells set the stress coefficient, the contrasts
recover a known entropy difference, and a grid that steers an unsteered agent is refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from valuegym.analysis.channels import channel_contrasts, paired_contrast
from valuegym.lm.directions import SteeringDirections
from valuegym.lm.models import DEFAULT_MODEL, file_sha256, resolve_gguf_path
from valuegym.records import RunFolder
from valuegym.runs.errors import RunError
from valuegym.runs.replay import replay_run
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.schema import CounterfactualSpec
from valuegym.scenarios.validation import ScenarioError, validate_scenario

from .conftest import STATED_WORDS, StatedStressModel
from .test_replay import INBOX, TOKENS

#: The stress direction's mean difference at block 1: 2 e0.
RAW_NORM = 2.0
BETA = 1.5


class SteeredModel(StatedStressModel):
    """Ignores the prompt; sharpens with the steering: logits ``beta * |additions| * z``.

    Unsteered it is uniform over :data:`STATED_WORDS`; a steering whose additions have total
    norm ``g`` gives the :class:`StatedStressModel` distribution at "stress" ``g``.
    """

    name = "test:steered"
    supports_steering = True

    def __init__(self) -> None:
        super().__init__(beta=BETA)
        self.norm = 0.0

    def logits(self, prompt) -> np.ndarray:
        return self.beta * self.norm * self.z

    def _generate(self, prompts, *, steering=None, **options):
        steering = steering or (None,) * len(prompts)
        seeds = options["seed"]
        if seeds is None or isinstance(seeds, int):  # as TokenSampler spawns them
            seeds = np.random.SeedSequence(seeds).spawn(len(prompts))
        generations = []
        for index, prompt in enumerate(prompts):
            added = steering[index]
            self.norm = (
                0.0
                if added is None
                else float(sum(np.linalg.norm(v) for v in added.additions.values()))
            )
            one = {
                **options,
                "temperatures": options["temperatures"][index : index + 1],
                "seed": seeds[index : index + 1],
            }
            generations += super()._generate([prompt], **one)
        return generations


def _directions(folder: Path) -> Path:
    stress = np.zeros((3, 4), dtype=np.float32)
    stress[1, 0] = 1.0
    SteeringDirections(
        variables=("stress",),
        vectors={"stress": stress},
        provenance={
            "model_sha256": file_sha256(resolve_gguf_path(DEFAULT_MODEL)),
            "layers": [1],
            "hidden_size": 4,
            "raw_norms": {"stress": [0.0, RAW_NORM, 0.0]},
        },
    ).save(folder)
    return folder


def _steered(folder: Path) -> dict:
    data = {**INBOX, "agents": [dict(agent) for agent in INBOX["agents"]]}
    steering = {"directions": str(folder), "stress": "state", "center": {"stress": 0.5}}
    data["agents"][0]["lm"] = {**data["agents"][0]["lm"], "steering": {**steering, "layers": [1]}}
    return data


def _load(model):
    return {"load_model": lambda backend, name, **options: model}


def test_the_steer_stress_contrast_recovers_a_known_entropy_difference(tmp_path: Path) -> None:
    model = SteeredModel()
    scenario = validate_scenario(_steered(_directions(tmp_path / "d")))
    run_scenario(scenario, tmp_path / "run", progress=False, **_load(model))
    grid = CounterfactualSpec(
        steer_stress=[0.0, 1.0], temperature=[1.0], samples=2, per_entry=3, placebo=False
    )
    replay_run(tmp_path / "run", grid, progress=False, **_load(model))
    rows = RunFolder(tmp_path / "run").read("replay").to_pylist()
    assert sorted({row["set_steer_stress"] for row in rows}) == [0.0, 1.0]
    assert all(math.isnan(row["set_stress"]) for row in rows)
    uniform = TOKENS * math.log(len(STATED_WORDS))
    steered = model.sequence_entropy(RAW_NORM * 1.0, 1.0, TOKENS)
    for row in rows:  # each cell samples from the distribution its steering gives
        expected = uniform if row["set_steer_stress"] == 0.0 else steered
        assert row["sequence_entropy"] == pytest.approx(expected, rel=1e-9)
    contrast = paired_contrast(rows, "sequence_entropy", "steer_stress")
    assert contrast is not None
    assert contrast.estimate.value == pytest.approx(steered - uniform, rel=1e-9)
    assert steered - uniform < -0.5  # the steering sharpens the replies by a known amount
    [found] = [c for c in channel_contrasts(rows) if c.channel == "steer_stress"]
    assert found.levels == "0 -> 1"
    assert found.at == "temperature=1, prompt_stress=own, prompt_mood=own"
    assert found.estimate.value == pytest.approx(steered - uniform, rel=1e-9)


def test_a_steer_stress_grid_for_an_unsteered_agent_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    model = StatedStressModel()
    run_scenario(validate_scenario(INBOX), tmp_path, progress=False, **_load(model))
    with pytest.raises(RunError) as raised:
        replay_run(tmp_path, CounterfactualSpec(steer_stress=[0.0, 1.0]), **_load(model))
    message = str(raised.value)
    assert "\n" not in message
    assert message == (
        "measure.counterfactual.steer_stress: agent clerk (agents.0) has no lm.steering: a "
        "replay grid with steer_stress needs every LM agent steered"
    )
    assert not (tmp_path / "replay.yaml").exists()
    declared = {**INBOX, "measure": {"counterfactual": {"steer_stress": [0.0, 1.0]}}}
    with pytest.raises(ScenarioError, match=r"steer_stress: agent clerk \(agents\.0\)"):
        validate_scenario(declared)
