"""Registration of valuegym's environments with Gymnasium and PettingZoo.

Runs on ``import valuegym``. Gymnasium 1.x has no entry-point plugins, so the ids are
registered here; ``gymnasium.make("valuegym:valuegym/Orchard-v0")`` imports the package first.
Entry points are strings, so no environment module is imported until it is made.

The single-agent ids carry their horizon, ``max_episode_steps`` (:data:`EPISODE_LENGTH`), so
``gymnasium.make`` truncates with Gymnasium's ``TimeLimit`` and tools read the horizon from
the spec. The env's observation counts down to the same step, which it must know when it is
built, and Gymnasium hands ``max_episode_steps`` only to native vector envs (``make_vec``
passes it as an argument), never to a single env (``make`` keeps it for the wrapper and sets
``env.unwrapped.spec.max_episode_steps`` to ``None``): to change the horizon of one made env,
give both, ``gymnasium.make(id, episode_length=N, max_episode_steps=N)``, as the scenario
runner does.
"""

from __future__ import annotations

import inspect
from typing import Any, Final, cast

import gymnasium
import pettingzoo

__all__ = [
    "EPISODE_LENGTH",
    "MULTI_AGENT_ENV_IDS",
    "SINGLE_AGENT_ENV_IDS",
    "env_class",
    "env_parameters",
    "register_envs",
]

#: The single-agent envs' default ``episode_length`` and their registered ``max_episode_steps``:
#: one number, so that ``gymnasium.make(id)``'s ``TimeLimit`` and the env's own horizon (its
#: observation's countdown, Orchard's stock schedule) end an episode at the same step.
EPISODE_LENGTH: Final = 100

#: Gymnasium ids, with their entry points and (optionally) native vector entry points.
_GYMNASIUM: Final[dict[str, dict[str, str]]] = {
    "valuegym/Orchard-v0": {
        "entry_point": "valuegym.envs.orchard:OrchardEnv",
        "vector_entry_point": "valuegym.envs.orchard_vector:OrchardVectorEnv",
    },
    "valuegym/Inbox-v0": {"entry_point": "valuegym.envs.inbox:InboxEnv"},
}

#: PettingZoo ids and the modules holding ``parallel_env`` and ``env`` (AEC).
_PETTINGZOO: Final = {
    "valuegym/Commons-v0": "valuegym.envs.commons",
    "valuegym/Conversation-v0": "valuegym.envs.conversation",
    "valuegym/Conversation-v1": "valuegym.envs.conversation_v1",
}

#: The class behind each id: its docstring documents the arguments, and its
#: ``default_profile`` classmethod is part of the env contract (:mod:`valuegym.envs.protocol`).
_CLASSES: Final = {
    **{env_id: entry["entry_point"] for env_id, entry in _GYMNASIUM.items()},
    "valuegym/Commons-v0": "valuegym.envs.commons:CommonsEnv",
    "valuegym/Conversation-v0": "valuegym.envs.conversation:ConversationEnv",
    "valuegym/Conversation-v1": "valuegym.envs.conversation_v1:ConversationV1Env",
}

SINGLE_AGENT_ENV_IDS: Final = tuple(_GYMNASIUM)
MULTI_AGENT_ENV_IDS: Final = tuple(_PETTINGZOO)


def env_class(env_id: str) -> type[Any]:
    """The env class of a valuegym id, imported on first use.

    Args:
        env_id: A valuegym id, e.g. ``"valuegym/Commons-v0"``.

    Returns:
        The class (a ``gymnasium.Env`` or a PettingZoo ``ParallelEnv``).

    Raises:
        KeyError: If the id is not a valuegym env.
    """
    if env_id not in _CLASSES:
        raise KeyError(f"{env_id!r} is not a valuegym env (known: {', '.join(_CLASSES)})")
    return cast("type[Any]", gymnasium.envs.registration.load_env_creator(_CLASSES[env_id]))


def env_parameters(env_id: str) -> tuple[str, ...] | None:
    """Names of the env's constructor arguments, or ``None`` if it takes any keyword.

    Args:
        env_id: A registered valuegym id.

    Returns:
        The argument names, in order.
    """
    parameters = inspect.signature(env_class(env_id)).parameters.values()
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return tuple(parameter.name for parameter in parameters if parameter.name != "self")


def register_envs() -> None:
    """Register every valuegym id that is not registered yet (safe to call again)."""
    for env_id, entry in _GYMNASIUM.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(
                id=env_id,
                entry_point=entry["entry_point"],
                vector_entry_point=entry.get("vector_entry_point"),
                max_episode_steps=EPISODE_LENGTH,
            )
    for env_id, module in _PETTINGZOO.items():
        if env_id not in pettingzoo.parallel_registry:
            pettingzoo.register("parallel", env_id, f"{module}:parallel_env")
        if env_id not in pettingzoo.aec_registry:
            pettingzoo.register("aec", env_id, f"{module}:env")
