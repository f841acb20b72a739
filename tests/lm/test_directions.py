import csv
import hashlib
from typing import ClassVar

import numpy as np
import pytest

from valuegym.cli import main
from valuegym.lm import directions as directions_module
from valuegym.lm.directions import SteeringDirections, build_directions, read_pairs
from valuegym.lm.models import DEFAULT_MODEL, embedded_model_path, file_sha256

# A few pairs keep the real-model builds to a couple of seconds each.
PAIRS = [
    (
        "stress",
        "I have plenty of time, happy to look at it.",
        "I have no time at all, I'm swamped.",
    ),
    ("stress", "I feel calm and relaxed today.", "I feel tense and on edge today."),
    ("mood", "I feel happy and content.", "I feel sad and upset."),
    ("mood", "Today has been a wonderful day.", "Today has been a miserable day."),
]
LAYERS = [3, 10, 20]


def _write_pairs(path, rows=PAIRS):
    with path.open("w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream)
        writer.writerow(["variable", "low", "high"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def one_thread():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # OpenMP workers spin-wait on busy shared cores
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    return _write_pairs(tmp_path_factory.mktemp("pairs") / "pairs.csv")


@pytest.fixture(scope="module")
def built(one_thread, pairs_file):
    return build_directions(DEFAULT_MODEL, pairs=pairs_file, layers=LAYERS)


def test_shipped_pairs_cover_stress_and_mood():
    pairs = read_pairs()
    counts = {v: sum(row[0] == v for row in pairs.rows) for v in pairs.variables}
    assert counts == {"stress": 40, "mood": 40}
    assert len(pairs.sha256) == 64


def test_direction_is_reproducible_from_its_pairs(built, pairs_file):
    again = build_directions(DEFAULT_MODEL, pairs=pairs_file, layers=LAYERS)
    for variable in ("stress", "mood"):
        assert np.array_equal(again.vectors[variable], built.vectors[variable])
    assert again.provenance == built.provenance


def test_provenance_and_unit_norms(built, pairs_file):
    provenance = built.provenance
    assert built.variables == ("stress", "mood")
    assert provenance["model_sha256"] == file_sha256(embedded_model_path(DEFAULT_MODEL))
    assert provenance["pairs_sha256"] == hashlib.sha256(pairs_file.read_bytes()).hexdigest()
    assert provenance["n_pairs"] == {"stress": 2, "mood": 2}
    assert (provenance["n_blocks"], provenance["hidden_size"]) == (30, 576)
    assert provenance["layers"] == LAYERS
    assert (provenance["position"], provenance["text_wrapping"]) == ("last", "plain")
    for variable in built.variables:
        norms = np.linalg.norm(built.vectors[variable], axis=1)
        np.testing.assert_allclose(norms[LAYERS], 1.0, atol=1e-5)
        assert np.count_nonzero(norms) == len(LAYERS)  # blocks not built are zero rows
        raw = np.array(provenance["raw_norms"][variable])
        assert np.all(raw[LAYERS] > 0)
        assert np.count_nonzero(raw) == len(LAYERS)


def test_hooked_block_outputs_are_transformers_hidden_states(one_thread):
    # hidden_states[i + 1] is block i's output, except the last, returned after the final norm.
    import torch

    encoder = directions_module._TransformersEncoder(DEFAULT_MODEL)
    text = "I feel calm and relaxed today."
    states = encoder.block_states([text], "last")[0]
    ids = encoder._tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        hidden = encoder._model(input_ids=ids, output_hidden_states=True).hidden_states
    for block in (0, 10, 28):
        np.testing.assert_allclose(states[block], hidden[block + 1][0, -1].numpy(), atol=1e-4)
    # "mean" averages the tokens after the first (the attention sink), in a padded batch too.
    means = encoder.block_states([text, text + " The sun is out and so am I."], "mean")[0]
    for block in (0, 10, 28):
        expected = hidden[block + 1][0, 1:].double().mean(0).numpy()
        np.testing.assert_allclose(means[block], expected, atol=1e-4)


class _FakeEncoder:
    """Block b of text t is a fixed vector: the mean-difference maths can be checked exactly."""

    n_blocks = 3
    hidden_size = 2
    architecture = "fake"
    table: ClassVar[dict[str, list[list[int]]]] = {
        "low a": [[0, 0], [1, 0], [0, 2]],
        "high a": [[3, 4], [1, 2], [0, 2]],
        "low b": [[1, 1], [0, 0], [0, 0]],
        "high b": [[4, 5], [0, 6], [0, 0]],
    }

    def block_states(self, texts, position):
        return np.array([self.table[text] for text in texts], dtype=np.float64)


def test_mean_difference_known_answer(monkeypatch, tmp_path):
    monkeypatch.setattr(directions_module, "_load_encoder", lambda model: _FakeEncoder())
    pairs = _write_pairs(tmp_path / "p.csv", [("x", "low a", "high a"), ("x", "low b", "high b")])
    directions = build_directions(DEFAULT_MODEL, pairs=pairs, layers=[0, 1, 2])
    # Mean differences: block 0 (3, 4) -> norm 5; block 1 (0, 4) -> 4; block 2 (0, 0) -> 0.
    assert directions.provenance["raw_norms"]["x"] == [5.0, 4.0, 0.0]
    np.testing.assert_allclose(directions.vectors["x"], [[0.6, 0.8], [0, 1], [0, 0]])
    # Strength is in units of the raw norm: strength 1 adds the mean difference itself.
    np.testing.assert_allclose(directions.scaled("x", 1.0, 0), [3, 4])
    np.testing.assert_allclose(directions.scaled("x", -0.5, 1), [0, -2])


def test_save_load_round_trip_and_hash_refusal(built, tmp_path):
    built.save(tmp_path / "d")
    loaded = SteeringDirections.load(tmp_path / "d", model_sha256=built.provenance["model_sha256"])
    assert loaded.variables == built.variables
    assert dict(loaded.provenance) == dict(built.provenance)
    for variable in built.variables:
        assert np.array_equal(loaded.vectors[variable], built.vectors[variable])
    with pytest.raises(ValueError, match="rebuild them") as refused:
        SteeringDirections.load(tmp_path / "d", model_sha256="0" * 64)
    message = str(refused.value)
    assert "\n" not in message
    assert built.provenance["model_sha256"] in message
    assert "0" * 64 in message


def test_control_vector_gguf_reads_back(built, tmp_path):
    gguf = pytest.importorskip("gguf")
    path = built.save_control_vector(tmp_path / "stress.gguf", "stress", 0.8, [10, 20])
    reader = gguf.GGUFReader(path)
    fields = reader.fields
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "controlvector"
    assert bytes(fields["controlvector.model_hint"].parts[-1]).decode() == "llama"
    assert int(fields["controlvector.layer_count"].parts[-1][0]) == 2
    tensors = {tensor.name: np.array(tensor.data) for tensor in reader.tensors}
    assert sorted(tensors) == ["direction.10", "direction.20"]  # llama.cpp's il == block index
    for block in (10, 20):
        expected = (
            0.8 * built.provenance["raw_norms"]["stress"][block] * built.vectors["stress"][block]
        )
        assert tensors[f"direction.{block}"].shape == (576,)
        np.testing.assert_allclose(tensors[f"direction.{block}"], expected, rtol=1e-6)
    with pytest.raises(ValueError, match="block 0"):
        built.save_control_vector(tmp_path / "zero.gguf", "stress", 1.0, [0, 10])


def test_cli_builds_into_a_folder(one_thread, pairs_file, tmp_path, capsys):
    out = tmp_path / "steer"
    status = main(
        ["steer", "build", "--pairs", str(pairs_file), "--layers", "10,20", "--output", str(out),
         "--control-vector", "stress=0.5"]
    )  # fmt: skip
    assert status == 0
    printed = capsys.readouterr().out
    assert "cos(stress,mood)" in printed
    assert "control vector:" in printed
    assert sorted(p.name for p in out.iterdir()) == [
        "control_vector_stress_+0.5.gguf",
        "directions.json",
        "directions.npz",
    ]
    assert SteeringDirections.load(out).provenance["layers"] == [10, 20]


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--pairs", "missing.csv"], "--pairs missing.csv: no such file"),
        (["--layers", "1,x"], "--layers '1,x'"),
        (["--control-vector", "stress"], "--control-vector 'stress'"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch, arguments, words):
    monkeypatch.chdir(tmp_path)
    assert main(["steer", "build", "--output", "out", *arguments]) == 1
    error = capsys.readouterr().err.strip()
    assert words in error
    assert "\n" not in error
    assert not (tmp_path / "out").exists()


def test_steering_adds_strength_times_mean_difference(monkeypatch, tmp_path):
    import sys
    import types
    from dataclasses import dataclass

    if "valuegym.lm.steering" not in sys.modules:
        try:
            import valuegym.lm.steering  # noqa: F401  # the real class, once merged
        except ImportError:

            @dataclass(frozen=True)
            class Steering:  # a minimal stand-in with the interface's fields
                additions: dict
                label: str = ""

            stand_in = types.ModuleType("valuegym.lm.steering")
            stand_in.Steering = Steering
            monkeypatch.setitem(sys.modules, "valuegym.lm.steering", stand_in)
    monkeypatch.setattr(directions_module, "_load_encoder", lambda model: _FakeEncoder())
    pairs = _write_pairs(
        tmp_path / "p.csv",
        [("x", "low a", "high a"), ("x", "low b", "high b"), ("y", "low a", "high b")],
    )
    directions = build_directions(DEFAULT_MODEL, pairs=pairs, layers=[0, 1, 2])
    # y's mean differences: block 0 (4, 5), block 1 (-1, 6), block 2 (0, -2).
    steering = directions.steering({"x": 0.5, "y": -1.0}, [0, 1])
    assert steering.label == "x=+0.50 y=-1.00"
    assert sorted(steering.additions) == [0, 1]
    np.testing.assert_allclose(steering.additions[0], [1.5 - 4, 2 - 5], atol=1e-6)
    np.testing.assert_allclose(steering.additions[1], [0 + 1, 2 - 6], atol=1e-6)
    with pytest.raises(ValueError, match="not built"):
        build_directions(DEFAULT_MODEL, pairs=pairs, layers=[1]).steering({"x": 1.0}, [0])
