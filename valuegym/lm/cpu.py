"""The CPU a model runs on: its cores, the threads llama.cpp gets, and its buffer types.

Cores: :func:`available_cores` counts the cores this process may run on (its affinity mask,
which a container, ``taskset`` or a batch scheduler may narrow), not the machine's.

Threads: llama.cpp's worker threads spin-wait for each other between operations, so a worker
that another busy process pushes off its core stalls all the others.
:func:`threads_for_free_cores` gives llama.cpp only the cores the processes running beside it
leave free (at least one).

Buffer types: llama-cpp-python builds llama.cpp with ``GGML_NATIVE=ON``, so
``-march=native`` compiles in llama.cpp's AMX matrix-multiply path on any CPU that advertises
AMX (``amx_tile``, ``amx_int8``, ``amx_bf16`` in ``/proc/cpuinfo``; Sapphire Rapids and later,
common on cloud machines). That path has an open upstream bug: tile permission is requested
on the main thread only and the tile configuration can be optimised away, so the first matrix
multiply in an OpenMP worker dies with SIGILL on ``tilezero`` (ggml-org/llama.cpp PR #26954, issue
#28756). The AMX kernels are reached only through llama.cpp's *extra buffer types* (the AMX
and weight-repacking buffers), so on a CPU that advertises AMX valuegym loads models with
``llama_model_params.use_extra_bufts = False``: the plain CPU buffers, which work everywhere.
Rebuilding with ``-DGGML_AMX_INT8=OFF`` does not help, as ``GGML_NATIVE=ON`` overrides it.

On CPUs without AMX nothing changes (extra buffer types stay on, weight repacking keeps its
speed). Set ``VALUEGYM_LLAMA_AMX=1`` to force the extra buffer types on (once upstream is
fixed), ``0`` to force them off.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

__all__ = [
    "AMX_OVERRIDE_VARIABLE",
    "available_cores",
    "cpu_flags",
    "cpu_model",
    "llama_extra_buffer_types",
    "llama_thread_count",
    "relevant_cpu_flags",
    "threads_for_free_cores",
    "use_extra_buffer_types",
]

#: The environment variable that overrides the buffer-type decision: ``1`` on, ``0`` off.
AMX_OVERRIDE_VARIABLE: Final = "VALUEGYM_LLAMA_AMX"

_CPUINFO: Final = Path("/proc/cpuinfo")
_RELEVANT_PREFIXES: Final = ("avx2", "avx512", "amx", "fma", "f16c")


def _cpuinfo_field(name: str) -> str | None:
    try:
        text = _CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def available_cores() -> int:
    """The CPU cores this process may run on: its affinity mask, else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity masks outside Linux
        return os.cpu_count() or 1


def llama_thread_count(environ: Mapping[str, str] | None = None) -> int:
    """The threads llama.cpp gets by default: the available cores, at most ``OMP_NUM_THREADS``.

    Ray sets ``OMP_NUM_THREADS`` to a task's CPUs and valuegym's local sweep workers set it to
    their share of the cores, so parallel cells do not oversubscribe the machine.

    Args:
        environ: Environment variables (default: ``os.environ``).

    Returns:
        At least one thread.
    """
    cores = available_cores()
    limit = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() and int(limit) > 0 else cores


def _own_running_threads() -> int:
    """This process's threads that are running or runnable now (0 where unknown).

    Read from ``/proc/self/task/*/stat``; counts, for example, the spin-waiting worker
    threads another library in this process (torch's, after a sentence embedding) keeps
    busy for a while after its work.
    """
    running = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:  # not Linux
        return 0
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat", encoding="ascii") as stream:
                state = stream.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):  # a thread that ended meanwhile
            continue
        running += state == "R"
    return running


def _processes_running_elsewhere(samples: int = 5, interval_s: float = 0.002) -> int:
    """Threads of other processes running or runnable right now (median of a few looks).

    Read from ``/proc/loadavg``'s instantaneous count less this process's own running
    threads (the reading thread among them); the one-minute load average would also count
    this process's own recent work.
    """
    counts = []
    for sample in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as stream:
                total = int(stream.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):  # not Linux: nothing known
            return 0
        counts.append(total - max(1, _own_running_threads()))
        if sample < samples - 1:
            time.sleep(interval_s)
    return max(0, sorted(counts)[len(counts) // 2])


def threads_for_free_cores(max_threads: int) -> int:
    """Threads that leave to other running processes the cores they use.

    Args:
        max_threads: The most threads wanted.

    Returns:
        The available cores less the processes running beside this one, between 1 and
        ``max_threads``.
    """
    return max(1, min(max_threads, available_cores() - _processes_running_elsewhere()))


def cpu_flags() -> frozenset[str]:
    """The feature flags the CPU advertises (empty where ``/proc/cpuinfo`` is missing)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def cpu_model() -> str:
    """The CPU's model name, e.g. ``"AMD EPYC 7B13"``."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def relevant_cpu_flags(flags: Iterable[str]) -> list[str]:
    """The flags that decide which llama.cpp kernels run (AVX2, AVX-512, AMX, FMA, F16C).

    Args:
        flags: CPU flags, e.g. from :func:`cpu_flags`.

    Returns:
        Those flags, sorted.
    """
    return sorted(flag for flag in flags if flag.startswith(_RELEVANT_PREFIXES))


def use_extra_buffer_types(flags: Iterable[str], environ: Mapping[str, str] | None = None) -> bool:
    """Whether llama.cpp may use its extra (AMX and repacking) buffer types on this CPU.

    Off when the CPU advertises AMX (the upstream SIGILL, see the module docstring), on
    otherwise; :data:`AMX_OVERRIDE_VARIABLE` set to ``1`` or ``0`` overrides the choice.

    Args:
        flags: The CPU's flags, e.g. from :func:`cpu_flags`.
        environ: Environment variables (default: ``os.environ``).

    Returns:
        The value for ``llama_model_params.use_extra_bufts``.

    Raises:
        ValueError: If the override variable holds something other than ``0`` or ``1``.
    """
    override = (os.environ if environ is None else environ).get(AMX_OVERRIDE_VARIABLE, "")
    if override.strip() in ("0", "1"):
        return override.strip() == "1"
    if override.strip():
        raise ValueError(f"{AMX_OVERRIDE_VARIABLE}={override!r}: expected 0 or 1")
    return not any(flag.startswith("amx") for flag in flags)


@contextlib.contextmanager
def llama_extra_buffer_types(llama_cpp: Any, enabled: bool) -> Iterator[None]:
    """Make models loaded inside the block use (or not) llama.cpp's extra buffer types.

    ``llama_cpp.Llama`` takes no argument for ``use_extra_bufts``; it fills its model
    parameters from ``llama_model_default_params()``, which this wraps for the block.

    Args:
        llama_cpp: The imported ``llama_cpp`` package.
        enabled: The value of ``use_extra_bufts``.
    """
    bindings = llama_cpp.llama_cpp
    default_params = bindings.llama_model_default_params

    def params_with_choice() -> Any:
        params = default_params()
        params.use_extra_bufts = enabled
        return params

    bindings.llama_model_default_params = params_with_choice
    try:
        yield
    finally:
        bindings.llama_model_default_params = default_params
