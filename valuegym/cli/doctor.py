"""``valuegym doctor``: check that this installation can run the demo, and what it runs on."""

from __future__ import annotations

import argparse

__all__ = ["DESCRIPTION", "HELP", "add_arguments", "run"]

HELP = "check that this installation can run the demo, and what it runs on"
DESCRIPTION = (
    "Load the default model with each installed local LM backend and generate a few "
    "tokens in a child process (a crash such as SIGILL is reported, not fatal); print "
    "versions, CPU features, llama.cpp's system info, the model file's SHA-256 and "
    "tokens/s. Exit status 1, with one line per problem and what to do, when "
    "something the demo needs does not work."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``valuegym doctor``.

    Args:
        parser: The command's parser.
    """
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        choices=("llamacpp", "transformers"),
        help="probe only this backend (may repeat; default: every installed local backend)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds each probe may take (default 120)"
    )


def run(args: argparse.Namespace) -> int:
    """Probe the backends and print what works.

    Args:
        args: The parsed arguments.

    Returns:
        The exit status: 1 when something the demo needs does not work, else 0.
    """
    from valuegym.doctor import run_doctor

    return run_doctor(backends=args.backends, timeout_s=args.timeout)
