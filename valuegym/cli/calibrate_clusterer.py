"""``valuegym calibrate-clusterer``: how often a clusterer merges or splits meanings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from valuegym.cli.common import UsageError

if TYPE_CHECKING:
    from valuegym.measures.entailment import EntailmentJudge

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "measure how often a clusterer merges or splits meanings"
DESCRIPTION = (
    "Cluster labelled sentence pairs (the set shipped with valuegym, or --pairs) and "
    "print each clusterer's accuracy, false-merge rate (different meanings put "
    "together, lowering semantic entropy) and false-split rate (one meaning split, "
    "raising it), per category of pair."
)

_CALIBRATED_CLUSTERERS = ("text", "embedding", "entailment-lm", "entailment-nli")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym calibrate-clusterer``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "--clusterer",
        action="append",
        choices=_CALIBRATED_CLUSTERERS,
        help="clusterer to check; may repeat (default: text and embedding). entailment-lm "
        "asks a valuegym language model, entailment-nli an NLI cross-encoder (--nli-model)",
    )
    parser.add_argument(
        "--pairs", type=Path, help="CSV of labelled pairs with the columns a,b,same,category"
    )
    parser.add_argument(
        "--threshold",
        type=float,
        action="append",
        help="embedding: cosine similarity; entailment: p(entails) both ways; may repeat "
        "(default: the clusterer's)",
    )
    parser.add_argument("--nli-model", help="entailment-nli: local folder or model id")
    parser.add_argument(
        "--lm-backend", help="entailment-lm: llamacpp, transformers or openai (default: auto)"
    )
    parser.add_argument(
        "--lm-model", default=None, help="entailment-lm: model name or path (default: embedded)"
    )


def _calibration_judge(kind: str, args: argparse.Namespace) -> EntailmentJudge | None:
    """The entailment judge an ``entailment-*`` clusterer asks; ``None`` for the others."""
    if kind == "entailment-nli":
        from valuegym.measures.entailment import NLIJudge

        if not args.nli_model:
            raise UsageError("--clusterer entailment-nli: needs --nli-model FOLDER_OR_ID")
        return NLIJudge(args.nli_model)
    if kind == "entailment-lm":
        from valuegym.lm import DEFAULT_MODEL, load_language_model
        from valuegym.measures.entailment import LanguageModelJudge

        return LanguageModelJudge(
            load_language_model(args.lm_backend, args.lm_model or DEFAULT_MODEL)
        )
    return None


def run(args: argparse.Namespace) -> int:
    """Calibrate each clusterer at each threshold and print its table.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.measures.calibration import calibrate, load_pairs
    from valuegym.measures.clustering import get_clusterer

    try:
        pairs = load_pairs(args.pairs)
    except (OSError, ValueError) as error:
        raise UsageError(f"--pairs: {error}") from None
    for kind in args.clusterer or ["text", "embedding"]:
        judge = _calibration_judge(kind, args)
        thresholds = [None] if kind == "text" else (args.threshold or [None])
        for threshold in thresholds:
            if judge is not None:
                clusterer = get_clusterer("entailment", judge=judge, threshold=threshold)
            elif kind == "embedding":
                clusterer = get_clusterer("embedding", threshold=threshold)
            else:
                clusterer = get_clusterer("text")
            calibration = calibrate(clusterer, pairs)
            settings = {k: v for k, v in calibration.clusterer.items() if k != "question"}
            print(f"{kind}: {settings}, {len(pairs)} pairs in {calibration.seconds:.1f} s")
            print(calibration.to_markdown() + "\n")
    return 0
