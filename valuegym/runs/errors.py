"""Errors of running scenarios, shared by the runner, sweeps and training."""

from __future__ import annotations

__all__ = ["RunError"]


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""
