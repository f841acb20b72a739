"""Sphinx configuration of valuegym's environment reference.

Each env's page is generated from its class docstring (the documentation page, Gymnasium
style: Markdown sections and tables) by :func:`write_env_pages` when the build starts, followed
by the env's API (methods, Google-style docstrings through napoleon). Build with warnings as
errors: ``sphinx-build -W -b html docs docs/_build`` (the test suite does).
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

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


def write_env_pages(*_: object) -> None:
    """Write ``envs/<Name>-v<k>.md`` for every registered valuegym env, from its docstring."""
    from valuegym.envs.registration import _CLASSES

    pages = DOCS / "envs"
    pages.mkdir(exist_ok=True)
    for env_id, entry_point in _CLASSES.items():
        module, name = entry_point.split(":")
        env_class = getattr(__import__(module, fromlist=[name]), name)
        title = env_id.split("/")[1]
        api = [
            f".. auto{'property' if isinstance(getattr(env_class, member), property) else 'method'}"
            f":: {module}.{name}.{member}"
            for member in _API
            if hasattr(env_class, member)
        ]
        page = [
            f"# {title}",
            "",
            f"`{env_id}` (`{module}.{name}`)",
            "",
            _markdown(inspect.getdoc(env_class) or ""),
            "",
            "## API",
            "",
            "```{eval-rst}",
            *api,
            "```",
            "",
        ]
        (pages / f"{title}.md").write_text("\n".join(page), encoding="utf-8")


def setup(app: object) -> None:
    """Generate the env pages before Sphinx reads the sources."""
    app.connect("builder-inited", write_env_pages)  # type: ignore[attr-defined]
