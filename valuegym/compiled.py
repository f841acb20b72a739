"""numba's on-disk cache, kept to the sources it was compiled from.

numba caches each compiled function beside its own module and reuses it while *that file* is
unchanged. Compiled code also holds what it took from other modules: the curves inlined into
the value store's kernels, the column numbers of :mod:`valuegym.values.params`, the kernels
inside an env's compiled step. Change ``curves.py`` and not ``dynamics.py`` (a ``git pull``, an
edit) and numba reuses kernels built with the old curves: different numbers, no warning.

:func:`drop_stale_caches` closes the gap. It hashes every module with compiled code together
with every valuegym module those import, and keeps the hash beside numba's cache files; when the
hash changes, it deletes valuegym's cache files there, so the next call compiles afresh (about
10 s). ``import valuegym`` runs it once, before anything is compiled or loaded.

Compiling is slow enough to look like a hang, so :func:`watch_first_compile` (also run by
``import valuegym``) logs :data:`COMPILE_NOTICE` at INFO on the ``valuegym.compiled`` logger
when numba starts compiling valuegym's code, once per process: only with a cold (or dropped)
cache, since numba loading a cached kernel is no compile. The CLI shows INFO records on stderr;
a library user sees them by configuring :mod:`logging`.

:func:`choose_threading_layer` (run by ``import valuegym`` too) picks numba's ``workqueue``
thread pool unless the user chose a layer. The value store's parallel kernel (used from
:data:`valuegym.values.kernels.PARALLEL_THRESHOLD` rows) is linked into every compiled env
step, and loading it starts numba's thread pool; an OpenMP pool there slows torch's CPU ops in
the same process several-fold (the CleanRL example trained at 2 000 instead of 11 000 frames
per second on 2 cores), which the workqueue pool does not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "COMPILE_NOTICE",
    "choose_threading_layer",
    "compiled_sources",
    "drop_stale_caches",
    "watch_first_compile",
]

PACKAGE = Path(__file__).resolve().parent

#: Name of the file, beside numba's cache files, holding the hash of the sources they came from.
STAMP_NAME = "valuegym-compiled-sources.sha256"


#: Logged before the first compile of valuegym's kernels in a process.
COMPILE_NOTICE = "compiling valuegym's value kernels: about 10 s, once per installation"

_LOGGER = logging.getLogger(__name__)
_watched: set[str] = set()

_USES_NUMBA = re.compile(r"^(?:import numba|from numba)", re.MULTILINE)


def _import_pattern(name: str) -> re.Pattern[str]:
    # Import statements naming the package, anywhere in a module (lazy imports in functions
    # too): ``import pkg.x.y`` or ``from pkg.x import a, b as c`` (parenthesised or not).
    return re.compile(
        rf"^[ \t]*(?:from[ \t]+({name}(?:\.\w+)*)[ \t]+import[ \t]+(\([^)]*\)|[^\n]*)"
        rf"|import[ \t]+({name}(?:\.\w+)*))",
        re.MULTILINE,
    )


def _package_imports(text: str, package: Path) -> set[Path]:
    """The package's modules that a module's text imports, as files."""
    found: set[Path] = set()
    for match in _import_pattern(package.name).finditer(text):
        module, names, plain = match.groups()
        candidates = [plain] if plain else [module]
        if names:
            for name in names.strip("()").split(","):
                name = name.split("#")[0].split(" as ")[0].strip()
                if name.isidentifier():
                    candidates.append(f"{module}.{name}")
        for candidate in candidates:
            base = package.joinpath(*candidate.split(".")[1:])
            for path in (base.with_suffix(".py"), base / "__init__.py"):
                if path.is_file():
                    found.add(path)
    return found


def compiled_sources(package: Path = PACKAGE) -> tuple[list[Path], list[Path]]:
    """The modules with compiled code, and every source their compiled code may depend on.

    Args:
        package: The package directory (its name is the name imports use).

    Returns:
        ``(compiled, sources)``: the modules that import numba, and those with every module
        of the package they import, directly or not (sorted paths).
    """
    texts = {path: path.read_text(encoding="utf-8") for path in package.rglob("*.py")}
    compiled = sorted(path for path, text in texts.items() if _USES_NUMBA.search(text))
    sources, pending = set(compiled), list(compiled)
    while pending:
        for imported in _package_imports(texts[pending.pop()], package) - sources:
            sources.add(imported)
            pending.append(imported)
    return compiled, sorted(sources)


def _digest(sources: Iterable[Path], package: Path) -> str:
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def _cache_dirs(module: Path) -> list[Path]:
    """Where numba may keep a module's cache: NUMBA_CACHE_DIR, ``__pycache__``, user-wide."""
    dirs = [module.parent / "__pycache__"]
    try:  # numba's own rules for the other two; internals, so a newer numba may move them
        from numba.core import config
        from numba.core.caching import InTreeCacheLocator
        from numba.misc.appdirs import AppDirs

        subpath = InTreeCacheLocator.get_suitable_cache_subpath(str(module))
        user_dir = getattr(config, "CACHE_DIR", "")  # set from NUMBA_CACHE_DIR at runtime
        if user_dir:
            dirs.append(Path(user_dir) / subpath)
        dirs.append(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / subpath)
    except (ImportError, AttributeError):
        pass
    return dirs


def drop_stale_caches(package: Path = PACKAGE) -> list[Path]:
    """Delete valuegym's numba cache files compiled from sources that have changed since.

    Safe to run while other processes compile or load: numba treats a missing cache file as a
    miss. Directories that cannot be written are left as they are.

    Args:
        package: The package directory.

    Returns:
        The cache files deleted.
    """
    compiled, sources = compiled_sources(package)
    digest = _digest(sources, package)
    deleted: list[Path] = []
    by_dir: dict[Path, list[Path]] = {}
    for module in compiled:
        for directory in _cache_dirs(module):
            by_dir.setdefault(directory, []).append(module)
    for directory, modules in by_dir.items():
        if not directory.is_dir():
            if directory.name != "__pycache__":
                continue  # a cache numba does not use here
            try:  # stamp the in-tree cache before numba first writes to it
                directory.mkdir(exist_ok=True)
            except OSError:
                continue
        stamp = directory / STAMP_NAME
        try:
            if stamp.read_text(encoding="utf-8").strip() == digest:
                continue
        except OSError:
            pass  # no stamp yet: whatever is cached predates it
        try:
            for module in modules:
                for pattern in (f"{module.stem}.*.nbi", f"{module.stem}.*.nbc"):
                    for cached in directory.glob(pattern):
                        cached.unlink(missing_ok=True)
                        deleted.append(cached)
            partial = directory / f"{STAMP_NAME}.{os.getpid()}"
            partial.write_text(digest + "\n", encoding="utf-8")
            partial.replace(stamp)
        except OSError:
            continue  # a read-only install: numba does not write there either
    return deleted


def watch_first_compile(package: str = PACKAGE.name) -> None:
    """Log :data:`COMPILE_NOTICE` when numba first compiles a function of ``package``.

    Once per process and package; calling it again does nothing. Cache hits are no compile,
    so a warm cache logs nothing.

    Args:
        package: The top-level package whose compiles are announced.
    """
    if package in _watched:
        return
    _watched.add(package)
    from numba.core import event

    class _FirstCompile(event.Listener):
        announced = False

        def on_start(self, started: event.Event) -> None:
            function = getattr(started.data.get("dispatcher"), "py_func", None)
            module = getattr(function, "__module__", None) or ""
            if not self.announced and module.split(".")[0] == package:
                self.announced = True
                _LOGGER.info(COMPILE_NOTICE)

        def on_end(self, ended: event.Event) -> None:
            pass  # only the start is announced

    # Stays registered (a flag, not unregistering): numba iterates its listeners while it
    # broadcasts, and removing one there would skip the next.
    event.register("numba:compile", _FirstCompile())


def choose_threading_layer() -> str:
    """Use numba's ``workqueue`` threads unless the user chose a threading layer.

    A choice is ``NUMBA_THREADING_LAYER`` in the environment or ``numba.config.THREADING_LAYER``
    set before ``import valuegym``; either is left alone. Has no effect once numba's threads
    have started (the layer is fixed then).

    Returns:
        The configured layer name.
    """
    from numba.core import config  # numba.config, set by the environment at import

    layer = getattr(config, "THREADING_LAYER", "default")
    if "NUMBA_THREADING_LAYER" not in os.environ and layer == "default":
        config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]
    return str(getattr(config, "THREADING_LAYER", layer))
