"""The environment reference builds with Sphinx, warnings as errors, one page per env."""

import subprocess
import sys
from pathlib import Path

import pytest

from valuegym.envs import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS

DOCS = Path(__file__).resolve().parents[1] / "docs"
SECTIONS = ("Action Space", "Observation Space", "Rewards", "Arguments", "Version History")


@pytest.mark.slow
def test_env_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="Sphinx is in the test extra")
    pytest.importorskip("myst_parser", reason="myst-parser is in the test extra")
    sphinx = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    completed = subprocess.run(
        [*sphinx, "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    for env_id in SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS:
        page = (tmp_path / "html" / "envs" / f"{env_id.split('/')[1]}.html").read_text()
        for section in SECTIONS:
            assert f'{section}<a class="headerlink"' in page, (env_id, section)
        assert ".step(" in page  # the API below the docstring
