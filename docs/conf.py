"""Sphinx configuration of valuegym's environment reference.

Each env has a page ``envs/<Name>-v<k>.md`` in the source tree that only names the env; when
the docs build, :func:`env_page` replaces its text (Sphinx's ``source-read`` event, so nothing
is written to the source tree) with the page generated from the env: a summary table of the
built env's spaces and how to make it, its class docstring (the documentation page, Gymnasium
style: Markdown sections and tables), its default value profile from ``default_profile()``, and
its API (methods, Google-style docstrings through napoleon). Build with warnings as errors:
``sphinx-build -W -b html docs build/docs`` (the test suite does).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

project = "valuegym"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build"]
autodoc_typehints = "description"
html_theme = "alabaster"
suppress_warnings = ["myst.header"]  # docstring sections start at level 2 under the title

#: An env page's text in the source tree: a MyST comment naming the env it is generated from.
ENV_PAGE_STUB = re.compile(r"^% env: (?P<env_id>\S+)$", re.MULTILINE)

#: The members of an env's API shown under its page, where the env has them.
_API = (
    "reset",
    "step",
    "render",
    "close",
    "state",
    "observation_space",
    "action_space",
    "value_names",
    "action_names",
    "default_profile",
)


def _markdown(docstring: str) -> str:
    """A class docstring as Markdown: RST roles become MyST roles, the example a section."""
    text = re.sub(r":(\w+):`", r"{\1}`", docstring)
    return re.sub(r"^Example:\n", "## Example\n\n", text, flags=re.MULTILINE)


def _number(x: float) -> str:
    return f"{x:g}"


def _space(space: Any, table: str = "Observation Space") -> str:
    """A space as the summary table shows it: a Box with its shape, dtype and bounds.

    Args:
        space: The built env's space.
        table: The section whose table gives a Box's bounds entry by entry.
    """
    import numpy as np
    from gymnasium import spaces

    if not isinstance(space, spaces.Box):
        return f"`{space}`"
    pairs = zip(space.low.flat, space.high.flat, strict=True)
    bounds = sorted({(float(lo), float(hi)) for lo, hi in pairs})
    if len(bounds) == 1:
        return (
            f"`Box({_number(bounds[0][0])}, {_number(bounds[0][1])}, {space.shape}, {space.dtype})`"
        )
    each = " or ".join(f"[{_number(lo)}, {_number(hi)}]" for lo, hi in bounds)
    low, high = _number(np.min(space.low)), _number(np.max(space.high))
    return f"`Box({low}, {high}, {space.shape}, {space.dtype})`, each entry in {each} (see {table})"


def _summary(env_id: str) -> list[str]:
    """Gymnasium's (or PettingZoo's) table at the top of an env page, from the built env."""
    import gymnasium
    import pettingzoo

    if env_id in gymnasium.registry:
        env = gymnasium.make(env_id)
        spec = gymnasium.spec(env_id)
        rows = [
            ("Action Space", _space(env.action_space)),
            ("Observation Space", _space(env.observation_space)),
            ("Import", f'`gymnasium.make("{env_id}")`'),
        ]
        if spec.vector_entry_point is not None:
            rows.append(("Vector env", f'`gymnasium.make_vec("{env_id}", num_envs=8)`, native'))
        rows.append(("Episode steps", f"{spec.max_episode_steps} (`max_episode_steps`)"))
    else:
        env = pettingzoo.make("parallel", env_id)
        agents = env.possible_agents
        first = agents[0]
        same = all(
            env.action_space(agent) == env.action_space(first)
            and env.observation_space(agent) == env.observation_space(first)
            for agent in agents
        )
        each = "each agent" if same else first
        rows = [
            ("Import", f'`pettingzoo.make("parallel", "{env_id}")`'),
            ("Agents", f"`{first}` ... `{agents[-1]}` ({len(agents)} by default)"),
            ("Parallel API", "yes"),
            ("AEC API", f'yes, through `parallel_to_aec`: `pettingzoo.make("aec", "{env_id}")`'),
            (f"Action Space ({each})", _space(env.action_space(first))),
            (f"Observation Space ({each})", _space(env.observation_space(first))),
            ("State Space", _space(env.state_space, "State")),
        ]
    env.close()
    return ["| | |", "|---|---|", *(f"| {name} | {text} |" for name, text in rows), ""]


def _field_table(title: str, items: dict[str, list[str]], fields: Any) -> list[str]:
    """A Markdown table of dataclass fields: a row per field, a column per item, its meaning."""
    header = ["Field", *(f"`{name}`" for name in items), "Meaning"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, field in enumerate(fields):
        meaning = field.metadata.get("doc", "").replace("|", "\\|")
        row = [f"`{field.name}`", *(values[index] for values in items.values()), meaning]
        lines.append("| " + " | ".join(row) + " |")
    return [title, "", *lines, ""]


def _profile(env_class: type[Any], who: str) -> list[str]:
    """The section listing the env's default value profile, from its ``default_profile()``."""
    from valuegym.values import AffectParams, ValueSpec

    profile = env_class.default_profile()
    spec_fields = [f for f in dataclasses.fields(ValueSpec) if f.name != "name"]
    affect_fields = dataclasses.fields(AffectParams)

    def text(x: Any) -> str:
        return _number(x) if isinstance(x, int | float) else f"`{x}`"

    values = {
        spec.name: [text(getattr(spec, f.name)) for f in spec_fields] for spec in profile.values
    }
    affect = {"value": [text(getattr(profile.affect, f.name)) for f in affect_fields]}
    return [
        "## Default Value Profile",
        "",
        f"The profile of {who} when no "
        f"`profile` is given (`{env_class.__name__}.default_profile()`, with the default "
        "arguments), value by value:",
        "",
        *_field_table("", values, spec_fields)[2:],
        *_field_table(
            "Its affect parameters (mood, stress, learning, temperature):", affect, affect_fields
        ),
    ]


def _page(env_id: str) -> str:
    """The generated Markdown page of one env."""
    from valuegym.envs import SINGLE_AGENT_ENV_IDS
    from valuegym.envs.registration import env_class

    cls = env_class(env_id)
    docstring = _markdown(inspect.getdoc(cls) or "")
    head, arguments, tail = docstring.partition("\n## Arguments\n")
    if not arguments:
        raise ValueError(f"{cls.__name__}'s docstring has no '## Arguments' section")
    summary, _, body = head.partition("\n")
    api = [
        f".. auto{'property' if isinstance(getattr(cls, member), property) else 'method'}"
        f":: {cls.__module__}.{cls.__name__}.{member}"
        for member in _API
        if hasattr(cls, member)
    ]
    return "\n".join(
        [
            f"# {env_id.split('/')[1]}",
            "",
            *_summary(env_id),
            summary,
            "",
            f"`{cls.__module__}.{cls.__name__}`",
            body,
            *_profile(cls, "the agent" if env_id in SINGLE_AGENT_ENV_IDS else "each agent"),
            arguments + tail,
            "",
            "## API",
            "",
            "```{eval-rst}",
            *api,
            "```",
            "",
        ]
    )


def env_page(app: Any, docname: str, source: list[str]) -> None:
    """Replace an env page's stub text with the page generated from the env."""
    match = ENV_PAGE_STUB.search(source[0]) if docname.startswith("envs/") else None
    if match:
        source[0] = _page(match["env_id"])


def check_env_pages(app: Any) -> None:
    """Fail the build unless every registered env, and nothing else, has a page stub."""
    from valuegym.envs.registration import _CLASSES

    stubs = {
        match["env_id"]
        for path in (DOCS / "envs").glob("*.md")
        if (match := ENV_PAGE_STUB.search(path.read_text(encoding="utf-8")))
    }
    if stubs != set(_CLASSES):
        raise ValueError(
            f"docs/envs/: stubs for {sorted(stubs)}, registered envs {sorted(_CLASSES)}"
        )


def setup(app: Any) -> None:
    """Generate the env pages as Sphinx reads their stubs."""
    app.connect("builder-inited", check_env_pages)
    app.connect("source-read", env_page)
