"""Gymnasium and PettingZoo social environments built on the value store.

Single-agent (Gymnasium): ``valuegym/Orchard-v0``, ``valuegym/Inbox-v0``.
Multi-agent (PettingZoo Parallel, AEC through the conversion): ``valuegym/Commons-v0``,
``valuegym/Conversation-v0``, ``valuegym/Conversation-v1`` (its listeners appraise what is
said: an appraisal input beside the action).
"""

from valuegym.envs.registration import MULTI_AGENT_ENV_IDS, SINGLE_AGENT_ENV_IDS, register_envs

register_envs()

__all__ = ["MULTI_AGENT_ENV_IDS", "SINGLE_AGENT_ENV_IDS", "register_envs"]
