"""valuegym: environments where agents hold values, and the language their values shape.

Importing the package registers its environments with Gymnasium and PettingZoo.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("valuegym")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

from valuegym.compiled import choose_threading_layer, drop_stale_caches, watch_first_compile

drop_stale_caches()  # before anything compiled is loaded: see valuegym.compiled
watch_first_compile()  # a notice before a slow first compile
choose_threading_layer()  # numba's threads beside torch's: see valuegym.compiled

import valuegym.envs  # noqa: E402, F401 - registers the environments

__all__ = ["__version__"]
