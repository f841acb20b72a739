"""``valuegym calibrate-valence``: how often a valence judge misreads a message's tone."""

from __future__ import annotations

import argparse
from pathlib import Path

from valuegym.cli.common import UsageError

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "measure how often a valence judge misreads a message's tone"
DESCRIPTION = (
    "Judge labelled chat messages (the held-out set shipped with valuegym, or --items) and "
    "print each judge's accuracy and mean valence per label (positive, neutral, negative), "
    "its overall accuracy and the correlation of its valence with the label. A valence "
    "above the neutral band (--band) reads as positive, below its negative as negative."
)

_JUDGES = ("embedding", "lm")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym calibrate-valence``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "--judge",
        action="append",
        choices=_JUDGES,
        help="judge to check; may repeat (default: embedding). embedding compares the "
        "sentence embedding with labelled anchors, lm asks a valuegym language model "
        "(--lm-backend, --lm-model) and reads its scored answer",
    )
    parser.add_argument(
        "--items",
        type=Path,
        metavar="FILE",
        help="CSV of labelled messages with the columns text,label",
    )
    parser.add_argument(
        "--band",
        type=float,
        default=None,
        help="half-width of the neutral band of valence (default: 0.2)",
    )
    parser.add_argument("--lm-backend", help="lm: llamacpp, transformers or openai (default: auto)")
    parser.add_argument(
        "--lm-model", default=None, help="lm: model name or path (default: embedded)"
    )


def run(args: argparse.Namespace) -> int:
    """Calibrate each judge and print its table.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    from valuegym.measures.calibration import VALENCE_NEUTRAL_BAND, calibrate_valence
    from valuegym.measures.valence import get_valence_judge, load_valence_items

    try:
        items = load_valence_items(args.items)
    except (OSError, ValueError) as error:
        raise UsageError(f"--items: {error}") from None
    band = VALENCE_NEUTRAL_BAND if args.band is None else args.band
    if not 0.0 <= band < 1.0:
        raise UsageError(f"--band: must be in [0, 1) (got {band})")
    for kind in args.judge or ["embedding"]:
        if kind == "lm":
            from valuegym.lm import DEFAULT_MODEL, load_language_model

            judge = get_valence_judge(
                "lm", load_language_model(args.lm_backend, args.lm_model or DEFAULT_MODEL)
            )
        else:
            judge = get_valence_judge("embedding")
        calibration = calibrate_valence(judge, items, band=band)
        settings = {k: v for k, v in calibration.judge.items() if k != "question"}
        print(f"{kind}: {settings}, {len(items)} messages in {calibration.seconds:.1f} s")
        print(calibration.to_markdown() + "\n")
    return 0
