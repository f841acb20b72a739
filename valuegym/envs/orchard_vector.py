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
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from valuegym.envs.core import ValueCore
from valuegym.envs.orchard import OrchardRules
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile

__all__ = ["OrchardVectorEnv"]


class OrchardVectorEnv(VectorEnv):
    """N Orchards stepped together, with next-step autoreset (Gymnasium's default).

    A copy whose episode ended is reset by the next :meth:`step` (its action is ignored, its
    reward is 0), exactly as ``SyncVectorEnv`` does. ``info`` holds the entries of the single
    env batched as ``SyncVectorEnv`` batches them (the value state and ``action_wanting``, each
    with its ``_key`` mask).

    Args:
        num_envs: Number of copies, >= 1.
        goods: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        profile: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        out_of_stock_probability: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        episode_length: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        pick_effort: As :class:`~valuegym.envs.orchard.OrchardEnv`.
        render_mode: ``"human"`` (copy 0 in a window), ``"ansi"`` or ``"rgb_array"``.
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
        episode_length: int = 100,
        pick_effort: float = 0.3,
        render_mode: str | None = None,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs: must be an int >= 1 (got {num_envs!r})")
        ValueCore.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.num_envs = num_envs
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
        """Step every copy (resetting those whose episode ended at the previous step)."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions: expected {self.num_envs} integer actions, got {actions.dtype} array "
                f"of shape {actions.shape}"
            )
        if actions.min() < 0 or actions.max() >= self.rules.n_actions:
            raise ValueError(f"actions: must be in [0, {self.rules.n_actions - 1}]")
        resetting = self._autoreset
        actions = np.ascontiguousarray(actions, dtype=np.int64)
        rewards = self.rules.step(self._state, actions, ~resetting)
        if resetting.any():
            # The store stepped every row; copies that were due a reset start afresh instead.
            rewards[resetting] = 0.0
            self._reset_copies(np.flatnonzero(resetting), [None] * int(resetting.sum()))
        self._autoreset = self._state.truncated.copy()
        terminated = np.zeros(self.num_envs, dtype=bool)
        observations, infos = self._observe()
        return observations, rewards, terminated, self._autoreset.copy(), infos

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
            return self._core.render("human", 0, f"copy 0 step {self._step_count[0]}")
        if self.render_mode == "rgb_array":
            return tuple(self._core.render("rgb_array", i) for i in range(self.num_envs))
        return tuple(
            self._core.render("ansi", i, f"copy {i} step {self._state.step_count[i]}")
            for i in range(self.num_envs)
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def _reset_copies(self, copies: np.ndarray, seeds: Sequence[int | None]) -> None:
        availability = np.empty(
            (len(copies), self.rules.episode_length, len(self.rules.goods)), dtype=bool
        )
        for j, (copy, seed) in enumerate(zip(copies, seeds, strict=True)):
            if seed is not None or self._generators[copy] is None:
                self._generators[copy] = seeding.np_random(seed)[0]
            availability[j] = self.rules.draw_availability(self._generators[copy])
        self.rules.reset(self._state, availability, copies)

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        """The observations and the infos, batched as ``SyncVectorEnv`` batches them."""
        observations = np.empty(
            (self.num_envs, *self.single_observation_space.shape), dtype=np.float32
        )
        action_wanting = self.rules.observe(self._state, observations)
        return observations, {
            **self._core.batched_values_info(),
            "action_wanting": action_wanting,
            "_action_wanting": self._everyone,
        }
