"""Native vector Orchard: N copies of :class:`~valuegym.envs.orchard.OrchardEnv` in one store.

``gymnasium.make_vec("valuegym/Orchard-v0", num_envs=N)`` builds it. The N copies are N rows of
one value store, stepped by array operations; only resets touch copies one at a time (each copy
draws its episode's stock schedule from its own generator, seeded like ``SyncVectorEnv`` seeds
its envs), so the trajectories equal those of ``SyncVectorEnv`` over N single Orchards.

Example:
    >>> import gymnasium
    >>> import numpy as np
    >>> import valuegym
    >>> envs = gymnasium.make_vec("valuegym/Orchard-v0", num_envs=3)
    >>> observations, infos = envs.reset(seed=0)
    >>> observations.shape
    (3, 17)
    >>> observations, rewards, terminated, truncated, infos = envs.step(np.array([0, 3, 4]))
    >>> infos["action_wanting"].shape
    (3, 5)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, cast

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from valuegym.envs.core import ValueCore
from valuegym.envs.orchard_rules import DEFAULT_EPISODE_LENGTH, OrchardRules
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile

__all__ = ["OrchardVectorEnv"]


class OrchardVectorEnv(VectorEnv):
    """N Orchards stepped together, with Gymnasium's three autoreset modes.

    The mode says what happens to a copy whose episode ended, exactly as in ``SyncVectorEnv``
    with the same ``autoreset_mode``:

    - next-step (Gymnasium's default): the next :meth:`step` resets it (its action is ignored,
      its reward is 0);
    - same-step: the step that ends it also resets it; the returned observation and info are
      the new episode's, the last ones are in ``info["final_obs"]`` and ``info["final_info"]``
      (masked by ``info["_final_obs"]`` and ``info["_final_info"]``);
    - disabled: nothing; ``reset(options={"reset_mask": ...})`` must reset it before the next
      step.

    ``info`` holds the entries of the single env batched as ``SyncVectorEnv`` batches them (the
    value state and ``action_wanting``, each with its ``_key`` mask).

    Args:
        num_envs: Number of copies, >= 1.
        goods: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        profile: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        out_of_stock_probability: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        episode_length: As :class:`~valuegym.envs.orchard.OrchardEnv`; when ``None``,
            ``max_episode_steps``.
        pick_effort: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        render_mode: ``"human"`` (copy 0 in a window), ``"ansi"`` or ``"rgb_array"``.
        autoreset_mode: An ``AutoresetMode`` or its value (``"NextStep"``, ``"SameStep"``,
            ``"Disabled"``).
        max_episode_steps: The registered horizon, which ``gymnasium.make_vec`` passes (as to
            Gymnasium's own native vector envs); the episode length unless ``episode_length``
            is given; 100 when neither is.
    """

    # Gymnasium annotates metadata as an instance attribute; it is a class-level constant.
    metadata: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int = 1,
        goods: Mapping[str, float] | None = None,
        profile: ValueProfile | Mapping[str, Any] | None = None,
        out_of_stock_probability: float = 0.4,
        episode_length: int | None = None,
        pick_effort: float = 0.3,
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        max_episode_steps: int | None = None,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs: must be an int >= 1 (got {num_envs!r})")
        ValueCore.check_render_mode(render_mode)
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            modes = ", ".join(repr(mode.value) for mode in AutoresetMode)
            raise ValueError(
                f"autoreset_mode: expected an AutoresetMode or one of {modes} "
                f"(got {autoreset_mode!r})"
            ) from None
        # The class's metadata gives the default mode; an instance states its own, as
        # Gymnasium's vector envs do.
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}  # type: ignore[misc]
        self.render_mode = render_mode
        self.num_envs = num_envs
        if episode_length is None:
            episode_length = (
                DEFAULT_EPISODE_LENGTH if max_episode_steps is None else max_episode_steps
            )
        self.rules = OrchardRules.from_arguments(
            goods, profile, out_of_stock_probability, episode_length, pick_effort
        )
        self._state = self.rules.initial_state(num_envs)
        self._core = self._state.core
        n_actions = self.rules.n_actions
        self._generators: list[np.random.Generator | None] = [None] * num_envs
        self._autoreset = np.zeros(num_envs, dtype=bool)
        self._everyone = np.ones(num_envs, dtype=bool)
        self.single_action_space = spaces.Discrete(n_actions)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.single_observation_space = self.rules.observation_space(self._core)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every copy; copies whose episode ended are reset as the autoreset mode says.

        Raises:
            ValueError: For invalid actions, or, with autoreset disabled, when a copy whose
                episode ended was not reset.
        """
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions: expected {self.num_envs} integer actions, got {actions.dtype} array "
                f"of shape {actions.shape}"
            )
        resetting = self._autoreset
        if self.autoreset_mode == AutoresetMode.DISABLED and resetting.any():
            raise ValueError(
                f"copies {np.flatnonzero(resetting).tolist()} ended their episodes: with "
                "autoreset disabled, reset them with options={'reset_mask': ...} first"
            )
        actions = np.ascontiguousarray(actions, dtype=np.int64)
        observations = self._new_observations()
        rewards = np.empty(self.num_envs)
        action_wanting = np.empty((self.num_envs, self.rules.n_actions))
        self.rules.step(  # raises on an invalid action before changing anything
            self._state, actions, ~resetting, observations, rewards, action_wanting
        )
        if resetting.any():
            # The store stepped every row; copies that were due a reset start afresh instead.
            rewards[resetting] = 0.0
            self._reset_copies(np.flatnonzero(resetting), [None] * int(resetting.sum()))
            action_wanting = self.rules.observe(self._state, observations)
        truncated = self._state.truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        infos = self._infos(action_wanting)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and truncated.any():
            observations, infos = self._reset_finished(truncated, observations, infos)
        else:
            self._autoreset = truncated.copy()
        return observations, rewards, terminated, truncated, infos

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy, or those in ``options["reset_mask"]``.

        Args:
            seed: ``None`` (keep each copy's generator, or seed it from entropy), an int (copy
                ``i`` gets ``seed + i``, as ``SyncVectorEnv``) or one seed per copy.
            options: ``{"reset_mask": bool array}`` resets only the masked copies.

        Returns:
            The observations and infos of all copies.
        """
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
        elif isinstance(seed, int):
            super().reset(seed=seed)
            seeds = [seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
            if len(seeds) != self.num_envs:
                raise ValueError(f"seed: expected {self.num_envs} seeds, got {len(seeds)}")
        mask = np.ones(self.num_envs, dtype=bool)
        if options is not None and "reset_mask" in options:
            mask = np.asarray(options["reset_mask"])
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options.reset_mask: expected {self.num_envs} bools")
        copies = np.flatnonzero(mask)
        self._reset_copies(copies, [seeds[i] for i in copies])
        self._autoreset[copies] = False
        return self._observe()

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        """One frame per copy, as ``SyncVectorEnv`` gives them; ``"human"`` shows copy 0."""
        if self.render_mode is None:
            return None
        if self.render_mode == "human":
            self._core.render("human", 0, f"copy 0 step {self._state.step_count[0]}")
            return None
        frames = (
            self._core.render(self.render_mode, i, f"copy {i} step {self._state.step_count[i]}")
            for i in range(self.num_envs)
        )
        return tuple(frame for frame in frames if frame is not None)

    def close_extras(self, **kwargs: Any) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def _reset_copies(self, copies: np.ndarray, seeds: Sequence[int | None]) -> None:
        schedules = np.empty((len(copies), self.rules.episode_length, len(self.rules.goods)))
        generators, draw = self._generators, self.rules.draw_schedule
        # Each copy draws from its own generator (a Python call per copy, as SyncVectorEnv
        # makes); list() makes the row views in one C loop.
        for row, copy, seed in zip(list(schedules), copies.tolist(), seeds, strict=True):
            generator = generators[copy]
            if seed is not None or generator is None:
                generator = generators[copy] = seeding.np_random(seed)[0]
            draw(generator, out=row)
        self.rules.reset(self._state, schedules, copies)

    def _reset_finished(
        self, finished: np.ndarray, observations: np.ndarray, infos: dict[str, Any]
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Same-step autoreset: reset the finished copies now, keeping what they last saw.

        As in ``SyncVectorEnv``, ``final_obs`` is an object array of the finished copies' last
        observations (``None`` for the others) and ``final_info`` the batched info with zeros
        and false masks for the others.
        """
        final_observations = np.full(self.num_envs, None, dtype=object)
        for copy in np.flatnonzero(finished):
            final_observations[copy] = observations[copy]
        final_info: dict[str, Any] = {}
        for key, value in infos.items():
            if key.startswith("_"):
                final_info[key] = finished.copy()
            else:
                final_info[key] = np.zeros_like(value)
                final_info[key][finished] = value[finished]
        self._reset_copies(np.flatnonzero(finished), [None] * int(finished.sum()))
        observations, infos = self._observe()
        infos.update(
            final_obs=final_observations,
            _final_obs=finished.copy(),
            final_info=final_info,
            _final_info=finished.copy(),
        )
        return observations, infos

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The observations and the infos, batched as ``SyncVectorEnv`` batches them."""
        observations = self._new_observations()
        return observations, self._infos(self.rules.observe(self._state, observations))

    def _new_observations(self) -> np.ndarray:
        return np.empty(
            (self.num_envs, *cast("tuple[int]", self.single_observation_space.shape)),
            dtype=np.float32,
        )

    def _infos(self, action_wanting: np.ndarray) -> dict[str, Any]:
        return {
            **self._core.batched_values_info(),
            "action_wanting": action_wanting,
            "_action_wanting": self._everyone,
        }
