"""The ``valuegym`` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import valuegym

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``valuegym`` command."""
    parser = argparse.ArgumentParser(
        prog="valuegym",
        description=(
            "valuegym: social environments where agents hold values with diminishing returns, "
            "satiation, mood and stress, and language-model agents whose utterance entropy is "
            "measured against their value state."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {valuegym.__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
