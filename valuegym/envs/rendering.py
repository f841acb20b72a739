"""How every valuegym env draws an agent's value state: text and a picture of bars."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from valuegym.envs.core import ValueCore

__all__ = ["RENDER_MODES", "check_render_mode", "render_ansi", "render_rgb", "squash"]

#: Render modes of every valuegym env.
RENDER_MODES: Final = ("ansi", "rgb_array")

_RENDER_WIDTH: Final = 256
_BAR_HEIGHT: Final = 10


def squash(x: np.ndarray) -> np.ndarray:
    """Map reals into ``(-1, 1)`` monotonically: ``x / (1 + |x|)``.

    Args:
        x: Any float array.

    Returns:
        The squashed array (a new array).
    """
    return x / (1.0 + np.abs(x))


def check_render_mode(render_mode: str | None) -> None:
    """Raise a ValueError unless ``render_mode`` is ``None`` or one of :data:`RENDER_MODES`."""
    if render_mode is not None and render_mode not in RENDER_MODES:
        raise ValueError(
            f"render_mode: expected one of {RENDER_MODES} or None (got {render_mode!r})"
        )


def render_ansi(core: ValueCore, row: int = 0, header: str = "", lines: Sequence[str] = ()) -> str:
    """One row's value state as text, one line per value, then mood and stress.

    Args:
        core: The env's value core.
        row: Row of the agent or copy.
        header: First line (e.g. the step and last action).
        lines: Env-specific lines appended at the end.

    Returns:
        The text, newline-terminated.
    """
    width = max(len(name) for name in core.value_names)
    stock, wanting = core.stock[row], core.wanting[row]
    out = [header] if header else []
    for k, name in enumerate(core.value_names):
        bar = "#" * round(10 * float(squash(wanting[k])))
        out.append(f"{name:<{width}}  stock {stock[k]:6.2f}  wanting {wanting[k]:6.3f}  {bar}")
    out.append(
        f"mood {core.mood[row]:+.2f}  stress {core.stress[row]:.2f}  "
        f"temperature {core.temperature[row]:.2f}"
    )
    out.extend(lines)
    return "\n".join(out) + "\n"


def render_rgb(core: ValueCore, row: int = 0) -> np.ndarray:
    """One row's value state as a picture of bars.

    Per value a stock bar (blue) over a wanting bar (orange), then mood (green right of the
    centre line when positive, red left of it when negative) and stress (purple).

    Args:
        core: The env's value core.
        row: Row of the agent or copy.

    Returns:
        ``(height, 256, 3)`` uint8 image on white.
    """
    n_bars = 2 * core.n_values + 2
    image = np.full((n_bars * (_BAR_HEIGHT + 2) + 2, _RENDER_WIDTH, 3), 255, dtype=np.uint8)
    stock, wanting = core.stock[row], core.wanting[row]
    fractions = np.empty(n_bars)
    fractions[0 : 2 * core.n_values : 2] = squash(stock)
    fractions[1 : 2 * core.n_values : 2] = squash(np.abs(wanting))
    colours = [(31, 119, 180), (255, 127, 14)] * core.n_values
    for bar, (fraction, colour) in enumerate(zip(fractions[:-2], colours, strict=True)):
        top = 2 + bar * (_BAR_HEIGHT + 2)
        image[top : top + _BAR_HEIGHT, : int(fraction * _RENDER_WIDTH)] = colour
    mood, centre = float(core.mood[row]), _RENDER_WIDTH // 2
    top = 2 + 2 * core.n_values * (_BAR_HEIGHT + 2)
    end = centre + int(mood * centre)
    image[top : top + _BAR_HEIGHT, min(centre, end) : max(centre, end) + 1] = (
        (44, 160, 44) if mood >= 0 else (214, 39, 40)
    )
    image[top : top + _BAR_HEIGHT, centre] = 0
    top += _BAR_HEIGHT + 2
    image[top : top + _BAR_HEIGHT, : int(float(core.stress[row]) * _RENDER_WIDTH)] = (
        148,
        103,
        189,
    )
    return image
