"""Run manifests: what produced a run's numbers, and whether runs may be pooled.

Every run folder holds ``manifest.json``: the valuegym version and git commit, Python and key
package versions, the CPU (model and the flags that decide llama.cpp's kernels), the seed,
the resolved scenario, and for each language model its backend, model name, model file
SHA-256, sampling settings and the backend's build (for llama.cpp its version, system info
and buffer-type choice).

A run resumed later keeps its first manifest and lists each resumption under ``"resumed"``
(its episodes and installation); a resumption whose language models differ from those of the
finished episodes is refused (:func:`resume_differences`).

Utterance entropies are comparable only within one backend, model file and build (the same
Q4_1 file differs by ~0.07 nats per token between llama.cpp and transformers), so
:func:`lm_manifest_differences` names what differs between runs' language models, and
:func:`check_poolable` refuses to pool runs whose language models differ unless asked to.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import valuegym
from valuegym.lm import require_backend
from valuegym.lm.cpu import cpu_flags, cpu_model, relevant_cpu_flags, use_extra_buffer_types
from valuegym.lm.models import DEFAULT_MODEL, file_sha256, model_label, resolve_gguf_path
from valuegym.records import RunFolder, write_json_atomic

__all__ = [
    "PACKAGES",
    "MixedLanguageModelsError",
    "build_manifest",
    "check_poolable",
    "git_commit",
    "lm_manifest_differences",
    "manifest_markdown",
    "package_versions",
    "read_manifest",
    "resume_differences",
    "write_resumed_manifest",
]

#: The distributions whose versions a manifest records (``None`` when not installed).
PACKAGES: Final = (
    "numpy",
    "gymnasium",
    "pettingzoo",
    "torch",
    "transformers",
    "llama-cpp-python",
    "pyarrow",
)

#: The keys of a language model's manifest entry that decide whether entropies compare.
_LM_IDENTITY: Final = ("backend", "model", "model_sha256", "build")

_NO_MANIFEST: Final = "(no manifest)"

#: Version keys of a backend's build entry, and how reports name them.
_BUILD_VERSIONS: Final = (
    ("llama_cpp_python", "llama-cpp-python"),
    ("transformers", "transformers"),
    ("torch", "torch"),
)


class MixedLanguageModelsError(ValueError):
    """Runs to be pooled were produced by different language models, files or builds."""


def package_versions() -> dict[str, str | None]:
    """The installed versions of :data:`PACKAGES`."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit() -> str | None:
    """The commit of the source checkout valuegym runs from, if it runs from one."""
    source = Path(valuegym.__file__).resolve().parents[1]
    if not (source / ".git").exists():
        return None
    try:
        completed = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (completed.stdout.strip() or None) if completed.returncode == 0 else None


def _backend_build(backend: str) -> dict[str, Any]:
    if backend == "llamacpp":
        try:
            import llama_cpp
        except ImportError:
            return {"installed": False}
        return {
            "llama_cpp_python": llama_cpp.__version__,
            "system_info": llama_cpp.llama_print_system_info().decode("utf-8", "replace").strip(),
            "extra_buffer_types": use_extra_buffer_types(cpu_flags()),
        }
    if backend == "transformers":
        versions = package_versions()
        return {"transformers": versions["transformers"], "torch": versions["torch"]}
    return {}


def _model_file(backend: str, model: str) -> Path | None:
    if backend == "openai":
        return None
    try:
        return resolve_gguf_path(model)
    except (ValueError, OSError):
        path = Path(model).expanduser()  # a Hugging Face folder or id: no single file
        return path if path.is_file() else None


def _language_models(scenario: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One entry per distinct (backend, model, server) of the LM agents and appraisal model.

    The appraisal model (``appraisal.model``) is listed as the agent ``appraisal``.
    """
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    users = [
        (agent.get("id", f"lm{index}"), agent)
        for index, agent in enumerate(scenario.get("agents", []))
        if agent.get("kind") == "lm"
    ]
    appraisal_model = (scenario.get("appraisal") or {}).get("model")
    if appraisal_model is not None:  # the listeners' appraisal model (judges, surprisal)
        users.append(("appraisal", {"lm": appraisal_model}))
    for name, agent in users:
        lm = dict(agent.get("lm") or {})
        model = str(lm.pop("model", DEFAULT_MODEL))
        # A missing backend is reported (with the model, if missing too) before the model file
        # is looked for, whose error would name only the model.
        backend = require_backend(lm.pop("backend", None), model)
        base_url = lm.pop("base_url", None)
        key = (backend, model, base_url)
        if key not in entries:
            path = _model_file(backend, model)
            entries[key] = {
                "backend": backend,
                "model": model_label(model),
                "model_file": None if path is None else str(path),
                "model_sha256": None if path is None else file_sha256(path),
                "build": {"base_url": base_url} if base_url else _backend_build(backend),
                "agents": {},
            }
        affect = agent.get("affect", {})
        entries[key]["agents"][name] = {
            **lm,
            **{name: value for name, value in affect.items() if "temperature" in name},
        }
    return list(entries.values())


def build_manifest(scenario: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest of a run of ``scenario``.

    Args:
        scenario: The resolved scenario as plain data (``Scenario.to_mapping()``).

    Returns:
        JSON-able data; see the module docstring.
    """
    return {
        "valuegym": {"version": valuegym.__version__, "git_commit": git_commit()},
        "python": sys.version.split()[0],
        "packages": package_versions(),
        "cpu": {"model": cpu_model(), "flags": relevant_cpu_flags(cpu_flags())},
        "seed": scenario.get("seed"),
        "language_models": _language_models(scenario),
        "scenario": dict(scenario),
    }


def resume_differences(earlier: Mapping[str, Any] | None, current: Mapping[str, Any]) -> list[str]:
    """What differs between the language models of a run's finished part and of a resumption.

    Args:
        earlier: The run folder's manifest (``None`` when it has none: nothing to compare).
        current: :func:`build_manifest` for this installation.

    Returns:
        :func:`lm_manifest_differences` lines; empty when the resumption's records compare
        with the finished ones (or there is no earlier manifest).
    """
    if earlier is None:
        return []
    return lm_manifest_differences({"finished episodes": earlier, "this installation": current})


def write_resumed_manifest(
    folder: RunFolder,
    current: Mapping[str, Any],
    finished: Sequence[int],
    episodes: Sequence[int],
) -> None:
    """Record, in a resumed run's manifest, what produces the episodes this resumption runs.

    The run's first manifest stays (it produced the finished episodes); this installation is
    appended under ``"resumed"`` with the episodes it runs. A run without a manifest gets this
    installation's, with its earlier episodes listed under ``"episodes_without_manifest"``.

    Args:
        folder: The run folder.
        current: :func:`build_manifest` for this installation.
        finished: Episodes already on disk.
        episodes: Episodes this resumption runs.
    """
    earlier = read_manifest(folder.root)
    if earlier is None:
        manifest = {**current, "episodes_without_manifest": sorted(finished)}
    else:
        manifest = dict(earlier)
    part = {key: value for key, value in current.items() if key != "scenario"}
    manifest["resumed"] = [*manifest.get("resumed", []), {"episodes": list(episodes), **part}]
    write_json_atomic(manifest, folder.manifest_file)


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """A run folder's manifest, or ``None`` for a run written before manifests existed."""
    path = RunFolder(Path(run_dir)).manifest_file
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _lm_identity(manifest: Mapping[str, Any] | None) -> dict[str, str]:
    """Flat ``"<backend>:<model> <field>" -> value`` of what decides comparability."""
    if manifest is None:
        return {"manifest": _NO_MANIFEST}
    identity = {}
    for entry in manifest.get("language_models", []):
        name = f"{entry.get('backend')}:{entry.get('model')}"
        for field in _LM_IDENTITY:
            value = entry.get(field)
            if isinstance(value, Mapping):
                identity.update({f"{name} {field}.{k}": json.dumps(v) for k, v in value.items()})
            else:
                identity[f"{name} {field}"] = json.dumps(value)
    return identity


def lm_manifest_differences(manifests: Mapping[str, Mapping[str, Any] | None]) -> list[str]:
    """What differs between the language models of several runs, one line per difference.

    Args:
        manifests: Run name -> its manifest (``None`` when the run has none).

    Returns:
        Lines like ``llamacpp:smollm2-135m model_sha256: "b179..." (cells c0, c1); "9f2e..."
        (cell c2)``; a language model used by some runs only shows as ``(absent)``. Empty
        when all runs share their language models.
    """
    identities = {run: _lm_identity(manifest) for run, manifest in manifests.items()}
    keys = list(dict.fromkeys(key for identity in identities.values() for key in identity))
    lines = []
    for key in keys:
        runs_by_value: dict[str, list[str]] = {}
        for run, identity in identities.items():
            runs_by_value.setdefault(identity.get(key, "(absent)"), []).append(run)
        if len(runs_by_value) > 1:
            groups = "; ".join(
                f"{_short(value)} ({', '.join(runs)})" for value, runs in runs_by_value.items()
            )
            lines.append(f"{key}: {groups}")
    return lines


def _short(value: str, limit: int = 60) -> str:
    return value if len(value) <= limit else f"{value[: limit - 3]}..."


def check_poolable(run_dirs: Sequence[Path], *, allow_mixed_lm: bool = False) -> list[str]:
    """Check that runs may be pooled: their language models, files and builds agree.

    Args:
        run_dirs: The run folders (e.g. a sweep's cells).
        allow_mixed_lm: Pool even when they differ (the differences are returned, for a
            warning in the report).

    Returns:
        The differences (empty when the runs agree).

    Raises:
        MixedLanguageModelsError: When they differ and ``allow_mixed_lm`` is false; the
            message names every difference.
    """
    differences = lm_manifest_differences({path.name: read_manifest(path) for path in run_dirs})
    if differences and not allow_mixed_lm:
        raise MixedLanguageModelsError(
            "refusing to pool runs whose language models differ (entropies are comparable "
            "only within one backend, model file and build):\n  "
            + "\n  ".join(differences)
            + "\nrerun them on one installation, or pass --allow-mixed-lm to pool anyway"
        )
    return differences


def manifest_markdown(manifest: Mapping[str, Any] | None) -> str:
    """A short Markdown description of a manifest, for a report section.

    Args:
        manifest: A manifest, or ``None`` for a run without one.

    Returns:
        The section's body (the report gives the heading).
    """
    if manifest is None:
        return "This run has no manifest (written by an older valuegym).\n"
    versions = manifest["valuegym"]
    commit = f", git {versions['git_commit'][:12]}" if versions.get("git_commit") else ""
    packages = ", ".join(
        f"{name} {version}" for name, version in manifest["packages"].items() if version
    )
    cpu = manifest["cpu"]
    lines = [
        f"- valuegym {versions['version']}{commit}; Python {manifest['python']}; {packages}",
        f"- CPU: {cpu['model']} ({', '.join(cpu['flags']) or 'no AVX2/AVX-512/AMX'})",
        f"- seed {manifest['seed']}",
    ]
    for entry in manifest["language_models"]:
        sha = entry["model_sha256"]
        build = entry["build"]
        buffers = build.get("extra_buffer_types")
        details = [
            f"file `{Path(entry['model_file']).name}` sha256 {sha[:16]}" if sha else "no file",
            *(f"{label} {build[key]}" for key, label in _BUILD_VERSIONS if build.get(key)),
            *([] if buffers is None else [f"extra buffer types {'on' if buffers else 'off'}"]),
            *([f"server {build['base_url']}"] if build.get("base_url") else []),
        ]
        lines.append(
            f"- LM `{entry['backend']}:{entry['model']}` for {', '.join(entry['agents'])}: "
            + "; ".join(details)
        )
    for part in manifest.get("resumed", []):
        versions = part["valuegym"]
        commit = f", git {versions['git_commit'][:12]}" if versions.get("git_commit") else ""
        lines.append(
            f"- resumed: episodes {_episode_ranges(part['episodes'])} ran under valuegym "
            f"{versions['version']}{commit} (same language models)"
        )
    if manifest.get("episodes_without_manifest"):
        lines.append(
            f"- episodes {_episode_ranges(manifest['episodes_without_manifest'])} were written "
            "by a valuegym without manifests: what produced them is not recorded"
        )
    return "\n".join(lines) + "\n\nFull details: `manifest.json`.\n"


def _episode_ranges(episodes: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` as ``"0-2, 5"``."""
    ranges: list[str] = []
    for episode in sorted(episodes):
        if ranges and episode == int(ranges[-1].split("-")[-1]) + 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{episode}"
        else:
            ranges.append(str(episode))
    return ", ".join(ranges)
