"""Stable-Baselines3 on a Gymnasium vector env: :class:`GymnasiumVecEnv`.

SB3 steps its own ``VecEnv`` type and refuses Gymnasium's ``VectorEnv``, so a native vector env
(``gymnasium.make_vec(..., vectorization_mode="vector_entry_point")``, e.g. the native vector
Orchard that steps thousands of copies in one array operation) would only reach SB3 through
``make_vec_env``, one Python env per copy. :class:`GymnasiumVecEnv` hands the vector env to SB3
as it is.

SB3 expects *same-step* autoreset: the observation returned with ``done`` is already the next
episode's first, and the last one is in ``info["terminal_observation"]``. The adapter reads the
vector env's ``metadata["autoreset_mode"]`` (Gymnasium's default, next-step, when absent):

- same-step: the final observations come from ``info["final_obs"]``;
- next-step and disabled: the finished copies are reset at once through
  ``reset(options={"reset_mask": done})`` (so a next-step env has no reset left to do on its
  next step).

Example:
    >>> import gymnasium
    >>> from stable_baselines3 import PPO
    >>> import valuegym
    >>> envs = gymnasium.make_vec(
    ...     "valuegym/Orchard-v0", num_envs=64, vectorization_mode="vector_entry_point"
    ... )
    >>> model = PPO("MlpPolicy", GymnasiumVecEnv(envs), n_steps=16, seed=0)
    >>> model = model.learn(1024)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

__all__ = ["GymnasiumVecEnv"]


class GymnasiumVecEnv(VecEnv):
    """An SB3 ``VecEnv`` over a Gymnasium ``VectorEnv``, without one Python env per copy.

    Per-copy ``infos`` hold what SB3 reads: ``terminal_observation`` and
    ``TimeLimit.truncated`` for finished copies, and, with ``with_info=True``, the vector env's
    own entries unbatched (which costs a Python loop over the copies each step).
    ``get_attr``, ``set_attr`` and ``env_method`` reach the vector env itself, once for all
    copies.

    Args:
        env: The vector env, with a ``reset_mask`` reset option unless its autoreset mode is
            same-step (Gymnasium's own vector envs and valuegym's native ones have it).
        with_info: Unbatch the vector env's info into every copy's info dict.

    Raises:
        ValueError: If the autoreset mode is not one of Gymnasium's.
    """

    def __init__(self, env: VectorEnv, *, with_info: bool = False) -> None:
        self.env = env  # before VecEnv.__init__, which reads the render mode through get_attr
        super().__init__(env.num_envs, env.single_observation_space, env.single_action_space)
        self.with_info = with_info
        self.render_mode = env.render_mode
        self.autoreset_mode = AutoresetMode(
            env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        )
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """Reset every copy with the seeds and options set through ``seed``/``set_options``."""
        seeds: Sequence[int | None] | None = self._seeds
        if all(seed is None for seed in self._seeds):
            seeds = None
        elif all(seed is not None for seed in self._seeds):
            seeds = self._seeds
        options = self._options[0] or None  # a vector env takes one options dict
        observations, info = self.env.reset(seed=seeds, options=options)  # type: ignore[arg-type]
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._unbatch(info) if self.with_info else [{}] * self.num_envs
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        """Remember the actions for :meth:`step_wait`."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every copy; finished copies start their next episode in the same step."""
        assert self._actions is not None, "step_async first"
        observations, rewards, terminated, truncated, info = self.env.step(self._actions)
        done = np.logical_or(terminated, truncated)
        infos: list[dict[str, Any]] = (
            self._unbatch(info) if self.with_info else [{} for _ in range(self.num_envs)]
        )
        if done.any():
            finished = np.flatnonzero(done)
            if self.autoreset_mode == AutoresetMode.SAME_STEP:
                final = info["final_obs"]
            else:
                final = observations.copy()
                fresh, _ = self.env.reset(options={"reset_mask": done})
                observations = np.where(
                    done.reshape(-1, *[1] * (fresh.ndim - 1)), fresh, observations
                )
            for index in finished:
                infos[index]["terminal_observation"] = final[index]
                infos[index]["TimeLimit.truncated"] = bool(
                    truncated[index] and not terminated[index]
                )
        return observations, np.asarray(rewards, dtype=np.float32), done, infos

    def close(self) -> None:
        """Close the vector env."""
        self.env.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One RGB frame per copy, when the vector env renders ``"rgb_array"``."""
        frames = self.env.render() if self.render_mode == "rgb_array" else None
        if frames is None:
            return [None] * self.num_envs
        return [np.asarray(frame) for frame in frames]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, repeated for each index."""
        value = getattr(self.env.unwrapped, attr_name)
        return [value] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set the vector env's attribute (for every copy at once)."""
        setattr(self.env.unwrapped, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call the vector env's method once; its result, repeated for each index."""
        result = getattr(self.env.unwrapped, method_name)(*method_args, **method_kwargs)
        return [result] * len(self._indices(indices))

    def env_is_wrapped(
        self, wrapper_class: type[gymnasium.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """``False``: the copies of a vector env are not Gymnasium-wrapped envs."""
        return [False] * len(self._indices(indices))

    def _indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return list(indices) if isinstance(indices, Iterable) else [indices]

    def _unbatch(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-copy info dicts from Gymnasium's batched info (masked entries only)."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for key, value in info.items():
            if key.startswith("_"):
                continue
            mask = info.get(f"_{key}", np.ones(self.num_envs, dtype=bool))
            if isinstance(value, dict):
                for index, nested in enumerate(self._unbatch(value)):
                    if mask[index]:
                        infos[index][key] = nested
                continue
            for row in np.flatnonzero(mask):
                infos[row][key] = value[row]
        return infos
