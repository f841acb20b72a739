"""How every valuegym env draws an agent's value state: text, a picture of bars, a window.

What is drawn is one agent's :class:`~valuegym.envs.protocol.ValueInfo`, the value state of
the env contract (:meth:`ValueCore.values_info <valuegym.envs.core.ValueCore.values_info>`
gives it); :meth:`ValueCore.render <valuegym.envs.core.ValueCore.render>` picks the mode.

Render modes (every env): ``"ansi"`` returns the text frame, ``"rgb_array"`` the picture, and
``"human"`` shows the picture in a pygame window each time ``render()`` is called, scaled up,
with the text frame printed too, when pygame is installed (``pip install 'valuegym[render]'``,
which brings pygame-ce); without pygame it prints the text frame to stdout. Without a display
to open a window on (no ``DISPLAY`` or ``WAYLAND_DISPLAY`` on Linux and no ``SDL_VIDEODRIVER``
chosen, or SDL failing to open one) it prints the text frame to stdout too, after one warning
per env saying so. ``render()`` returns ``None`` in ``"human"`` mode.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from valuegym.envs.protocol import ValueInfo

__all__ = [
    "RENDER_MODES",
    "HumanWindow",
    "check_render_mode",
    "render_ansi",
    "render_rgb",
    "squash",
]

#: Render modes of every valuegym env.
RENDER_MODES: Final = ("human", "ansi", "rgb_array")
#: How much larger than the picture the human window is.
_WINDOW_SCALE: Final = 2

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


def render_ansi(
    value_names: Sequence[str], values: ValueInfo, header: str = "", lines: Sequence[str] = ()
) -> str:
    """One agent's value state as text, one line per value, then mood and stress.

    Args:
        value_names: Names of the values, in index order.
        values: The agent's value state.
        header: First line (e.g. the step and last action).
        lines: Env-specific lines appended at the end.

    Returns:
        The text, newline-terminated.
    """
    width = max(len(name) for name in value_names)
    stock, wanting = values["stocks"], values["wanting"]
    out = [header] if header else []
    for k, name in enumerate(value_names):
        bar = "#" * round(10 * float(squash(wanting[k])))
        out.append(f"{name:<{width}}  stock {stock[k]:6.2f}  wanting {wanting[k]:6.3f}  {bar}")
    out.append(
        f"mood {values['mood']:+.2f}  stress {values['stress']:.2f}  "
        f"temperature {values['temperature']:.2f}"
    )
    out.extend(lines)
    return "\n".join(out) + "\n"


def render_rgb(values: ValueInfo) -> np.ndarray:
    """One agent's value state as a picture of bars.

    Per value a stock bar (blue) over a wanting bar (orange), then mood (green right of the
    centre line when positive, red left of it when negative) and stress (purple).

    Args:
        values: The agent's value state.

    Returns:
        ``(height, 256, 3)`` uint8 image on white.
    """
    stock, wanting = values["stocks"], values["wanting"]
    n_values = len(stock)
    n_bars = 2 * n_values + 2
    image = np.full((n_bars * (_BAR_HEIGHT + 2) + 2, _RENDER_WIDTH, 3), 255, dtype=np.uint8)
    fractions = np.empty(n_bars)
    fractions[0 : 2 * n_values : 2] = squash(stock)
    fractions[1 : 2 * n_values : 2] = squash(np.abs(wanting))
    colours = [(31, 119, 180), (255, 127, 14)] * n_values
    for bar, (fraction, colour) in enumerate(zip(fractions[:-2], colours, strict=True)):
        top = 2 + bar * (_BAR_HEIGHT + 2)
        image[top : top + _BAR_HEIGHT, : int(fraction * _RENDER_WIDTH)] = colour
    mood, centre = float(values["mood"]), _RENDER_WIDTH // 2
    top = 2 + 2 * n_values * (_BAR_HEIGHT + 2)
    end = centre + int(mood * centre)
    image[top : top + _BAR_HEIGHT, min(centre, end) : max(centre, end) + 1] = (
        (44, 160, 44) if mood >= 0 else (214, 39, 40)
    )
    image[top : top + _BAR_HEIGHT, centre] = 0
    top += _BAR_HEIGHT + 2
    image[top : top + _BAR_HEIGHT, : int(float(values["stress"]) * _RENDER_WIDTH)] = (
        148,
        103,
        189,
    )
    return image


def _no_display() -> bool:
    """Whether this is Linux (or another X11/Wayland system) with no display to draw on.

    ``SDL_VIDEODRIVER`` set means someone chose where windows go (``dummy``: off screen).
    """
    if sys.platform in ("win32", "darwin") or os.environ.get("SDL_VIDEODRIVER"):
        return False
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class HumanWindow:
    """The ``"human"`` render mode: a pygame window where pygame and a display are, else stdout.

    Args:
        title: Window caption.
        fps: Most frames per second the window shows.
    """

    def __init__(self, title: str, fps: int) -> None:
        self.title = title
        self.fps = fps
        self._screen: Any = None
        self._clock: Any = None
        self._text_only = False  # set once the window could not be opened

    def _fall_back(self, text: str, reason: str) -> None:
        """Print frames as text from now on, warning once (per env) why."""
        self._text_only = True
        warnings.warn(
            f"render_mode='human': {reason}; printing each frame as text to stdout instead "
            "(render_mode='ansi' returns it, 'rgb_array' returns the picture)",
            RuntimeWarning,
            stacklevel=5,  # _fall_back -> show -> ValueCore.render -> env.render -> its caller
        )
        print(text, end="")

    def show(self, picture: np.ndarray, text: str) -> None:
        """Show a frame: the picture in the window, or the text printed without one.

        Args:
            picture: ``(height, width, 3)`` uint8 image.
            text: The text frame.
        """
        if self._text_only:
            print(text, end="")
            return
        try:
            import pygame
        except ImportError:
            print(text, end="")
            return
        if _no_display():
            # Asking SDL anyway prints its own error line and opens nothing.
            self._fall_back(text, "no display to open a window on (DISPLAY is not set)")
            return
        height, width = picture.shape[:2]
        size = (width * _WINDOW_SCALE, height * _WINDOW_SCALE)
        if self._screen is None or self._screen.get_size() != size:
            try:
                pygame.display.init()
                pygame.display.set_caption(self.title)
                self._screen = pygame.display.set_mode(size)
            except pygame.error as error:
                self._fall_back(text, f"cannot open a window ({error})")
                return
            self._clock = pygame.time.Clock()
        surface = pygame.surfarray.make_surface(np.ascontiguousarray(picture.swapaxes(0, 1)))
        self._screen.blit(pygame.transform.scale(surface, size), (0, 0))
        pygame.event.pump()
        pygame.display.flip()
        self._clock.tick(self.fps)

    def close(self) -> None:
        """Close the window, if one is open."""
        if self._screen is not None:
            import pygame

            pygame.display.quit()
            self._screen = self._clock = None
