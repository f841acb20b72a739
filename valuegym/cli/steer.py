"""``valuegym steer build``: steering directions from contrastive pairs, and control vectors."""

from __future__ import annotations

import argparse
from pathlib import Path

from valuegym.cli.common import UsageError

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "build steering directions (activation addition) from contrastive pairs"
DESCRIPTION = (
    "build: read contrastive pairs (the calm/stressed and content/upset statements shipped "
    "with valuegym, or --pairs), run each text through the model with transformers (a GGUF "
    "is dequantised) and take, per state variable and decoder block, the mean difference "
    "of the residual stream between the high and the low texts. Writes directions.npz "
    "(unit vectors) and directions.json (provenance: model SHA-256, pair-set hash, position "
    "rule, raw norms per block) into --output, and optionally llama.cpp control-vector GGUF "
    "files. Prints each block's raw norm (the unit of strength) and the cosine between the "
    "first two variables' directions. Blocks are numbered from 0 as in transformers: block "
    "i is the output of decoder layer i."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``build`` subcommand of ``valuegym steer``.

    Args:
        parser: The command's parser.
    """
    actions = parser.add_subparsers(dest="steer_action", metavar="ACTION", required=True)
    build = actions.add_parser(
        "build", help="build directions and write them to a folder", description=DESCRIPTION
    )
    build.add_argument(
        "--model", default="smollm2-135m", help="model name or path (default: %(default)s)"
    )
    build.add_argument(
        "--pairs",
        type=Path,
        metavar="CSV",
        help="contrastive pairs with the columns variable,low,high (default: the shipped set)",
    )
    build.add_argument(
        "--layers",
        metavar="I,J,...",
        help="block indices to build, 0-based, e.g. 10,11,12 (default: every block)",
    )
    build.add_argument(
        "--position",
        choices=("last", "mean"),
        default="last",
        help="token position: the text's last token, or the mean over its tokens "
        "(default: %(default)s)",
    )
    build.add_argument(
        "--output", type=Path, required=True, metavar="FOLDER", help="folder to write"
    )
    build.add_argument(
        "--control-vector",
        action="append",
        default=[],
        metavar="VARIABLE=STRENGTH",
        help="also write control_vector_VARIABLE_STRENGTH.gguf for llama.cpp (--control-vector) "
        "over the built blocks except block 0; strength 1 adds the mean difference; may repeat",
    )


def _layers(text: str | None) -> list[int] | None:
    """The block indices of ``--layers``."""
    if text is None:
        return None
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UsageError(f"--layers {text!r}: expected block indices, e.g. 10,11,12") from None
    if not layers or min(layers) < 0:
        raise UsageError(f"--layers {text!r}: expected block indices >= 0, e.g. 10,11,12")
    return layers


def _control_vectors(items: list[str]) -> list[tuple[str, float]]:
    """The ``(variable, strength)`` of each ``--control-vector``."""
    parsed = []
    for item in items:
        variable, separator, text = item.partition("=")
        try:
            strength = float(text)
        except ValueError:
            strength = float("nan")
        if not separator or not variable.strip() or strength != strength:
            raise UsageError(
                f"--control-vector {item!r}: expected VARIABLE=STRENGTH, e.g. stress=0.8"
            )
        parsed.append((variable.strip(), strength))
    return parsed


def run(args: argparse.Namespace) -> int:
    """Build the directions, save them and print their norms and cosines.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status, 0.
    """
    import numpy as np

    from valuegym.lm.base import LanguageModelUnavailableError
    from valuegym.lm.directions import build_directions

    layers = _layers(args.layers)
    control_vectors = _control_vectors(args.control_vector)
    if args.pairs is not None and not args.pairs.is_file():
        raise UsageError(f"--pairs {args.pairs}: no such file")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"--output {args.output}: is a file where a folder is needed")
    try:
        directions = build_directions(
            args.model, pairs=args.pairs, layers=layers, position=args.position
        )
    except (ValueError, LanguageModelUnavailableError) as error:
        raise UsageError(str(error)) from None
    unknown = sorted({v for v, _ in control_vectors} - set(directions.variables))
    if unknown:
        raise UsageError(
            f"--control-vector: unknown variable(s) {unknown} (known: {list(directions.variables)})"
        )
    folder = directions.save(args.output)
    provenance = directions.provenance
    built = list(provenance["layers"])
    variables = directions.variables
    header = "block  " + "  ".join(f"{f'{v} norm':>12}" for v in variables)
    pair = variables[:2] if len(variables) >= 2 else ()
    if pair:
        header += f"  {f'cos({pair[0]},{pair[1]})':>16}"
    print(
        f"{provenance['model']}: {provenance['n_blocks']} blocks, "
        f"hidden size {provenance['hidden_size']}, pairs {provenance['n_pairs']}, "
        f"position {provenance['position']}"
    )
    print(header)
    for block in built:
        line = f"{block:>5}  " + "  ".join(
            f"{provenance['raw_norms'][v][block]:>12.3f}" for v in variables
        )
        if pair:
            cosine = float(
                np.dot(directions.vectors[pair[0]][block], directions.vectors[pair[1]][block])
            )
            line += f"  {cosine:>16.3f}"
        print(line)
    print(f"directions: {folder}")
    exportable = [block for block in built if block >= 1]
    for variable, strength in control_vectors:
        path = folder / f"control_vector_{variable}_{strength:+g}.gguf"
        directions.save_control_vector(path, variable, strength, exportable)
        print(f"control vector: {path}")
    return 0
