"""``valuegym doctor``: check that this installation can run the demo, and say what it runs on.

Each installed local language-model backend loads the default model and generates a few
tokens **in a child process** (``python -m valuegym.doctor --probe BACKEND``), so a crash of
a native library, such as llama.cpp dying with SIGILL on an instruction the CPU refuses, is
reported as a failure naming the signal and what to do, not discovered as a dead terminal.
The doctor also prints the versions of valuegym and the packages it relies on, the CPU's
model and the flags that decide llama.cpp's kernels, llama.cpp's system info, the model file
with its SHA-256, and the tokens per second measured.

Only what the demo needs (the default backend, its model, the shipped quickstart scenario)
decides the exit status; other backends that fail are reported as warnings.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TextIO

import valuegym
from valuegym.lm import (
    BACKENDS,
    LanguageModelError,
    available_backends,
    default_backend,
    load_language_model,
)
from valuegym.lm.cpu import (
    AMX_OVERRIDE_VARIABLE,
    cpu_flags,
    cpu_model,
    relevant_cpu_flags,
    use_extra_buffer_types,
)
from valuegym.lm.models import DEFAULT_MODEL, EMBEDDED_MODELS, file_sha256, resolve_gguf_path
from valuegym.manifest import git_commit, package_versions
from valuegym.scenarios.catalog import SHIPPED_DIR, shipped_scenarios
from valuegym.scenarios.validation import ScenarioError, load_scenario

__all__ = ["ProbeResult", "describe_exit", "probe_command", "run_doctor", "run_probe"]

#: Backends that run a model in this process (``openai`` needs a server to be probed).
LOCAL_BACKENDS: Final = ("llamacpp", "transformers")
#: Tokens each probe generates.
PROBE_TOKENS: Final = 16
_PROBE_PROMPT: Final = "The capital of France is"

_SIGILL_REMEDY: Final = (
    "the CPU refused an instruction llama.cpp was built to use (on CPUs with AMX, "
    "llama.cpp's AMX kernels; ggml-org/llama.cpp issue #28756): run with "
    f"{AMX_OVERRIDE_VARIABLE}=0, or rebuild llama-cpp-python for this CPU with "
    "CMAKE_ARGS='-DGGML_NATIVE=OFF' pip install --no-cache-dir --force-reinstall "
    "llama-cpp-python"
)


@dataclass(frozen=True)
class ProbeResult:
    """What a backend's child process did.

    Attributes:
        backend: The backend probed.
        ok: Whether it loaded the model and generated.
        problem: What went wrong (empty when ``ok``).
        remedy: What to do about it (empty when ``ok``).
        info: What the child reported: timings, tokens, the backend's build.
    """

    backend: str
    ok: bool
    problem: str = ""
    remedy: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_per_second(self) -> float:
        """Generated tokens per second (0 when nothing was generated)."""
        seconds = self.info.get("generate_seconds", 0.0)
        return self.info.get("tokens", 0) / seconds if seconds > 0 else 0.0


def probe_command(backend: str, model: str) -> list[str]:
    """The command of a child process that probes one backend (see :func:`_probe`).

    Args:
        backend: A backend name.
        model: The model to load.

    Returns:
        The argument list.
    """
    return [sys.executable, "-m", "valuegym.doctor", "--probe", backend, "--model", model]


def describe_exit(returncode: int) -> tuple[str, str]:
    """What a child's exit status means, and what to do about it.

    Args:
        returncode: ``subprocess`` return code (negative: killed by that signal).

    Returns:
        ``(problem, remedy)``.
    """
    if returncode >= 0:
        return (
            f"the child process exited with status {returncode}",
            "run `python -m valuegym.doctor --probe BACKEND` to see its whole output",
        )
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    if name == "SIGILL":
        return "killed by SIGILL (illegal instruction)", _SIGILL_REMEDY
    if name == "SIGKILL":
        return "killed by SIGKILL", "probably out of memory: free memory or use a smaller model"
    return f"killed by {name}", "a native library crashed: reinstall the backend's package"


def run_probe(backend: str, command: Sequence[str], timeout_s: float) -> ProbeResult:
    """Run a probe's child process and read its report (a JSON line on stdout).

    Args:
        backend: The backend probed.
        command: The child's command.
        timeout_s: How long the child may take.

    Returns:
        The result; a crash, a timeout or a reported error makes it a failure.
    """
    try:
        completed = subprocess.run(
            list(command), capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(
            backend,
            False,
            f"no answer within {timeout_s:g} s",
            "the machine may be overloaded; rerun with a longer --timeout",
        )
    lines = completed.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        report = {}
    if completed.returncode != 0 or "error" in report or "tokens" not in report:
        if "error" in report:
            return ProbeResult(backend, False, report["error"], report.get("remedy", ""))
        problem, remedy = describe_exit(completed.returncode)
        said = completed.stderr.strip().splitlines()
        return ProbeResult(backend, False, problem + (f" ({said[-1]})" if said else ""), remedy)
    return ProbeResult(backend, True, info=report)


def _probe(backend: str, model: str) -> dict[str, Any]:
    """Load ``model`` with ``backend`` and generate a few tokens (runs in the child)."""
    started = time.perf_counter()
    try:
        language_model = load_language_model(backend, model)
    except (LanguageModelError, ValueError, OSError) as error:
        return {"error": f"cannot load {model!r}: {error}"}
    loaded = time.perf_counter()
    [generation] = language_model.generate(
        [_PROBE_PROMPT], max_new_tokens=PROBE_TOKENS, temperature=0.0, seed=0
    )
    generated = time.perf_counter()
    report: dict[str, Any] = {
        "load_seconds": loaded - started,
        "generate_seconds": generated - loaded,
        "tokens": generation.length,
        "text": generation.text,
    }
    if backend == "llamacpp":
        import llama_cpp

        info = llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip()
        report["system_info"] = info
    language_model.close()
    return report


def _versions_line() -> str:
    commit = git_commit()
    versions = package_versions()
    parts = [
        f"valuegym {valuegym.__version__}" + (f" (git {commit[:12]})" if commit else ""),
        f"Python {sys.version.split()[0]}",
        *(f"{name} {version or 'not installed'}" for name, version in versions.items()),
    ]
    return ", ".join(parts)


def run_doctor(
    *,
    backends: Sequence[str] | None = None,
    model: str = DEFAULT_MODEL,
    command_for: Callable[[str, str], Sequence[str]] = probe_command,
    timeout_s: float = 120.0,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Check the installation and print what it runs on.

    Args:
        backends: Backends to probe (default: every installed local backend).
        model: The model each backend loads.
        command_for: The child's command for ``(backend, model)``; replaceable for tests.
        timeout_s: How long each child may take.
        out: Where the report goes (default: standard output).
        err: Where the problems go, one line each with what to do (default: standard error).

    Returns:
        0 when everything the demo needs works, else 1.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    installed = available_backends()
    demo_backend = default_backend()
    problems: list[str] = []
    warnings: list[str] = []
    flags = cpu_flags()
    amx = any(flag.startswith("amx") for flag in flags)
    print(f"versions: {_versions_line()}", file=out)
    print(
        f"cpu: {cpu_model()}; flags: {' '.join(relevant_cpu_flags(flags)) or '(none relevant)'}",
        file=out,
    )
    try:
        extra = use_extra_buffer_types(flags)
        print(
            f"llama.cpp extra buffer types: {'on' if extra else 'off'} (CPU "
            f"{'advertises' if amx else 'does not advertise'} AMX; {AMX_OVERRIDE_VARIABLE}=0/1 "
            "overrides)",
            file=out,
        )
    except ValueError as error:
        problems.append(f"{error}; set it to 0 or 1, or unset it")
    try:
        path = resolve_gguf_path(model)
        print(f"model: {model}: {path} sha256 {file_sha256(path)}", file=out)
    except (LanguageModelError, ValueError) as error:
        # An embedded model's error already names the one command that installs it.
        problems.append(str(error) if model in EMBEDDED_MODELS else f"{error}; check the path")
    try:
        load_scenario(SHIPPED_DIR / "quickstart.yaml")
        print(f"scenarios: {len(shipped_scenarios())} shipped, quickstart valid", file=out)
    except ScenarioError as error:
        problems.append(f"shipped scenario quickstart: {error}; reinstall valuegym")
    wanted = backends if backends is not None else LOCAL_BACKENDS
    for backend in wanted:
        if backend not in installed:
            line = f"backend {backend} is not installed: {BACKENDS[backend][1]}"
            (problems if backend == demo_backend else warnings).append(line)
    # One child at a time, so that each measures its tokens/s on an otherwise idle CPU.
    for backend in (backend for backend in wanted if backend in installed):
        result = run_probe(backend, command_for(backend, model), timeout_s)
        if not result.ok:
            line = f"backend {backend}: {result.problem}" + (
                f"; {result.remedy}" if result.remedy else ""
            )
            (problems if backend == demo_backend else warnings).append(line)
            print(f"{backend}: FAILED ({result.problem})", file=out)
            continue
        if "system_info" in result.info:
            print(f"llama.cpp system info: {result.info['system_info']}", file=out)
        print(
            f"{backend}: ok, {result.info['tokens']} tokens in "
            f"{result.info['generate_seconds']:.2f} s ({result.tokens_per_second:.1f} tokens/s), "
            f"model loaded in {result.info['load_seconds']:.2f} s",
            file=out,
        )
    if "openai" in installed and (backends is None or "openai" in backends):
        print("openai: installed (standard library); needs a server, not probed", file=out)
    for line in warnings:
        print(f"warning: {line}", file=err)
    for line in problems:
        print(f"problem: {line}", file=err)
    if problems:
        print(f"the demo cannot run here: {len(problems)} problem(s), listed above", file=err)
        return 1
    print("ok: everything the demo needs works", file=out)
    return 0


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a valuegym doctor probe (a child process)")
    parser.add_argument("--probe", required=True, choices=LOCAL_BACKENDS)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    report = _probe(args.probe, args.model)
    print(json.dumps(report))
    return 1 if "error" in report else 0


if __name__ == "__main__":
    raise SystemExit(_main())
