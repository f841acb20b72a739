import json
from pathlib import Path

import pytest

from valuegym.analysis.channels import channel_contrasts, manipulation_check
from valuegym.analysis.report import write_report
from valuegym.runs.errors import RunError
from valuegym.runs.population import make_lm_agent
from valuegym.runs.replay import plan_cells, replay_run, reproduce_utterance
from valuegym.runs.runner import run_scenario
from valuegym.scenarios.schema import CounterfactualSpec
from valuegym.scenarios.validation import validate_scenario

from .conftest import StatedStressModel

TOKENS = 4
INBOX = {
    "name": "stated",
    "seed": 3,
    "env": {"id": "valuegym/Inbox-v0", "args": {"arrival_rate": 2.0}},
    "agents": [
        {
            "id": "clerk",
            "kind": "lm",
            "persona": "a clerk",
            "affect": {"stress_baseline": 0.5},
            "lm": {"max_new_tokens": TOKENS},
        }
    ],
    "episodes": 2,
    "max_steps": 4,
}
GRID = CounterfactualSpec(prompt_stress=[0.1, 0.9], temperature=[0.5, 1.0], samples=2)


def _run(tmp_path: Path, model: StatedStressModel) -> Path:
    run_scenario(
        validate_scenario(INBOX),
        tmp_path,
        progress=False,
        load_model=lambda backend, name, **options: model,
    )
    replay_run(tmp_path, GRID, progress=False, load_model=lambda backend, name, **o: model)
    return tmp_path


def _contrast(contrasts, channel, at):
    [found] = [c for c in contrasts if c.channel == channel and c.at.startswith(at)]
    return found


def test_replay_recovers_the_known_temperature_and_prompt_effects(tmp_path: Path):
    model = StatedStressModel()
    folder = _run(tmp_path, model)
    from valuegym.records import RunFolder

    replay = RunFolder(folder).read("replay").to_pylist()
    contexts = {row["context_id"] for row in replay}
    assert len(replay) == len(contexts) * len(plan_cells(GRID)) * GRID.samples
    contrasts = channel_contrasts(replay)
    truth = model.sequence_entropy
    temperature = _contrast(contrasts, "temperature", "prompt_stress=0.9")
    expected = truth(0.9, 1.0, TOKENS) - truth(0.9, 0.5, TOKENS)
    assert temperature.estimate.value == pytest.approx(expected)
    assert temperature.estimate.n_units == len(contexts)
    assert temperature.estimate.unit == "contexts"  # 2 episodes: too few to be the unit
    prompt = _contrast(contrasts, "prompt_stress", "temperature=1")
    expected = truth(0.9, 1.0, TOKENS) - truth(0.1, 1.0, TOKENS)
    assert prompt.estimate.value == pytest.approx(expected)
    assert prompt.estimate.value < 0  # stating more stress sharpens this model's distribution
    interaction = _contrast(contrasts, "interaction", "")
    expected = (truth(0.9, 1.0, TOKENS) - truth(0.1, 1.0, TOKENS)) - (
        truth(0.9, 0.5, TOKENS) - truth(0.1, 0.5, TOKENS)
    )
    assert interaction.estimate.value == pytest.approx(expected)
    check = manipulation_check(RunFolder(folder).read("manipulation").to_pylist())
    assert check is not None
    assert check.estimate.low > 0


def test_a_model_that_ignores_the_state_shows_no_prompt_effect(tmp_path: Path):
    model = StatedStressModel(ignores_state=True)
    folder = _run(tmp_path, model)
    from valuegym.records import RunFolder

    contrasts = channel_contrasts(RunFolder(folder).read("replay").to_pylist())
    for contrast in contrasts:
        if contrast.channel in ("prompt_stress", "interaction"):
            assert contrast.estimate.value == pytest.approx(0.0, abs=1e-12)
    temperature = _contrast(contrasts, "temperature", "prompt_stress=0.9")
    assert temperature.estimate.value == pytest.approx(0.0, abs=1e-12)  # uniform at any T
    check = manipulation_check(RunFolder(folder).read("manipulation").to_pylist())
    assert check is not None
    assert check.estimate.value == pytest.approx(0.0, abs=1e-12)


def test_a_recorded_utterance_is_reproduced_from_its_row(tmp_path: Path):
    model = StatedStressModel()
    scenario = validate_scenario(INBOX)
    result = run_scenario(
        scenario, tmp_path, progress=False, load_model=lambda backend, name, **options: model
    )
    lm = scenario.agents[0].language_model
    agent = make_lm_agent(model, lm, ["a clerk"])
    rows = result.folder.read("utterances").to_pylist()
    assert rows
    for row in rows:
        assert reproduce_utterance(agent, row).text == row["text"]
        assert json.loads(row["prompt"])[0]["content"].startswith("You are a clerk.")


def test_replay_resumes_and_refuses_another_grid(tmp_path: Path):
    model = StatedStressModel()
    folder = _run(tmp_path, model)
    again = replay_run(folder, GRID, progress=False, load_model=lambda b, n, **o: model)
    assert (again.episodes_replayed, again.episodes_resumed) == (0, 2)
    other = CounterfactualSpec(temperature=[0.3, 1.5])
    with pytest.raises(RunError, match="another grid"):
        replay_run(folder, other, progress=False, load_model=lambda b, n, **o: model)
    replaced = replay_run(
        folder, other, overwrite=True, progress=False, load_model=lambda b, n, **o: model
    )
    assert replaced.episodes_replayed == 2


def test_a_scenario_can_replay_its_own_contexts_and_the_report_shows_the_channels(tmp_path):
    model = StatedStressModel()
    scenario = validate_scenario(
        {
            **INBOX,
            "measure": {"counterfactual": {"prompt_stress": [0.1, 0.9], "temperature": [0.5, 1.0]}},
        }
    )
    result = run_scenario(
        scenario, tmp_path, progress=False, load_model=lambda backend, name, **o: model
    )
    replay = result.folder.read("replay")
    assert replay.num_rows > 0
    timing = result.folder.read_summary()["timing"]
    assert timing["replay"]["generated_tokens"] == sum(replay.column("length").to_pylist())
    assert timing["replay"]["calls"] > 0
    text = write_report(tmp_path).read_text()
    assert "## Channels apart" in text
    assert "| replay |" in text
    assert "prompt_stress 0.1 -> 0.9 at temperature=1" in text
    assert (tmp_path / "report" / "channel_contrasts.png").is_file()


def test_a_run_from_before_the_record_schema_is_neither_replayed_nor_resumed(tmp_path, fake_model):
    from valuegym.records import RunFolder
    from valuegym.scenarios.validation import validate_scenario

    short = validate_scenario(
        {
            "name": "old",
            "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
            "agents": [{"kind": "lm", "lm": {"max_new_tokens": 2}}, {"kind": "greedy"}],
            "max_steps": 4,
            "measure": {"utterances": True},
        }
    )
    load = {"load_model": lambda backend, name, **options: fake_model}
    run_scenario(short, tmp_path, progress=False, **load)
    (tmp_path / "design.json").unlink()  # as a valuegym before the record schema left it
    grid = CounterfactualSpec(every=1, samples=1, temperature=[0.7, 1.0])
    with pytest.raises(RunError, match="record schema version 1"):
        replay_run(tmp_path, grid, progress=False, **load)
    with pytest.raises(RunError, match=r"version 1 .*--overwrite"):
        run_scenario(short, tmp_path, progress=False, **load)
    run_scenario(short, tmp_path, progress=False, overwrite=True, **load)  # records replaced
    assert RunFolder(tmp_path).finished_episodes() == [0]
    assert RunFolder(tmp_path).read_design().schema_version == 2
    assert "entry" in RunFolder(tmp_path).read("steps").column_names
