import io
import json
import signal
import sys

import pytest

from valuegym.cli import main
from valuegym.doctor import describe_exit, run_doctor, run_probe


def child(code):
    return [sys.executable, "-c", code]


KILLS_ITSELF_WITH_SIGILL = child("import os, signal; os.kill(os.getpid(), signal.SIGILL)")
REPORT = {"load_seconds": 0.5, "generate_seconds": 0.25, "tokens": 16, "text": " Paris"}
WORKS = child(f"print('noise'); print({json.dumps(json.dumps(REPORT))})")


def doctor(commands, backends):
    out, err = io.StringIO(), io.StringIO()
    status = run_doctor(
        backends=backends,
        command_for=lambda backend, model: commands[backend],
        timeout_s=60,
        out=out,
        err=err,
    )
    return status, out.getvalue(), err.getvalue()


def test_a_child_killed_by_sigill_is_a_failure_line_with_what_to_do():
    status, out, err = doctor({"llamacpp": KILLS_ITSELF_WITH_SIGILL}, ["llamacpp"])
    assert status == 1
    [problem] = [line for line in err.splitlines() if line.startswith("problem:")]
    assert problem.startswith("problem: backend llamacpp: killed by SIGILL (illegal instruction)")
    assert "VALUEGYM_LLAMA_AMX=0" in problem
    assert "llamacpp: FAILED" in out
    assert "ok: everything" not in out


def test_a_working_probe_reports_tokens_per_second():
    status, out, err = doctor({"llamacpp": WORKS}, ["llamacpp"])
    assert status == 0
    assert "llamacpp: ok, 16 tokens in 0.25 s (64.0 tokens/s)" in out
    assert "ok: everything the demo needs works" in out
    assert err == ""


def test_a_backend_the_demo_does_not_need_only_warns():
    status, _, err = doctor(
        {"llamacpp": WORKS, "transformers": KILLS_ITSELF_WITH_SIGILL}, ["llamacpp", "transformers"]
    )
    assert status == 0
    assert err.startswith("warning: backend transformers: killed by SIGILL")


def test_an_error_reported_by_the_child_is_passed_on():
    failing = child("import json; print(json.dumps({'error': 'cannot load: pip install x'}))")
    result = run_probe("llamacpp", failing, timeout_s=60)
    assert not result.ok
    assert result.problem == "cannot load: pip install x"


def test_a_child_that_fails_without_a_report_shows_its_last_words():
    failing = child("import sys; sys.exit('RuntimeError: decode failed')")
    result = run_probe("llamacpp", failing, timeout_s=60)
    assert not result.ok
    assert result.problem == (
        "the child process exited with status 1 (RuntimeError: decode failed)"
    )
    assert "python -m valuegym.doctor --probe" in result.remedy


def test_a_bad_override_is_a_problem_line(monkeypatch):
    monkeypatch.setenv("VALUEGYM_LLAMA_AMX", "maybe")
    status, _, err = doctor({"llamacpp": WORKS}, ["llamacpp"])
    assert status == 1
    assert "problem: VALUEGYM_LLAMA_AMX='maybe': expected 0 or 1; set it to 0 or 1" in err


def test_a_child_that_hangs_is_a_timeout():
    result = run_probe("llamacpp", child("import time; time.sleep(30)"), timeout_s=0.5)
    assert not result.ok
    assert result.problem == "no answer within 0.5 s"


def test_exit_statuses_are_described():
    assert describe_exit(-signal.SIGKILL)[0] == "killed by SIGKILL"
    assert "memory" in describe_exit(-signal.SIGKILL)[1]
    assert describe_exit(-signal.SIGSEGV)[0] == "killed by SIGSEGV"
    assert describe_exit(3)[0] == "the child process exited with status 3"


@pytest.mark.slow
def test_doctor_runs_the_real_llamacpp_backend(capsys):
    assert main(["doctor", "--backend", "llamacpp"]) == 0
    out = capsys.readouterr().out
    assert "llama.cpp system info: CPU :" in out
    assert "sha256 " in out
    assert "tokens/s" in out
    for package in ("numpy", "gymnasium", "pettingzoo", "torch", "llama-cpp-python"):
        assert package in out


def test_a_fresh_install_is_told_the_demo_extra(monkeypatch):
    from valuegym import lm

    for backend in ("llamacpp", "transformers"):
        install = lm.BACKENDS[backend][1]
        monkeypatch.setitem(lm.BACKENDS, backend, (("valuegym_no_such_module",), install))
    status, _, err = doctor({}, ["llamacpp", "transformers"])
    assert status == 1
    assert "problem: backend llamacpp is not installed: pip install 'valuegym[demo]'" in err
    assert "warning: backend transformers is not installed: pip install 'valuegym[lm]'" in err
