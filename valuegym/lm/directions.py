"""Steering directions: one residual-stream direction per state variable, from contrastive pairs.

A direction is the mean difference, over a set of contrastive pairs, between the residual
stream after a decoder block on the pair's "high" text (stressed, upset) and on its "low"
text (calm, content). The shipped pairs are ``valuegym/lm/data/steering_pairs.csv``
(columns ``variable,low,high``); any CSV of that shape can replace them.

How the activations are taken (recorded in the provenance):

- **Text wrapping**: ``"plain"``. Each text is tokenised on its own, without a chat
  template, so the activations hold the statement alone and not the template's default
  system prompt.
- **Position**: ``"last"`` (default) takes the residual stream at the text's last token;
  ``"mean"`` averages it over the text's tokens after the first (the first token's
  residual stream is the model's attention sink, a massive activation from block 11 on in
  SmolLM2-135M that would swamp the mean).
- **Blocks**: block index ``i`` is the output of decoder layer ``i`` (0-based, transformers
  numbering: ``model.model.layers[i]``), read by a forward hook on that layer, which is
  where :class:`~valuegym.lm.steering.Steering` adds. (``hidden_states[i + 1]`` of
  ``output_hidden_states=True`` is the same tensor except for the last block, which
  transformers returns after the final norm.)

Each block's mean difference is stored as a unit vector, and its length (the raw norm)
in the provenance. **A strength is in units of that norm**: strength 1 at block ``i`` adds
exactly the mean difference there (it moves the low texts' mean activation onto the high
texts' mean), strength -1 the opposite, 0 nothing. So one strength means the same shift at
every block even though the residual stream grows with depth.

llama.cpp numbers its control-vector tensors differently: the tensor ``direction.<il>`` of a
control-vector GGUF is added to the output of llama.cpp's layer ``il`` (0-based), whose
buffer row ``il - 1`` it fills (``llama_adapter_cvec::apply``); ``direction.0`` is
refused. So block ``i`` is ``direction.<i>`` and block 0 cannot be exported.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.resources
import io
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from valuegym.lm.models import EMBEDDED_MODELS, file_sha256, model_label, resolve_gguf_path

if TYPE_CHECKING:
    from valuegym.lm.steering import Steering

__all__ = [
    "POSITIONS",
    "TEXT_WRAPPING",
    "SteeringDirections",
    "build_directions",
    "read_pairs",
]

#: The token position rules: the text's last token, or the mean over its tokens.
POSITIONS = ("last", "mean")
#: How each text is presented to the model (see the module docstring).
TEXT_WRAPPING = "plain"
#: The file names of a saved set of directions.
VECTORS_FILE = "directions.npz"
PROVENANCE_FILE = "directions.json"
#: Texts per forward pass while building.
_BATCH_SIZE = 16


@dataclass(frozen=True)
class ContrastivePairs:
    """A set of contrastive pairs, read from a CSV with columns ``variable,low,high``.

    Attributes:
        rows: ``(variable, low, high)`` per pair, in file order.
        sha256: The SHA-256 of the CSV's bytes.
        source: Where the pairs came from (a path or ``"shipped"``).
    """

    rows: tuple[tuple[str, str, str], ...]
    sha256: str
    source: str

    @property
    def variables(self) -> tuple[str, ...]:
        """The variables, in order of first appearance."""
        return tuple(dict.fromkeys(variable for variable, _, _ in self.rows))


def read_pairs(path: str | Path | None = None) -> ContrastivePairs:
    """Read a contrastive-pair CSV (columns ``variable,low,high``).

    Args:
        path: The CSV; ``None`` reads the shipped ``steering_pairs.csv``.

    Returns:
        The pairs and the hash of the file's bytes.

    Raises:
        ValueError: If the file lacks a column or a row has an empty field.
    """
    if path is None:
        data = (importlib.resources.files("valuegym.lm") / "data/steering_pairs.csv").read_bytes()
        source = "shipped"
    else:
        data = Path(path).read_bytes()
        source = str(path)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    missing = {"variable", "low", "high"} - set(reader.fieldnames or ())
    if missing:
        raise ValueError(f"{source}: missing column(s) {sorted(missing)} (need variable,low,high)")
    rows = []
    for line, row in enumerate(reader, start=2):
        fields = tuple((row[name] or "").strip() for name in ("variable", "low", "high"))
        if not all(fields):
            raise ValueError(f"{source}, line {line}: variable, low and high must all be given")
        rows.append((fields[0], fields[1], fields[2]))
    if not rows:
        raise ValueError(f"{source}: no pairs")
    return ContrastivePairs(tuple(rows), hashlib.sha256(data).hexdigest(), source)


class BlockEncoder(Protocol):
    """What :func:`build_directions` needs of a model: per-block activations of texts."""

    n_blocks: int
    hidden_size: int
    architecture: str

    def block_states(self, texts: Sequence[str], position: str) -> np.ndarray:
        """Residual stream after every block, shaped ``(len(texts), n_blocks, hidden_size)``."""
        ...


class _TransformersEncoder:
    """Block outputs of a transformers causal LM, read by forward hooks on its layers."""

    def __init__(self, model: str | Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from valuegym.lm.huggingface import _resolve_source

        source = _resolve_source(model, None)
        self._torch = torch
        self._tokenizer = AutoTokenizer.from_pretrained(source)
        self._model = AutoModelForCausalLM.from_pretrained(source, dtype="float32")
        self._model.eval()
        self._layers = self._model.model.layers
        self.n_blocks = len(self._layers)
        self.hidden_size = int(self._model.config.hidden_size)
        self.architecture = str(self._model.config.model_type)
        pad_id = self._tokenizer.pad_token_id
        self._pad_id = pad_id if pad_id is not None else self._tokenizer.eos_token_id or 0

    def block_states(self, texts: Sequence[str], position: str) -> np.ndarray:
        torch = self._torch
        states = np.zeros((len(texts), self.n_blocks, self.hidden_size), dtype=np.float64)
        captured: dict[int, Any] = {}

        def hook(block: int) -> Any:
            def record(_module: Any, _inputs: Any, output: Any) -> None:
                captured[block] = output[0] if isinstance(output, tuple) else output

            return record

        handles = [layer.register_forward_hook(hook(i)) for i, layer in enumerate(self._layers)]
        try:
            for start in range(0, len(texts), _BATCH_SIZE):
                encoded = [
                    self._tokenizer(text, add_special_tokens=True)["input_ids"]
                    for text in texts[start : start + _BATCH_SIZE]
                ]
                # Right padding: the causal mask keeps padding out of every real position.
                width = max(len(ids) for ids in encoded)
                input_ids = torch.full((len(encoded), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(encoded), width), dtype=torch.float64)
                for row, ids in enumerate(encoded):
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    mask[row, : len(ids)] = 1.0
                # The mean leaves out the first token: its residual stream is the model's
                # attention sink (a massive activation that would swamp the mean).
                mean_weights = mask.clone()
                longer = torch.tensor([len(ids) > 1 for ids in encoded], dtype=torch.bool)
                mean_weights[longer, 0] = 0.0
                with torch.inference_mode():
                    self._model(input_ids=input_ids, attention_mask=mask.long(), use_cache=False)
                lengths = [len(ids) for ids in encoded]
                for block in range(self.n_blocks):
                    hidden = captured[block].double()
                    if position == "last":
                        rows = hidden[torch.arange(len(encoded)), torch.tensor(lengths) - 1]
                    else:
                        rows = (hidden * mean_weights[..., None]).sum(1) / mean_weights.sum(
                            1, keepdim=True
                        )
                    states[start : start + len(encoded), block] = rows.numpy()
        finally:
            for handle in handles:
                handle.remove()
        return states


def _load_encoder(model: str | Path) -> BlockEncoder:
    """The activations source for a model name, ``.gguf`` file or Hugging Face folder/id."""
    return _TransformersEncoder(model)


def _model_file(model: str | Path) -> Path | None:
    """The GGUF file behind an embedded name or ``.gguf`` path; ``None`` for a HF model."""
    if str(model) in EMBEDDED_MODELS or Path(str(model)).suffix.lower() == ".gguf":
        return resolve_gguf_path(model)
    return None


def build_directions(
    model: str | Path = "smollm2-135m",
    *,
    pairs: str | Path | None = None,
    layers: Sequence[int] | None = None,
    position: str = "last",
) -> SteeringDirections:
    """Build one steering direction per variable of a contrastive-pair set.

    Args:
        model: An embedded model name, a ``.gguf`` file, or a Hugging Face folder or id.
        pairs: A CSV with columns ``variable,low,high``; ``None`` uses the shipped pairs.
        layers: The block indices to build (0-based, transformers numbering); ``None``
            builds every block. Rows of blocks not built are zero.
        position: ``"last"`` (the text's last token) or ``"mean"`` (mean over its tokens).

    Returns:
        The unit directions with their provenance.

    Raises:
        ValueError: For an unknown position, a block index out of range, or bad pairs.
    """
    import valuegym

    if position not in POSITIONS:
        raise ValueError(f"position {position!r}: expected one of {list(POSITIONS)}")
    pair_set = read_pairs(pairs)
    encoder = _load_encoder(model)
    built = list(range(encoder.n_blocks)) if layers is None else sorted(set(layers))
    outside = [block for block in built if not 0 <= block < encoder.n_blocks]
    if outside or not built:
        raise ValueError(
            f"layers {list(layers or [])}: block indices must lie in 0..{encoder.n_blocks - 1}"
        )
    vectors: dict[str, np.ndarray] = {}
    raw_norms: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for variable in pair_set.variables:
        chosen = [(low, high) for name, low, high in pair_set.rows if name == variable]
        states = encoder.block_states([text for pair in chosen for text in pair], position)
        difference = (states[1::2] - states[0::2]).mean(axis=0)  # (n_blocks, hidden)
        norms = np.linalg.norm(difference, axis=1)
        unit = np.zeros_like(difference, dtype=np.float32)
        for block in built:
            if norms[block] > 0:
                unit[block] = difference[block] / norms[block]
        vectors[variable] = unit
        raw_norms[variable] = [float(norms[b]) if b in built else 0.0 for b in range(len(norms))]
        counts[variable] = len(chosen)
    model_path = _model_file(model)
    provenance: dict[str, Any] = {
        "model": model_label(model),
        "model_path": str(model_path) if model_path is not None else None,
        "model_sha256": file_sha256(model_path) if model_path is not None else None,
        "architecture": encoder.architecture,
        "pairs": pair_set.source,
        "pairs_sha256": pair_set.sha256,
        "n_pairs": counts,
        "position": position,
        "text_wrapping": TEXT_WRAPPING,
        "layers": built,
        "n_blocks": encoder.n_blocks,
        "hidden_size": encoder.hidden_size,
        "raw_norms": raw_norms,
        "strength_unit": "the raw norm of the mean difference at each block",
        "valuegym_version": valuegym.__version__,
    }
    return SteeringDirections(pair_set.variables, vectors, provenance)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file by renaming a finished temporary copy over it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@dataclass(frozen=True)
class SteeringDirections:
    """Unit steering directions per variable and block, with how they were built.

    Attributes:
        variables: The variables, e.g. ``("stress", "mood")``.
        vectors: Variable -> ``(n_blocks, hidden)`` float32, a unit vector per built block
            (zero rows for blocks not built).
        provenance: Model name, file and SHA-256, pair-set hash, pairs per variable, position
            rule, text wrapping, blocks built, hidden size, raw norms per block and the
            valuegym version (see :func:`build_directions`).
    """

    variables: tuple[str, ...]
    vectors: Mapping[str, np.ndarray]
    provenance: Mapping[str, Any]

    def scaled(self, variable: str, strength: float, block: int) -> np.ndarray:
        """``strength`` times the mean difference of ``variable`` at ``block``, float32.

        Args:
            variable: One of :attr:`variables`.
            strength: In units of the block's raw norm (1 adds the mean difference).
            block: A built block index.

        Returns:
            The ``(hidden,)`` vector.

        Raises:
            ValueError: For an unknown variable or a block that was not built.
        """
        if variable not in self.vectors:
            raise ValueError(f"variable {variable!r}: not among {list(self.variables)}")
        if block not in self.provenance["layers"]:
            raise ValueError(f"block {block}: not built (built: {self.provenance['layers']})")
        norm = self.provenance["raw_norms"][variable][block]
        return (np.float32(strength * norm) * self.vectors[variable][block]).astype(np.float32)

    def steering(self, strengths: Mapping[str, float], layers: Sequence[int]) -> Steering:
        """What to add at each block for the given strengths.

        ``additions[i] = sum_v strengths[v] * raw_norm[v][i] * vectors[v][i]`` for ``i`` in
        ``layers``: strength 1 adds the variable's mean difference at each block.

        Args:
            strengths: Variable -> strength (variables left out add nothing).
            layers: Block indices (0-based, transformers numbering), all built.

        Returns:
            The steering, labelled e.g. ``"stress=+0.80 mood=-0.20"``.
        """
        from valuegym.lm.steering import Steering

        hidden = int(self.provenance["hidden_size"])
        additions = {}
        for block in layers:
            total = np.zeros(hidden, dtype=np.float32)
            for variable, strength in strengths.items():
                total += self.scaled(variable, strength, block)
            additions[int(block)] = total
        label = " ".join(f"{variable}={strength:+.2f}" for variable, strength in strengths.items())
        return Steering(additions=additions, label=label)

    def save(self, folder: str | Path) -> Path:
        """Write ``directions.npz`` and ``directions.json`` (the provenance) into a folder.

        Args:
            folder: The folder; created if missing.

        Returns:
            The folder.
        """
        target = Path(folder)
        target.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        arrays: dict[str, Any] = {variable: self.vectors[variable] for variable in self.variables}
        np.savez(buffer, **arrays)
        _write_atomic(target / VECTORS_FILE, buffer.getvalue())
        document = {"variables": list(self.variables), **self.provenance}
        text = json.dumps(document, indent=1, sort_keys=True) + "\n"
        _write_atomic(target / PROVENANCE_FILE, text.encode("utf-8"))
        return target

    @classmethod
    def load(cls, folder: str | Path, *, model_sha256: str | None = None) -> SteeringDirections:
        """Read directions written by :meth:`save`.

        Args:
            folder: The folder.
            model_sha256: The SHA-256 of the model they will steer; a set built on another
                model file is refused.

        Returns:
            The directions.

        Raises:
            ValueError: (one line) If the directions were built on another model file.
        """
        source = Path(folder)
        document = json.loads((source / PROVENANCE_FILE).read_text(encoding="utf-8"))
        built_on = document.get("model_sha256")
        if model_sha256 is not None and built_on != model_sha256:
            raise ValueError(
                f"{source}: directions built on model sha256 {built_on}, not on this model's "
                f"{model_sha256}; rebuild them with `valuegym steer build --model MODEL`"
            )
        variables = tuple(document.pop("variables"))
        with np.load(source / VECTORS_FILE) as arrays:
            vectors = {variable: arrays[variable].astype(np.float32) for variable in variables}
        return cls(variables, vectors, document)

    def save_control_vector(
        self, path: str | Path, variable: str, strength: float, layers: Sequence[int]
    ) -> Path:
        """Write one variable at one strength as a llama.cpp control-vector GGUF.

        The file holds ``general.architecture = "controlvector"``,
        ``controlvector.model_hint`` (the model's architecture), ``controlvector.layer_count``
        and one float32 tensor ``direction.<i>`` per block ``i`` (llama.cpp adds it to the
        output of its layer ``i``, the same block), holding :meth:`scaled`. Load it with
        llama.cpp's ``--control-vector``.

        Args:
            path: The ``.gguf`` file to write.
            variable: One of :attr:`variables`.
            strength: In units of each block's raw norm.
            layers: Built block indices, each >= 1 (llama.cpp cannot steer block 0).

        Returns:
            The path.

        Raises:
            ValueError: For block 0, a block not built or an unknown variable.
        """
        import gguf

        if any(block < 1 for block in layers):
            raise ValueError(
                f"layers {list(layers)}: llama.cpp control vectors cannot hold block 0"
            )
        tensors = {block: self.scaled(variable, strength, block) for block in sorted(layers)}
        target = Path(path)
        writer_path = target.with_name(f".{target.name}.partial")
        writer = gguf.GGUFWriter(str(writer_path), arch="controlvector")
        writer.add_string("controlvector.model_hint", str(self.provenance.get("architecture", "")))
        writer.add_int32("controlvector.layer_count", len(tensors))
        for block, tensor in tensors.items():
            writer.add_tensor(f"direction.{block}", tensor)
        try:
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
            writer.close()
            os.replace(writer_path, target)
        finally:
            if writer_path.exists():
                writer_path.unlink()
        return target
