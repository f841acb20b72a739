"""The ``transformers`` backend: any Hugging Face causal language model, on CPU or GPU.

Prompts of a batch are left-padded and decoded together in one loop over a key-value
cache; each step's last-position logits give the drawn token and its entropies (the
shared :class:`~valuegym.lm.sampling.TokenSampler`), so per-prompt temperatures
and seeds behave exactly as in the ``llamacpp`` backend. Steering vectors are added by
forward hooks on the decoder layers (:mod:`valuegym.lm.huggingface_steering`), per row, so
one batch may mix steerings.

A GGUF file (the embedded default model) is dequantised by transformers on first load,
which takes tens of seconds; the converted weights are then cached as safetensors under
the user cache folder (``$XDG_CACHE_HOME/valuegym`` or ``~/.cache/valuegym``), keyed by
the GGUF file's content hash, and later loads read the cache in about a second.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valuegym.lm.base import Generation, LanguageModel, LanguageModelUnavailableError
from valuegym.lm.generations import GenerationBuilder
from valuegym.lm.models import (
    EMBEDDED_MODELS,
    file_sha256,
    model_label,
    resolve_gguf_path,
    user_cache_dir,
)
from valuegym.lm.prompts import CheckedPrompt
from valuegym.lm.sampling import TokenSampler, Truncation
from valuegym.lm.steering import Steering

if TYPE_CHECKING:
    import torch

    from valuegym.lm.huggingface_steering import SteeringHooks

__all__ = ["TransformersModel", "converted_gguf_folder", "user_cache_dir"]

# Bump when the layout of a converted-model folder changes, so stale caches are ignored.
_CONVERSION_FORMAT = 1


def converted_gguf_folder(gguf_path: Path, cache_dir: Path | None = None) -> Path:
    """A Hugging Face model folder holding the dequantised weights of a GGUF file.

    Converts on first use and caches the result; the folder name holds the file's size and
    content hash, so an edited file is converted again. Writing goes to a temporary folder
    renamed into place, so concurrent processes never see a half-written cache.

    Args:
        gguf_path: The GGUF file.
        cache_dir: Root of the cache; defaults to :func:`user_cache_dir`.

    Returns:
        The folder, loadable with ``from_pretrained``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = (cache_dir or user_cache_dir()) / "transformers"
    key = f"{gguf_path.stem}-{gguf_path.stat().st_size}-{file_sha256(gguf_path)[:16]}"
    folder = root / f"{key}-v{_CONVERSION_FORMAT}"
    if (folder / "config.json").is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent, gguf_file=gguf_path.name, dtype="float32"
    )
    # The weights are already dequantised to float32; only the GGUF quantiser marker
    # blocks save_pretrained, and the saved copy must load as a plain checkpoint.
    model.hf_quantizer = None  # type: ignore[assignment]  # torch types it as a submodule
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / "config.json").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _resolve_source(model: str | Path, cache_dir: Path | None) -> str | Path:
    """What ``from_pretrained`` loads for a model name, path or id."""
    text = str(model)
    path = Path(text).expanduser()
    if text in EMBEDDED_MODELS or path.suffix.lower() == ".gguf":
        return converted_gguf_folder(resolve_gguf_path(model), cache_dir)
    if path.is_dir():
        return path
    if path.is_absolute() or text.startswith((".", "~")):
        raise ValueError(f"model {text!r}: no such model folder or .gguf file")
    return text  # a Hugging Face model id


class TransformersModel(LanguageModel):
    """A Hugging Face causal language model with true batched generation.

    Args:
        model: An embedded model name (default ``"smollm2-135m"``), a ``.gguf`` file, a
            local model folder, or a Hugging Face model id.
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
            ``"cuda:N"``.
        dtype: Weight dtype name (``"float32"``, ``"bfloat16"``, ``"float16"``, ``"auto"``);
            ``None`` is float32 on CPU and the checkpoint's own dtype on a GPU.
        cache_dir: Root folder of the converted-GGUF cache; defaults to :func:`user_cache_dir`.
        score_batch_size: Continuations scored per forward pass in :meth:`score`.

    Raises:
        LanguageModelUnavailableError: If torch or transformers is not installed, or the model
            cannot be loaded.
    """

    supports_steering = True

    def __init__(
        self,
        model: str | Path = "smollm2-135m",
        *,
        device: str = "auto",
        dtype: str | None = None,
        cache_dir: str | Path | None = None,
        score_batch_size: int = 16,
    ) -> None:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as error:
            raise LanguageModelUnavailableError(
                "backend 'transformers' needs torch and transformers (and gguf, accelerate "
                "for GGUF files): pip install 'valuegym[lm]'"
            ) from error
        if score_batch_size < 1:
            raise ValueError(f"score_batch_size: must be >= 1 (got {score_batch_size})")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype is None:
            dtype = "float32" if self.device.type == "cpu" else "auto"
        source = _resolve_source(model, Path(cache_dir) if cache_dir is not None else None)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
        except OSError as error:
            raise LanguageModelUnavailableError(
                f"model {str(model)!r}: could not be loaded by transformers ({error})"
            ) from error
        self._model.to(self.device).eval()  # type: ignore[arg-type]  # transformers' stub
        self.name = f"transformers:{model_label(model)}"
        self.score_batch_size = score_batch_size
        self._eos_ids = self._end_of_sequence_ids()
        # The end token a scored reply closes with: the tokenizer's (a chat model's end of turn).
        tokenizer_eos = self._tokenizer.eos_token_id
        self._end_id = tokenizer_eos if tokenizer_eos is not None else min(self._eos_ids)
        pad_id = self._tokenizer.pad_token_id
        self._pad_id = pad_id if pad_id is not None else min(self._eos_ids, default=0)

    def _end_of_sequence_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        for source in (self._model.generation_config.eos_token_id, self._tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif source is not None:
                ids.update(source)
        return frozenset(ids)

    def __repr__(self) -> str:
        return f"TransformersModel(name={self.name!r}, device={str(self.device)!r})"

    def _encode_prompt(self, prompt: CheckedPrompt, where: str) -> list[int]:
        if isinstance(prompt, str):
            ids = self._tokenizer(prompt, add_special_tokens=True)["input_ids"]
        else:
            text = self._tokenizer.apply_chat_template(
                prompt, add_generation_prompt=True, tokenize=False
            )
            # The template already holds every special token the model expects.
            ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"{where}: the prompt encodes to no tokens")
        return list(ids)

    def _left_padded(self, sequences: Sequence[Sequence[int]]) -> tuple[torch.Tensor, ...]:
        import torch

        width = max(len(sequence) for sequence in sequences)
        input_ids = torch.full((len(sequences), width), self._pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            if sequence:
                input_ids[row, width - len(sequence) :] = torch.tensor(sequence)
                attention_mask[row, width - len(sequence) :] = 1
        position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
        return (
            input_ids.to(self.device),
            attention_mask.to(self.device),
            position_ids.to(self.device),
        )

    def _generate(
        self,
        prompts: tuple[CheckedPrompt, ...],
        *,
        max_new_tokens: int,
        temperatures: np.ndarray,
        seed: int | tuple[np.random.SeedSequence, ...] | None,
        stop: tuple[str, ...],
        truncation: Truncation,
        steering: tuple[Steering | None, ...] | None = None,
    ) -> list[Generation]:
        """Generate every prompt in one batch; K copies of a prompt share one prompt pass.

        Steered rows get their vectors at every position, prompt and generated tokens; copies
        of a prompt share a prompt pass only when their steerings are identical. See
        :meth:`LanguageModel._generate`.
        """
        import torch

        encoded = [self._encode_prompt(p, f"prompts[{i}]") for i, p in enumerate(prompts)]
        if not encoded:
            return []
        sampler = TokenSampler(temperatures, seed, truncation)
        n_prompts = len(encoded)
        builders = [
            GenerationBuilder(
                max_new_tokens,
                detokenize=self._decode,
                is_end=self._eos_ids.__contains__,
                stops=stop,
            )
            for _ in encoded
        ]
        active = list(range(n_prompts)) if max_new_tokens > 0 else []
        steerings = steering or (None,) * n_prompts
        # Identical prompts (K samples) share one prompt pass; its cache rows are repeated.
        distinct: dict[tuple[tuple[int, ...], bytes | None], int] = {}
        source_rows = [
            distinct.setdefault((tuple(ids), s.key() if s else None), len(distinct))
            for ids, s in zip(encoded, steerings, strict=True)
        ]
        first_rows = [steerings[source_rows.index(row)] for row in range(len(distinct))]
        hooks = self._steering_hooks(first_rows)
        with torch.inference_mode(), self._hooked(hooks):
            input_ids, attention_mask, position_ids = self._left_padded(
                [ids for ids, _ in distinct]
            )
            outputs = self._model(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=True,
                logits_to_keep=1,
            )
            self._prompt_tokens_read += sum(len(ids) for ids, _ in distinct)
            if len(distinct) < n_prompts:
                rows = torch.tensor(source_rows, device=self.device)
                if hooks is not None:
                    hooks.select_rows(rows)
                outputs.past_key_values.reorder_cache(rows)
                outputs.logits = outputs.logits[rows]
                attention_mask = attention_mask[rows]
                position_ids = position_ids[rows]
            while active:
                last_logits = outputs.logits[:, -1, :]
                if len(active) < n_prompts:
                    last_logits = last_logits[active]
                draw = sampler.draw(last_logits.float().cpu().numpy(), active)
                next_ids = torch.full((n_prompts, 1), self._pad_id, dtype=torch.long)
                for row, prompt_index in enumerate(active):
                    next_ids[prompt_index, 0] = builders[prompt_index].add(draw, row)
                active = [prompt_index for prompt_index in active if builders[prompt_index].live]
                if not active:
                    break  # no forward pass for tokens nobody draws
                attention_mask = torch.cat(
                    [attention_mask, attention_mask.new_ones((n_prompts, 1))], dim=1
                )
                position_ids = position_ids[:, -1:] + 1
                outputs = self._model(
                    input_ids=next_ids.to(self.device),
                    attention_mask=attention_mask,
                    position_ids=position_ids,
                    past_key_values=outputs.past_key_values,
                    use_cache=True,
                )
        return [builder.build() for builder in builders]

    def _steering_hooks(self, steerings: Sequence[Steering | None]) -> SteeringHooks | None:
        """Hooks adding each row's steering (``None`` when no row is steered)."""
        if all(steering is None for steering in steerings):
            return None
        from valuegym.lm.huggingface_steering import SteeringHooks

        return SteeringHooks(
            self._model.model.layers,
            steerings,
            hidden_size=int(self._model.config.hidden_size),
            device=self.device,
            dtype=self._model.dtype,
        )

    @staticmethod
    def _hooked(hooks: SteeringHooks | None) -> contextlib.AbstractContextManager[Any]:
        return hooks.hooked() if hooks is not None else contextlib.nullcontext()

    def _decode(self, token_ids: Sequence[int]) -> str:
        return str(self._tokenizer.decode(list(token_ids), skip_special_tokens=True))

    def _score(
        self,
        prompt: CheckedPrompt,
        continuations: tuple[str, ...],
        steering: tuple[Steering | None, ...] | None = None,
    ) -> np.ndarray:
        """Log-likelihood of each continuation given the prompt, at temperature 1.

        The prompt and each continuation are tokenised separately (a continuation's tokens
        do not merge with the prompt's), and the continuations are scored in batches. After
        chat messages a continuation is scored as a whole reply (its end-of-sequence token
        included, so a terse reply and a cut-off one differ); after plain text it is a
        continuation, without an end token. A steering is added at every position.
        """
        import torch

        prompt_ids = self._encode_prompt(prompt, "prompt")
        continuation_ids = []
        for text in continuations:
            ids = self._tokenizer(text, add_special_tokens=False)["input_ids"]
            continuation_ids.append(ids if isinstance(prompt, str) else [*ids, self._end_id])
        scores = np.zeros(len(continuation_ids))
        hooks = self._steering_hooks(steering or (None,))
        with torch.inference_mode(), self._hooked(hooks):
            for start in range(0, len(continuation_ids), self.score_batch_size):
                chunk = continuation_ids[start : start + self.score_batch_size]
                scores[start : start + len(chunk)] = self._score_chunk(prompt_ids, chunk)
        return scores

    def _score_chunk(self, prompt_ids: list[int], chunk: list[list[int]]) -> np.ndarray:
        import torch

        longest = max(len(ids) for ids in chunk)
        if longest == 0:
            return np.zeros(len(chunk))
        input_ids, attention_mask, position_ids = self._left_padded(
            [prompt_ids + ids for ids in chunk]
        )
        self._prompt_tokens_read += sum(len(prompt_ids) + len(ids) for ids in chunk)
        # Left padding right-aligns every continuation, so the logits predicting them are
        # among the last longest+1 positions (the very last predicts past the end).
        logits = self._model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False,
            logits_to_keep=longest + 1,
        ).logits[:, :-1, :]
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        targets = input_ids[:, -longest:]
        token_log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu().numpy()
        return np.array(
            [token_log_probs[row, longest - len(ids) :].sum() for row, ids in enumerate(chunk)]
        )
