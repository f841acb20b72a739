"""The environment reference builds with Sphinx, warnings as errors, one page per env."""

import html
import inspect
import re
import subprocess
import sys
from pathlib import Path

import gymnasium
import pettingzoo
import pytest

from valuegym.envs import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS
from valuegym.envs.registration import env_class

DOCS = Path(__file__).resolve().parents[1] / "docs"
ENV_IDS = SINGLE_AGENT_ENV_IDS + MULTI_AGENT_ENV_IDS
#: Gymnasium's sections of an env page, in order, and the default profile generated beside them.
SECTIONS = (
    "Description",
    "Action Space",
    "Observation Space",
    "Rewards",
    "Info",
    "State",
    "Starting State",
    "Episode End",
    "Default Value Profile",
    "Arguments",
    "Version History",
)


def _info_keys(env_id: str) -> list[str]:
    """The keys of the built env's info after a reset and a step (of its first agent)."""
    if env_id in SINGLE_AGENT_ENV_IDS:
        env = gymnasium.make(env_id)
        env.reset(seed=0)
        info = env.step(env.action_space.sample())[-1]
    else:
        env = pettingzoo.make("parallel", env_id)
        env.reset(seed=0)
        infos = env.step({agent: env.action_space(agent).sample() for agent in env.agents})[-1]
        info = infos[env.possible_agents[0]]
    env.close()
    return sorted(info)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_docstring_info_table_lists_every_info_key(env_id):
    docstring = inspect.getdoc(env_class(env_id)) or ""
    section = docstring.split("\n## Info\n")[1].split("\n## ")[0]
    documented = re.findall(r"^\| `(\w+)`", section, flags=re.MULTILINE)
    assert sorted(documented) == _info_keys(env_id)


@pytest.mark.slow
def test_env_reference_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx", reason="Sphinx is in the test extra")
    pytest.importorskip("myst_parser", reason="myst-parser is in the test extra")
    sources = sorted(DOCS.rglob("*"))
    sphinx = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    completed = subprocess.run(
        [*sphinx, "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert sorted(DOCS.rglob("*")) == sources  # the build writes nothing into the source tree
    for env_id in ENV_IDS:
        page = (tmp_path / "html" / "envs" / f"{env_id.split('/')[1]}.html").read_text()
        positions = [page.find(f'{section}<a class="headerlink"') for section in SECTIONS]
        assert -1 not in positions, (env_id, dict(zip(SECTIONS, positions, strict=True)))
        assert positions == sorted(positions), env_id
        assert ".step(" in page  # the API below the docstring
        assert 'Type<span class="colon">' not in page  # no property summary split as a type
        text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
        if env_id in SINGLE_AGENT_ENV_IDS:
            env = gymnasium.make(env_id)
            action_space, observation_space = env.action_space, env.observation_space
            assert f'gymnasium.make("{env_id}")' in text
        else:
            env = pettingzoo.make("parallel", env_id)
            agent = env.possible_agents[0]
            action_space, observation_space = env.action_space(agent), env.observation_space(agent)
            assert f'pettingzoo.make("parallel", "{env_id}")' in text
            assert f'pettingzoo.make("aec", "{env_id}")' in text
        env.close()
        assert str(action_space) in text
        assert f"{observation_space.shape}, {observation_space.dtype}" in text
        profile = env_class(env_id).default_profile()
        assert "Field " + " ".join(profile.value_names) + " Meaning" in text
        weights = " ".join(f"{spec.weight:g}" for spec in profile.values)
        assert f"weight {weights} " in text
