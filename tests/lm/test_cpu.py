import os
import types

import pytest

from valuegym.lm import cpu
from valuegym.lm.cpu import (
    AMX_OVERRIDE_VARIABLE,
    available_cores,
    cpu_flags,
    cpu_model,
    llama_extra_buffer_types,
    llama_thread_count,
    relevant_cpu_flags,
    threads_for_free_cores,
    use_extra_buffer_types,
)

# Flags of a Sapphire Rapids cloud Xeon (abridged) and of an AMD EPYC with AVX-512, no AMX.
XEON_AMX = {"sse4_2", "avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}
EPYC_AVX512 = {"sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"}


def test_extra_buffer_types_are_off_on_a_cpu_that_advertises_amx():
    assert use_extra_buffer_types(XEON_AMX, environ={}) is False


def test_extra_buffer_types_stay_on_without_amx():
    assert use_extra_buffer_types(EPYC_AVX512, environ={}) is True
    assert use_extra_buffer_types(set(), environ={}) is True


@pytest.mark.parametrize("flags", [XEON_AMX, EPYC_AVX512])
def test_the_environment_variable_overrides_the_choice(flags):
    assert use_extra_buffer_types(flags, environ={AMX_OVERRIDE_VARIABLE: "1"}) is True
    assert use_extra_buffer_types(flags, environ={AMX_OVERRIDE_VARIABLE: "0"}) is False
    with pytest.raises(ValueError, match=AMX_OVERRIDE_VARIABLE):
        use_extra_buffer_types(flags, environ={AMX_OVERRIDE_VARIABLE: "yes"})


def test_relevant_flags_are_the_simd_and_amx_ones():
    assert relevant_cpu_flags(XEON_AMX) == [
        "amx_bf16",
        "amx_int8",
        "amx_tile",
        "avx2",
        "avx512_bf16",
        "avx512f",
    ]


def test_this_cpu_is_described():
    assert cpu_model()
    assert isinstance(cpu_flags(), frozenset)


def test_the_choice_reaches_the_model_parameters_only_inside_the_block():
    class Params:
        use_extra_bufts = True

    bindings = types.SimpleNamespace(llama_model_default_params=Params)
    llama_cpp = types.SimpleNamespace(llama_cpp=bindings)
    with llama_extra_buffer_types(llama_cpp, False):
        assert bindings.llama_model_default_params().use_extra_bufts is False
    assert bindings.llama_model_default_params is Params
    assert bindings.llama_model_default_params().use_extra_bufts is True


def test_available_cores_follow_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 3}, raising=False)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 64)
    assert available_cores() == 2


def test_available_cores_fall_back_to_the_cpu_count_without_affinity_masks(monkeypatch):
    monkeypatch.delattr(cpu.os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: 6)
    assert available_cores() == 6
    monkeypatch.setattr(cpu.os, "cpu_count", lambda: None)
    assert available_cores() == 1


def test_llama_threads_are_the_available_cores_capped_by_omp_num_threads(monkeypatch):
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert llama_thread_count(environ={}) == 4
    assert llama_thread_count(environ={"OMP_NUM_THREADS": "2"}) == 2
    assert llama_thread_count(environ={"OMP_NUM_THREADS": "16"}) == 4
    assert llama_thread_count(environ={"OMP_NUM_THREADS": "0"}) == 4


def test_threads_leave_the_cores_other_processes_use(monkeypatch):
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(cpu, "_processes_running_elsewhere", lambda: 3)
    assert threads_for_free_cores(8) == 5
    assert threads_for_free_cores(4) == 4
    monkeypatch.setattr(cpu, "_processes_running_elsewhere", lambda: 20)
    assert threads_for_free_cores(8) == 1


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux's /proc")
def test_this_process_s_own_busy_threads_are_not_counted_as_other_processes():
    """A library's worker threads in this process (torch's after a sentence embedding) are
    this process's work: llama.cpp must not give up cores to them."""
    import hashlib
    import threading

    stop = threading.Event()

    def hash_busily() -> None:  # hashlib releases the GIL: a thread running in C
        block = b"x" * (8 << 20)
        while not stop.is_set():
            hashlib.sha256(block).digest()

    workers = [threading.Thread(target=hash_busily) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        seen = max(cpu._own_running_threads() for _ in range(50))
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert seen >= 2  # the reading thread and at least one hashing thread
    assert cpu._own_running_threads() >= 1
