import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import valuegym
from valuegym.compiled import COMPILE_NOTICE, STAMP_NAME, compiled_sources, drop_stale_caches

PACKAGE = Path(valuegym.__file__).parent


def write_package(root: Path, scale: float = 2.0) -> Path:
    """A package ``fakepkg``: a compiled module reading a constant of another, and a bystander."""
    package = root / "fakepkg"
    package.mkdir(exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "consts.py").write_text(f"SCALE = {scale}\n")
    (package / "kern.py").write_text(
        textwrap.dedent(
            """\
            import numba

            from fakepkg import consts


            @numba.njit(cache=True)
            def scaled(x):
                return consts.SCALE * x
            """
        )
    )
    (package / "other.py").write_text("VALUE = 1\n")
    return package


def test_the_compiled_modules_and_what_they_import():
    compiled, sources = compiled_sources()
    names = {path.relative_to(PACKAGE).as_posix() for path in sources}
    assert {path.relative_to(PACKAGE).as_posix() for path in compiled} >= {
        "values/kernels.py",
        "values/curves.py",
        "envs/core.py",
        "envs/orchard_rules.py",
    }
    # What the kernels inline from elsewhere: the curves, the parameter columns.
    assert {"values/params.py", "values/curves.py"} <= names
    assert not any(name.startswith("cli/") for name in names)
    assert "analysis/report.py" not in names


def test_importing_valuegym_leaves_its_caches_stamped():
    assert drop_stale_caches() == []
    assert (PACKAGE / "values" / "__pycache__" / STAMP_NAME).is_file()


def test_a_fresh_tree_is_stamped_before_anything_is_cached(tmp_path):
    package = write_package(tmp_path)
    assert drop_stale_caches(package) == []
    assert (package / "__pycache__" / STAMP_NAME).is_file()
    cached = package / "__pycache__" / "kern.scaled-6.py311.nbi"
    cached.write_bytes(b"compiled")  # what numba writes next
    assert drop_stale_caches(package) == []
    assert cached.exists()


def test_caches_go_when_a_source_changes_and_stay_otherwise(tmp_path):
    package = write_package(tmp_path)
    cache = package / "__pycache__"
    cache.mkdir()
    files = [cache / "kern.scaled-6.py311.nbi", cache / "kern.scaled-6.py311.1.nbc"]
    for file in files:
        file.write_bytes(b"compiled")
    unrelated = cache / "kern.cpython-311.pyc"
    unrelated.write_bytes(b"bytecode")

    assert sorted(drop_stale_caches(package)) == sorted(files)  # no stamp yet: dropped
    assert unrelated.exists()
    for file in files:
        file.write_bytes(b"compiled again")
    assert drop_stale_caches(package) == []
    (package / "other.py").write_text("VALUE = 2\n")  # not imported by compiled code
    assert drop_stale_caches(package) == []
    (package / "consts.py").write_text("SCALE = 3.0\n")
    assert sorted(drop_stale_caches(package)) == sorted(files)


def run_scaled(root: Path, drop: bool) -> float:
    code = textwrap.dedent(
        f"""\
        from pathlib import Path
        from valuegym.compiled import drop_stale_caches
        if {drop}:
            drop_stale_caches(Path({str(root / "fakepkg")!r}))
        from fakepkg.kern import scaled
        print(scaled(1.0))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        # No bytecode: a rewritten module of the same size within the same second would be
        # read from its stale .pyc.
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.split()[-1])


@pytest.mark.slow
def test_a_changed_constant_reaches_cached_compiled_code(tmp_path):
    write_package(tmp_path, scale=2.0)
    assert run_scaled(tmp_path, drop=True) == 2.0  # compiled and cached
    (tmp_path / "fakepkg" / "consts.py").write_text("SCALE = 3.5\n")  # kern.py untouched
    # numba alone reuses the cached code, compiled with the old constant ...
    assert run_scaled(tmp_path, drop=False) == 2.0
    # ... which valuegym drops, so the new constant is compiled in.
    assert run_scaled(tmp_path, drop=True) == 3.5


def run_and_log(root: Path) -> str:
    """Run fakepkg's kernel in a fresh interpreter; what it logged at INFO."""
    code = textwrap.dedent(
        """\
        import logging
        from valuegym.compiled import watch_first_compile
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        watch_first_compile("fakepkg")
        from fakepkg.kern import scaled
        scaled(1.0)
        scaled(2.0)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": f"{root}:{PACKAGE.parent}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stderr


def test_a_cold_cache_logs_one_compile_notice_and_a_warm_one_none(tmp_path):
    write_package(tmp_path)
    notice = f"valuegym.compiled: {COMPILE_NOTICE}"
    assert run_and_log(tmp_path).splitlines().count(notice) == 1  # compiled and cached
    assert notice not in run_and_log(tmp_path)  # loaded from the cache


def test_the_cli_shows_the_compile_notice(capsys):
    import logging

    from valuegym.cli import main

    assert main(["list"]) == 0
    capsys.readouterr()
    logging.getLogger("valuegym.compiled").info(COMPILE_NOTICE)
    assert capsys.readouterr().err == COMPILE_NOTICE + "\n"


def test_import_chooses_numba_workqueue_threads_unless_the_user_chose():
    # numba's OpenMP pool, started by loading the value store's parallel kernel (any env step),
    # slows torch's CPU ops in the same process several-fold; valuegym picks workqueue.
    code = (
        "import numba, valuegym, gymnasium\n"
        "env = gymnasium.make('valuegym/Orchard-v0'); env.reset(seed=0); env.step(0)\n"
        "print(numba.threading_layer())\n"  # the layer whose threads run (raises if none)
    )
    environment = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    chosen = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, check=True
    )
    assert chosen.stdout.split() == ["workqueue"]
    kept = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**environment, "NUMBA_THREADING_LAYER": "omp"},
        check=True,
    )
    assert kept.stdout.split() == ["omp"]
