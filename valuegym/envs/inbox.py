"""Inbox: messages arrive, some in bursts of the same question; reply, defer, ignore or rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Final

import gymnasium
import numpy as np
from gymnasium import spaces

from valuegym.envs.core import ValueCore, generator_state, restore_generator
from valuegym.envs.profiles import GOOD_DEFAULTS, REST_DEFAULTS, resolve_profile
from valuegym.envs.registration import EPISODE_LENGTH
from valuegym.envs.rendering import RENDER_MODES
from valuegym.values import ValueProfile, ValueStore

__all__ = ["ACTIONS", "DEFAULT_CONTACTS", "DEFAULT_TOPICS", "InboxEnv"]

#: Action names, in action order.
ACTIONS: Final = ("reply_most_wanted", "reply_oldest", "defer", "ignore", "rest")
DEFAULT_CONTACTS: Final = ("Ana", "Ben", "Chen", "Dara", "Eli", "Fay", "Gus", "Hana")
#: Message topics with their text templates; ``{day}``, ``{time}`` and ``{item}`` are drawn.
DEFAULT_TOPICS: Final[Mapping[str, tuple[str, ...]]] = {
    "meeting": (
        "Can we move our {day} meeting to {time}?",
        "Are we still on for the meeting {day} at {time}?",
        "Could you send the agenda for {day}'s meeting?",
    ),
    "deadline": (
        "Is the {item} deadline still {day}?",
        "Could I get until {day} for the {item}?",
        "When exactly is the {item} due?",
    ),
    "lunch": ("Lunch {day} at {time}?", "Want to grab lunch {day}?", "Where shall we eat {day}?"),
    "bug": (
        "The {item} crashes when I open it, any idea why?",
        "Did you see the bug report about the {item}?",
        "Is the {item} fix merged yet?",
    ),
    "report": (
        "Could you review my {item} report by {day}?",
        "Where is the latest {item} report?",
        "Can you add this week's numbers to the {item} report?",
    ),
}
_GENERIC_TEMPLATES: Final = (
    "Quick question about the {topic}, do you have a minute {day}?",
    "Any news on the {topic}?",
    "Can we talk about the {topic} {day} at {time}?",
)
_FILLERS: Final = {
    "day": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "time": ("9:30", "11:00", "13:00", "15:30"),
    "item": ("budget", "website", "app", "survey", "quarterly plan"),
}
_REPLY_MOST_WANTED, _REPLY_OLDEST, _DEFER, _IGNORE, _REST = range(len(ACTIONS))


def _default_profile(topics: Sequence[str]) -> ValueProfile:
    values: dict[str, Any] = {
        topic: {**GOOD_DEFAULTS, "satiation_half_life": 10.0} for topic in topics
    }
    values["standing"] = {"weight": 0.5, "curve": "log", "satiation_half_life": 20.0}
    values["rest"] = dict(REST_DEFAULTS)
    return ValueProfile.from_mapping({"values": values})


class InboxEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Messages arrive from contacts, sometimes many asking the same thing; answer them or not.

    ## Description
    Each step a seeded Poisson number of messages arrives, each from a contact about a topic,
    with a text drawn from templates; sometimes a burst arrives: many contacts ask the same
    question. Replying to a message satisfies the agent's social need for its topic, with
    diminishing returns per topic (the tenth identical question is worth less than the first),
    and earns standing in proportion to the sender's regard for the agent. Ignoring a message
    lowers its sender's regard and the agent's mood; when the inbox is full its oldest
    messages are dropped, which lowers their senders' regard too. Every pending message, and
    every duplicate of a topic among them, is load that raises stress; resting lowers it.

    ## Action Space
    `Discrete(5)`: 0 reply to the message the agent wants most to answer, 1 reply to the
    oldest, 2 defer the oldest (it moves to the back of the queue), 3 ignore the oldest,
    4 rest. Replying to or handling an empty inbox does nothing.

    ## Observation Space
    `Box(float32)`, the value part (`2 n_values + 2`, see :mod:`valuegym.envs.core`; values are
    the topics, `standing`, `rest`) followed by (`2 n_topics + 4`):

    | Entries            | Observation                                        | Min | Max |
    |--------------------|----------------------------------------------------|-----|-----|
    | value part         | squashed stocks and wantings, mood, stress         | -1  | 1   |
    | next 1             | pending messages / capacity                        | 0   | 1   |
    | next `n_topics`    | pending messages per topic / capacity              | 0   | 1   |
    | next `n_topics`    | one-hot topic of the oldest message                | 0   | 1   |
    | next 1             | age of the oldest message, `a / (1 + a)`           | 0   | 1   |
    | next 1             | mean regard of the contacts (standing)             | 0   | 1   |
    | last               | fraction of the episode left                       | 0   | 1   |

    ## Rewards
    The utility gain from the value store: for a reply, the topic's gain plus the standing
    gain of `regard(sender)` units; for rest, the rest gain; 0 otherwise.

    ## Info
    By value index (names in `value_names`) or by action (names in `action_names`); the first
    six are the env contract's :class:`valuegym.envs.protocol.ValueInfo`. All entries are
    numbers or float64 arrays except `messages`, a list of dicts with text in them:

    | Key              | Type                       | Meaning                                   |
    |------------------|----------------------------|-------------------------------------------|
    | `stocks`         | array `(n_values,)`        | stock (satiation) per value               |
    | `wanting`        | array `(n_values,)`        | effective weight x marginal utility       |
    | `mood`           | float in [-1, 1]           | valence                                   |
    | `stress`         | float in [0, 1]            | load                                      |
    | `temperature`    | float > 0                  | decision and sampling temperature         |
    | `most_wanted`    | int                        | the value wanted most (first on ties)     |
    | `action_wanting` | array `(5,)`               | wanting each action serves (see below)    |
    | `messages`       | list of dicts, not numeric | the pending messages, oldest first        |
    | `regard`         | array `(n_contacts,)`      | regard for the agent, in `contacts` order |

    A reply serves its topic's wanting plus the sender's regard times the wanting of
    `standing`; defer and ignore serve nothing. Each message is a dict: `id` (int), `sender`,
    `topic` and `text` (str), `arrived` (int, the step). Regard is in [0, 1].

    ## State
    The agent's value state, stepped by its value store once per step
    (:mod:`valuegym.envs.core`): per value (topics, `standing`, `rest`) a stock (satiation,
    which halves without consumption every `satiation_half_life` steps) and a wanting (its
    weight, moved by mood and stress, times its marginal utility), and mood, stress and
    temperature, whose parameters are the Default Value Profile's below. Beside it, the
    pending messages and each contact's regard (a reply raises it by 0.1, up to 1).
    `get_state()` copies all of it (the generator's state too) and `set_state()` restores
    it: the env's state contract (:class:`valuegym.envs.protocol.SupportsState`).

    ## Starting State
    An empty inbox, every contact's regard 1, values at their initial state; the first
    messages arrive before the first observation.

    ## Episode End
    No termination; truncation after `episode_length` steps. `gymnasium.make` adds Gymnasium's
    `TimeLimit` at the registered `max_episode_steps`, 100 like the default `episode_length`;
    to change the horizon give both (`gymnasium.make(id, episode_length=N,
    max_episode_steps=N)`): Gymnasium does not pass `max_episode_steps` to the env, whose
    observation counts down to the end.

    ## Arguments
    - `topics`: topic names (default those of `DEFAULT_TOPICS`; others get generic templates).
    - `contacts`: contact names (default `DEFAULT_CONTACTS`).
    - `profile`: value profile with a value per topic plus `standing` and `rest`.
    - `arrival_rate`: mean messages per step (default 0.6).
    - `burst_probability`, `burst_size`: chance per step of a burst and its size (0.05, 6).
    - `capacity`: most pending messages (default 12).
    - `backlog_load`, `repetition_load`: load per pending message and per duplicate topic
      (0.03, 0.05).
    - `ignore_penalty`: regard lost by an ignored contact (default 0.3).
    - `episode_length`: steps per episode (default 100).
    - `render_mode`: `"human"` (a pygame window where pygame and a display are, else the
      text frame printed; see :mod:`valuegym.envs.rendering`), `"ansi"` or `"rgb_array"`.

    ## Version History
    - v0: initial version.

    Example:
        >>> import gymnasium
        >>> import valuegym
        >>> env = gymnasium.make("valuegym/Inbox-v0")
        >>> observation, info = env.reset(seed=5)
        >>> message = info["messages"][0]
        >>> message["sender"], message["topic"], message["arrived"]
        ('Chen', 'bug', 0)
        >>> message["text"]
        'Did you see the bug report about the website?'
        >>> observation, reward, terminated, truncated, info = env.step(1)  # reply to the oldest
        >>> round(reward, 3)
        0.974
        >>> [message["text"] for message in info["messages"]]
        ['Lunch Monday at 9:30?', 'When exactly is the budget due?']
    """

    # Gymnasium annotates metadata as an instance attribute; it is a class-level constant.
    metadata: ClassVar[dict[str, Any]] = {  # type: ignore[misc]
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
    }

    @classmethod
    def default_profile(cls, topics: Sequence[str] | None = None, **_: Any) -> ValueProfile:
        """The agent's profile when no ``profile`` is given, for these ``topics``.

        Args:
            topics: The env's ``topics`` argument; other constructor arguments are ignored.

        Returns:
            One value per topic, then ``standing`` and ``rest``.
        """
        return _default_profile(tuple(DEFAULT_TOPICS if topics is None else topics))

    def __init__(
        self,
        topics: Sequence[str] | None = None,
        contacts: Sequence[str] = DEFAULT_CONTACTS,
        profile: ValueProfile | Mapping[str, Any] | None = None,
        arrival_rate: float = 0.6,
        burst_probability: float = 0.05,
        burst_size: int = 6,
        capacity: int = 12,
        backlog_load: float = 0.03,
        repetition_load: float = 0.05,
        ignore_penalty: float = 0.3,
        episode_length: int = EPISODE_LENGTH,
        render_mode: str | None = None,
    ):
        ValueCore.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.topics = tuple(DEFAULT_TOPICS if topics is None else topics)
        self.contacts = tuple(contacts)
        if not self.topics or not self.contacts:
            raise ValueError("topics and contacts: need at least one of each")
        for name, value in (
            ("arrival_rate", arrival_rate),
            ("backlog_load", backlog_load),
            ("repetition_load", repetition_load),
        ):
            if not value >= 0:
                raise ValueError(f"{name}: must be >= 0 (got {value})")
        for name, value in (
            ("burst_probability", burst_probability),
            ("ignore_penalty", ignore_penalty),
        ):
            if not 0 <= value <= 1:
                raise ValueError(f"{name}: must be in [0, 1] (got {value})")
        for name, count in (
            ("burst_size", burst_size),
            ("capacity", capacity),
            ("episode_length", episode_length),
        ):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ValueError(f"{name}: must be an int >= 1 (got {count!r})")
        profile = resolve_profile(
            profile, self.default_profile(self.topics), required=(*self.topics, "standing", "rest")
        )
        self.arrival_rate, self.burst_probability = arrival_rate, burst_probability
        self.burst_size, self.capacity = min(burst_size, len(self.contacts)), capacity
        self.backlog_load, self.repetition_load = backlog_load, repetition_load
        self.ignore_penalty, self.episode_length = ignore_penalty, episode_length
        self.profile: ValueProfile = profile  # the agent's values (the default when none given)
        self._core = ValueCore(ValueStore.from_profile(profile))
        self._topic_columns = [self._core.index(topic) for topic in self.topics]
        self._standing_column = self._core.index("standing")
        self._rest_column = self._core.index("rest")
        self._consumption = np.zeros((1, self._core.n_values))
        self._pending: list[dict[str, Any]] = []
        self._regard = np.ones(len(self.contacts))
        self._step_count = 0
        self._next_id = 0
        self.action_space = spaces.Discrete(len(ACTIONS))
        low, high = self._core.observation_bounds()
        n_features = 2 * len(self.topics) + 4
        self.observation_space = spaces.Box(
            np.concatenate([low, np.zeros(n_features, dtype=np.float32)]),
            np.concatenate([high, np.ones(n_features, dtype=np.float32)]),
            dtype=np.float32,
        )

    @property
    def value_names(self) -> tuple[str, ...]:
        """The agents' values, in order (env contract, :mod:`valuegym.envs.protocol`)."""
        return self._core.value_names

    @property
    def action_names(self) -> tuple[str, ...]:
        """One text per action, in action order (:data:`ACTIONS` in words)."""
        return tuple(name.replace("_", " ") for name in ACTIONS)

    def step(
        self, action: int | np.integer
    ) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Handle one message or rest, then let new messages arrive; see the class docstring."""
        action = int(action)
        if not 0 <= action < len(ACTIONS):
            raise ValueError(f"action: must be in [0, {len(ACTIONS) - 1}] (got {action})")
        self._consumption.fill(0.0)
        rest = valence = 0.0
        if action == _REST:
            self._consumption[0, self._rest_column] = 1.0
            rest = 1.0
        elif self._pending:
            if action == _REPLY_MOST_WANTED:
                self._reply(int(np.argmax(self._reply_wanting())))
            elif action == _REPLY_OLDEST:
                self._reply(0)
            elif action == _DEFER:
                self._pending.append(self._pending.pop(0))
            else:
                valence = -self._ignore(0)
        gain = self._core.step(
            self._consumption,
            load=np.array([self._load()]),
            rest=np.array([rest]),
            valence=np.array([valence]),
        )
        self._step_count += 1
        self._arrive()
        truncated = self._step_count == self.episode_length
        return self._observation(), gain.item(0), False, truncated, self._info()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start with an empty inbox and full regard; the first messages arrive."""
        super().reset(seed=seed)
        self._core.reset()
        self._pending = []
        self._regard[:] = 1.0
        self._step_count = 0
        self._next_id = 0
        self._arrive()
        return self._observation(), self._info()

    def get_state(self) -> dict[str, Any]:
        """A deep copy of everything a step reads (:class:`~valuegym.envs.protocol.SupportsState`).

        The values, the pending messages, every contact's regard, the step count, the next
        message id and the generator (arrivals and their texts).
        """
        return {
            "values": self._core.get_state(),
            "pending": [dict(message) for message in self._pending],
            "regard": self._regard.copy(),
            "step_count": self._step_count,
            "next_id": self._next_id,
            "np_random": generator_state(self._np_random),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`'s copy: the next step is the one that followed it."""
        self._core.set_state(state["values"])
        self._pending = [dict(message) for message in state["pending"]]
        self._regard[:] = state["regard"]
        self._step_count = state["step_count"]
        self._next_id = state["next_id"]
        self._np_random = restore_generator(self._np_random, state["np_random"])

    def render(self) -> str | np.ndarray | None:
        """The value state and the inbox as text (``"ansi"``) or value bars (``"rgb_array"``)."""
        lines = [f"regard {self._regard.mean():.2f}  pending {len(self._pending)}"]
        lines += [f"  [{m['topic']}] {m['sender']}: {m['text']}" for m in self._pending]
        header = f"step {self._step_count}/{self.episode_length}"
        return self._core.render(self.render_mode, 0, header, lines)

    def close(self) -> None:
        """Close the ``"human"`` render window, if one is open."""
        self._core.close()

    def _reply(self, index: int) -> None:
        message = self._pending.pop(index)
        sender = self.contacts.index(message["sender"])
        self._consumption[0, self._topic_columns[self.topics.index(message["topic"])]] = 1.0
        self._consumption[0, self._standing_column] = self._regard[sender]
        self._regard[sender] = min(1.0, self._regard[sender] + 0.1)

    def _ignore(self, index: int) -> float:
        """Drop a message, lowering its sender's regard; returns the penalty (negative valence)."""
        sender = self.contacts.index(self._pending.pop(index)["sender"])
        self._regard[sender] = max(0.0, self._regard[sender] - self.ignore_penalty)
        return self.ignore_penalty

    def _load(self) -> float:
        counts = self._topic_counts()
        return self.backlog_load * len(self._pending) + self.repetition_load * float(
            np.maximum(counts - 1, 0).sum()
        )

    def _arrive(self) -> None:
        rng = self.np_random
        for _ in range(rng.poisson(self.arrival_rate)):
            topic = self.topics[rng.integers(len(self.topics))]
            self._post(self.contacts[rng.integers(len(self.contacts))], topic, self._text(topic))
        if rng.random() < self.burst_probability:
            topic = self.topics[rng.integers(len(self.topics))]
            text = self._text(topic)  # one question, asked by many
            for sender in rng.choice(len(self.contacts), self.burst_size, replace=False):
                self._post(self.contacts[sender], topic, text)
        while len(self._pending) > self.capacity:
            self._ignore(0)

    def _post(self, sender: str, topic: str, text: str) -> None:
        self._pending.append(
            {
                "id": self._next_id,
                "sender": sender,
                "topic": topic,
                "text": text,
                "arrived": self._step_count,
            }
        )
        self._next_id += 1

    def _text(self, topic: str) -> str:
        rng = self.np_random
        templates = DEFAULT_TOPICS.get(topic, _GENERIC_TEMPLATES)
        fill = {key: options[rng.integers(len(options))] for key, options in _FILLERS.items()}
        return templates[rng.integers(len(templates))].format(topic=topic, **fill)

    def _topic_counts(self) -> np.ndarray:
        counts = np.zeros(len(self.topics))
        for message in self._pending:
            counts[self.topics.index(message["topic"])] += 1
        return counts

    def _reply_wanting(self) -> np.ndarray:
        """Per pending message, the wanting a reply serves: its topic's plus regard x standing's."""
        wanting = self._core.wanting[0]
        return np.array(
            [
                wanting[self._topic_columns[self.topics.index(m["topic"])]]
                + self._regard[self.contacts.index(m["sender"])] * wanting[self._standing_column]
                for m in self._pending
            ]
        )

    def _observation(self) -> np.ndarray:
        size, n_topics = self._core.observation_size, len(self.topics)
        observation = np.zeros(size + 2 * n_topics + 4, dtype=np.float32)
        self._core.write_observation(observation[np.newaxis, :size])
        features = observation[size:]
        features[0] = len(self._pending) / self.capacity
        features[1 : 1 + n_topics] = self._topic_counts() / self.capacity
        if self._pending:
            oldest = self._pending[0]
            features[1 + n_topics + self.topics.index(oldest["topic"])] = 1.0
            age = self._step_count - oldest["arrived"]
            features[1 + 2 * n_topics] = age / (1.0 + age)
        features[2 + 2 * n_topics] = self._regard.mean()
        features[3 + 2 * n_topics] = 1.0 - self._step_count / self.episode_length
        return observation

    def _info(self) -> dict[str, Any]:
        reply_wanting = self._reply_wanting()
        action_wanting = np.zeros(len(ACTIONS))
        if len(reply_wanting):
            action_wanting[_REPLY_MOST_WANTED] = reply_wanting.max()
            action_wanting[_REPLY_OLDEST] = reply_wanting[0]
        action_wanting[_REST] = self._core.wanting[0, self._rest_column]
        return self._core.agent_info(
            0,
            action_wanting,
            messages=[dict(message) for message in self._pending],
            regard=self._regard.copy(),
        )
