import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from valuegym.runs import runner as runner_module
from valuegym.runs.runner import RunError, default_run_dir, run_scenario
from valuegym.scenarios.validation import validate_scenario

COMMONS = {
    "name": "mixed-commons",
    "seed": 5,
    "env": {"id": "valuegym/Commons-v0"},
    "agents": [
        {"id": "calm", "kind": "greedy", "count": 2},
        {"id": "tense", "kind": "softmax", "affect": {"stress_baseline": 0.8}},
        {"id": "noise", "kind": "random"},
    ],
    "episodes": 3,
    "max_steps": 15,
}
CHAT = {
    "name": "chat",
    "seed": 1,
    "env": {"id": "valuegym/Conversation-v0", "args": {"mode": "text"}},
    "agents": [
        {"id": "ann", "kind": "lm", "persona": "a baker", "lm": {"max_new_tokens": 3}},
        {
            "id": "bob",
            "kind": "lm",
            "persona": "a nurse",
            "affect": {"stress_baseline": 0.7},
            "lm": {"max_new_tokens": 3},
        },
        {"id": "cy", "kind": "greedy"},
    ],
    "episodes": 2,
    "max_steps": 6,
    "measure": {
        "semantic_entropy": {"samples": 3, "clusterer": "text", "every": 2},
        "mutual_information": {
            "states": [{"stress": 0.1}, {"stress": 0.9}],
            "samples": 2,
            "every": 3,
        },
    },
}


def record_bytes(run_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((run_dir / "records").iterdir())}


def test_mixed_population_records_every_agent_and_step(tmp_path: Path):
    result = run_scenario(validate_scenario(COMMONS), tmp_path, progress=False)
    steps = result.folder.read("steps")
    assert set(steps.column("agent").to_pylist()) == {"calm_0", "calm_1", "tense", "noise"}
    assert steps.column("agent_kind").to_pylist()[:4] == ["greedy", "greedy", "softmax", "random"]
    assert steps.column("env_agent").to_pylist()[:4] == [f"agent_{i}" for i in range(4)]
    for column in (
        "reward",
        "mood",
        "stress",
        "stock_food",
        "wanting_rest",
        "env_resource",
        "env_gini",
        "env_cooperation_rate",
    ):
        assert column in steps.column_names
    episodes = np.array(steps.column("episode"))
    assert sorted(set(episodes.tolist())) == [0, 1, 2]
    assert all(np.count_nonzero(episodes == e) % 4 == 0 for e in range(3))
    assert steps.num_rows <= 3 * 15 * 4
    summary = result.folder.read_summary()
    assert summary["episodes_run"] == 3
    assert summary["agents"][2] == {"id": "tense", "kind": "softmax"}
    assert (tmp_path / "scenario.yaml").read_text().startswith("name: mixed-commons\n")


def test_same_scenario_and_seed_give_byte_identical_records(tmp_path: Path):
    scenario = validate_scenario(COMMONS)
    for name in ("a", "b"):
        run_scenario(scenario, tmp_path / name, progress=False)
    assert record_bytes(tmp_path / "a") == record_bytes(tmp_path / "b")
    other = validate_scenario({**COMMONS, "seed": 6})
    run_scenario(other, tmp_path / "c", progress=False)
    assert record_bytes(tmp_path / "a") != record_bytes(tmp_path / "c")


def test_lm_agents_speak_on_their_turn_and_are_measured(tmp_path: Path, fake_model):
    model = fake_model
    result = run_scenario(
        validate_scenario(CHAT),
        tmp_path,
        progress=False,
        load_model=lambda backend, name, **options: model,
    )
    utterances = result.folder.read("utterances")
    steps = result.folder.read("steps")
    # Turn-based: agent_0, agent_1, agent_2, ... speak in turn; cy (greedy) never speaks.
    assert utterances.column("agent").to_pylist()[:4] == ["ann", "bob", "ann", "bob"]
    assert utterances.num_rows == 2 * 4
    assert set(utterances.column("step").to_pylist()) == {0, 1, 3, 4}
    texts = utterances.column("text").to_pylist()
    assert all(len(text.split()) == 3 and set(text.split()) <= set(model.words) for text in texts)
    assert utterances.column("mean_token_entropy").to_pylist() == pytest.approx([math.log(8)] * 8)
    assert utterances.column("surprisal").to_pylist() == pytest.approx([3 * math.log(8)] * 8)
    semantic = np.array(utterances.column("semantic_entropy").to_pylist(), dtype=float)
    measured = np.array(utterances.column("step").to_pylist()) % 2 == 0
    assert np.all(np.isfinite(semantic[measured]))
    assert np.all(semantic[measured] <= math.log(3) + 1e-9)
    assert np.all(np.isnan(semantic[~measured]))
    # The speaker's words reach the chat the next speaker's prompt shows.
    first_text = texts[0]
    assert any(
        first_text in message["content"] for prompt in model.prompts_seen[1:] for message in prompt
    )
    first_steps = np.array(steps.column("step").to_pylist()) == 0
    actions = steps.filter(first_steps).column("action").to_pylist()
    assert actions[0] >= 0
    assert actions[1:3] == [-1, -1]  # only agent_0 acted
    # What replays an utterance is on its row.
    first = utterances.slice(0, 1).to_pylist()[0]
    assert json.loads(first["prompt"])[0]["content"].startswith("You are a baker.")
    assert json.loads(first["context"]) == []
    assert first["prompt_state"] == "actual"
    assert first["prompt_stress"] == pytest.approx(first["stress"])
    assert (first["sampler_index"], first["speech_temperature_setting"]) == (0, "state")
    assert len(first["context_id"]) == 16
    # Mutual information on the designed states, in the speaker's context: measured on steps
    # 0 and 3 (ann's turns) of each episode. The fake model scores every text the same under
    # every prompt, so the state carries no information.
    information = result.folder.read("information")
    assert information.num_rows == 4
    assert information.column("agent").to_pylist() == ["ann"] * 4
    assert information.column("n_states").to_pylist() == [2] * 4
    assert information.column("mutual_information").to_pylist() == pytest.approx([0.0] * 4)


def test_summary_times_tokens_and_seconds_per_phase(tmp_path: Path, fake_model):
    chat = {**CHAT, "agents": [{**CHAT["agents"][0], "lm": {"max_new_tokens": 3, "act_by": "lm"}}]}
    chat["agents"] += CHAT["agents"][1:]
    result = run_scenario(
        validate_scenario(chat),
        tmp_path,
        progress=False,
        load_model=lambda backend, name, **options: fake_model,
    )
    timing = json.loads(result.folder.summary_file.read_text())["timing"]
    utterances = result.folder.read("utterances")
    lengths = utterances.column("length").to_pylist()
    assert set(timing) == {"speech", "act", "semantic", "information", "env", "total"}
    assert timing["speech"]["generated_tokens"] == sum(lengths) == 8 * 3
    measured = sum(step % 2 == 0 for step in utterances.column("step").to_pylist())
    assert timing["semantic"]["generated_tokens"] == measured * 3 * 3  # K=3 samples each
    assert timing["information"]["generated_tokens"] == 4 * 2 * 2 * 3  # 2 states x 2 samples
    assert timing["act"]["calls"] == 4  # ann scores her options on her 4 turns
    assert timing["act"]["generated_tokens"] == 0
    assert timing["env"]["env_seconds"] > 0
    assert timing["total"]["generated_tokens"] == sum(
        phase["generated_tokens"] for label, phase in timing.items() if label != "total"
    )
    for phase in timing.values():
        assert min(phase["model_seconds"], phase["measure_seconds"], phase["env_seconds"]) >= 0
    assert timing["speech"]["measure_seconds"] > 0
    assert not any("timing" in name for name in record_bytes(tmp_path))


def test_entailment_clusterer_asks_the_speakers_model_from_its_scored_answers(
    tmp_path: Path, fake_model
):
    # The fake model scores "Yes" and "No" alike: p(entails) = 0.5 reaches the threshold both
    # ways, so every set of samples is one meaning, where exact text finds several.
    measure = {"semantic_entropy": {"samples": 4, "clusterer": "entailment", "every": 1}}
    scenario = validate_scenario({**CHAT, "episodes": 1, "max_steps": 3, "measure": measure})
    result = run_scenario(
        scenario,
        tmp_path / "entailment",
        progress=False,
        load_model=lambda backend, name, **options: fake_model,
    )
    utterances = result.folder.read("utterances")
    assert utterances.column("n_clusters").to_pylist() == [1, 1]
    assert utterances.column("semantic_entropy_discrete").to_pylist() == [0.0, 0.0]
    text_measure = {"semantic_entropy": {**measure["semantic_entropy"], "clusterer": "text"}}
    by_text = run_scenario(
        validate_scenario({**CHAT, "episodes": 1, "max_steps": 3, "measure": text_measure}),
        tmp_path / "text",
        progress=False,
        load_model=lambda backend, name, **options: type(fake_model)(),
    )
    assert max(by_text.folder.read("utterances").column("n_clusters").to_pylist()) > 1


def test_fake_lm_run_is_deterministic(tmp_path: Path, fake_model):
    for name in ("a", "b"):
        run_scenario(
            validate_scenario(CHAT),
            tmp_path / name,
            progress=False,
            load_model=lambda backend, model, **options: type(fake_model)(),
        )
    assert record_bytes(tmp_path / "a") == record_bytes(tmp_path / "b")


def test_interrupted_run_resumes_with_identical_records(tmp_path: Path, monkeypatch):
    scenario = validate_scenario({**COMMONS, "episodes": 4})
    run_scenario(scenario, tmp_path / "whole", progress=False)

    original_run = runner_module.EpisodeRun.run

    def crash_in_episode_two(self):
        if self.episode == 2:
            raise KeyboardInterrupt
        return original_run(self)

    monkeypatch.setattr(runner_module.EpisodeRun, "run", crash_in_episode_two)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(scenario, tmp_path / "resumed", progress=False)
    folder = runner_module.RunFolder(tmp_path / "resumed")
    assert folder.finished_episodes() == [0, 1]
    assert not folder.is_complete
    monkeypatch.setattr(runner_module.EpisodeRun, "run", original_run)
    result = run_scenario(scenario, tmp_path / "resumed", progress=False)
    assert (result.episodes_run, result.episodes_resumed) == (2, 2)
    assert record_bytes(tmp_path / "whole") == record_bytes(tmp_path / "resumed")


def test_a_different_scenario_is_not_mixed_into_a_run_folder(tmp_path: Path):
    run_scenario(validate_scenario(COMMONS), tmp_path, progress=False)
    changed = validate_scenario({**COMMONS, "max_steps": 5})
    with pytest.raises(RunError, match="holds the records of a different scenario"):
        run_scenario(changed, tmp_path, progress=False)
    run_scenario(changed, tmp_path, progress=False, overwrite=True)
    assert set(
        pq.read_table(tmp_path / "records/steps-e00000.parquet").column("step").to_pylist()
    ) <= set(range(5))


def test_unreachable_language_model_server_is_one_clear_error(tmp_path: Path):
    scenario = validate_scenario(
        {
            "name": "offline",
            "env": {"id": "valuegym/Inbox-v0"},
            "max_steps": 2,
            "agents": [
                {
                    "kind": "lm",
                    "lm": {"backend": "openai", "model": "m", "base_url": "http://127.0.0.1:9/v1"},
                }
            ],
        }
    )
    with pytest.raises(RunError, match=r"^language model failed: .*127\.0\.0\.1:9.* unreachable"):
        run_scenario(scenario, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing finished, nothing left behind


def test_default_run_dir_uses_output_then_name():
    assert default_run_dir(validate_scenario(COMMONS)) == Path("runs/mixed-commons")
    assert default_run_dir(validate_scenario({**COMMONS, "output": "a/b"}), "-train") == Path(
        "runs/a/b-train"
    )


@pytest.mark.slow
def test_killed_process_keeps_finished_episodes_and_resumes(tmp_path: Path):
    scenario_file = tmp_path / "long.yaml"
    scenario_file.write_text(
        "name: long\nseed: 2\nenv: {id: valuegym/Orchard-v0}\nagents: [{kind: softmax}]\n"
        "episodes: 40\nmax_steps: 2000\n"
    )
    command = [
        sys.executable,
        "-m",
        "valuegym.cli",
        "run",
        str(scenario_file),
        "-q",
        "--no-report",
        "--output",
        str(tmp_path / "run"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "run" / "records"
    deadline = time.monotonic() + 120
    while not (records / "steps-e00001.parquet").exists():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted(path.name for path in records.glob("steps-*.parquet"))
    assert 2 <= len(finished) < 40
    for name in finished:
        assert pq.read_table(records / name).num_rows == 2000  # complete, readable
    assert not (tmp_path / "run" / "summary.json").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert len(list(records.glob("steps-*.parquet"))) == 40
    assert (tmp_path / "run" / "summary.json").exists()


def test_an_lm_chosen_act_sees_the_chat_its_speech_saw(tmp_path: Path, fake_model):
    scored: list[str] = []

    class Recording(type(fake_model)):
        def _score(self, prompt, continuations):
            scored.append(prompt if isinstance(prompt, str) else json.dumps(list(prompt)))
            return super()._score(prompt, continuations)

    chat = {**CHAT, "agents": [{**CHAT["agents"][0], "lm": {"max_new_tokens": 3, "act_by": "lm"}}]}
    chat["agents"] += CHAT["agents"][1:]
    chat["measure"] = {}
    result = run_scenario(
        validate_scenario(chat),
        tmp_path,
        progress=False,
        load_model=lambda backend, name, **options: Recording(),
    )
    told = [
        json.loads(row["context"])
        for row in result.folder.read("utterances").to_pylist()
        if row["agent"] == "ann"
    ]
    assert len(scored) == len(told) == 4  # ann scores her options on each of her turns
    assert sum(len(lines) for lines in told) >= 4, "her later turns follow a chat"
    for prompt, lines in zip(scored, told, strict=True):
        for line in lines:
            assert json.dumps(line)[1:-1] in prompt, f"the act prompt lacks {line!r}"


def test_a_planner_agent_runs_in_a_scenario(tmp_path: Path):
    # One planner among greedy harvesters in Commons; its env copy is the runner's env.
    scenario = validate_scenario(
        {
            "name": "planning-commons",
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [
                {"id": "planner", "kind": "planner", "planner": {"horizon": 3, "rollouts": 1}},
                {"id": "greedy", "kind": "greedy", "count": 2},
            ],
            "max_steps": 12,
        }
    )
    steps = run_scenario(scenario, tmp_path, progress=False).folder.read("steps")
    assert steps.column("agent_kind").to_pylist()[:3] == ["planner", "greedy", "greedy"]
    kinds, actions = steps.column("agent_kind").to_pylist(), steps.column("action").to_pylist()
    planned = [action for action, kind in zip(actions, kinds, strict=True) if kind == "planner"]
    assert len(planned) == steps.num_rows // 3 >= 5
    assert set(planned) <= set(range(7))


def test_a_planner_simulates_co_players_by_their_kind():
    from valuegym.agents.heuristic import GreedyAgent, RandomAgent, SoftmaxAgent
    from valuegym.runs.population import build_population

    scenario = validate_scenario(
        {
            "name": "planners",
            "env": {"id": "valuegym/Commons-v0"},
            "agents": [
                {"kind": "planner"},
                {"kind": "softmax"},
                {"kind": "random"},
                {"kind": "planner", "planner": {"horizon": 2, "depth": 2}},
            ],
        }
    )
    members = build_population(scenario).members
    first, last = members[0].policy, members[3].policy
    assert [type(p) for p in first.co_players.values()] == [SoftmaxAgent, RandomAgent, GreedyAgent]
    assert first.co_players["agent_1"] is not members[1].policy  # a copy, its own generator
    assert (first.horizon, first.depth, first.rollouts, first.discount) == (10, 1, 4, 0.8)
    assert (last.horizon, last.depth, last.agent) == (2, 2, "agent_3")
