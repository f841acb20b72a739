"""The record schema: every table a run writes, its columns, their types and meaning, once.

A run folder's ``records/`` holds one Parquet file per table and episode
(:class:`~valuegym.records.folders.RunFolder`). The runner hands rows to an
:class:`~valuegym.records.folders.EpisodeRecorder`, which writes each table through
:meth:`TableSchema.table`: a column the schema does not declare is an error, and every column
is cast to its declared type, so a table's types do not depend on which values an episode
happened to produce (an all-null column is still ``double``). Analysis reads the rows by the
names declared here and never reads the scenario: each row carries its agent's scenario entry
(the design cell until a scenario declares factors of its own), the channel settings the agent
actually used, and the names of its values and env metrics in its column names.

Three column families are declared as patterns, each owned by one writer:

- ``stock_<value>`` and ``wanting_<value>``: the agent's value state, one column per value
  (:meth:`valuegym.values.AgentSnapshot.to_record`, read back by ``from_record``);
- ``env_<metric>``: the env's numeric (or text) ``info`` entries (:func:`metric_column` names
  one, :func:`metric_names` lists a table's).

A run folder also holds ``design.json`` (:class:`RunDesign`): the schema version the records
follow, the scenario's entries and its declared primary contrasts. A folder without it, or with
an older version, predates this schema and is refused by analysis with the version it has.

The tables are documented in ``docs/design.md`` (section "Records"), which lists the columns
from :data:`TABLES`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from valuegym.records.design import (
    SCHEMA_VERSION,
    EntryDesign,
    RecordSchemaError,
    RunDesign,
    outdated,
)

__all__ = [
    "METRIC_PREFIX",
    "RECORD_KINDS",
    "SCHEMA_VERSION",
    "TABLES",
    "Column",
    "EntryDesign",
    "RecordSchemaError",
    "RunDesign",
    "TableSchema",
    "metric_column",
    "metric_names",
    "outdated",
    "schema_markdown",
]


#: Prefix of the env-metric columns (``env_<metric>``).
METRIC_PREFIX: Final = "env_"
_STOCK_PREFIX: Final = "stock_"
_WANTING_PREFIX: Final = "wanting_"


@dataclass(frozen=True)
class Column:
    """One column, or one family of columns (``prefix`` set).

    Attributes:
        name: The column's name; for a family, its pattern (``stock_<value>``).
        type: Its Arrow type.
        meaning: What it holds, with its unit.
        prefix: For a family, the prefix every member's name starts with.
        alternative: For a family, a second type a member may have (text ``info`` entries).
    """

    name: str
    type: pa.DataType
    meaning: str
    prefix: str | None = None
    alternative: pa.DataType | None = None


@dataclass(frozen=True)
class TableSchema:
    """The columns of one record table.

    Attributes:
        kind: The table's name (the file is ``<kind>-e<episode>.parquet``).
        meaning: What one row is.
        columns: The declared columns, in the order rows usually carry them.
    """

    kind: str
    meaning: str
    columns: tuple[Column, ...]
    _by_name: dict[str, Column] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns if c.prefix is None})

    @property
    def names(self) -> tuple[str, ...]:
        """The fixed (non-family) column names."""
        return tuple(self._by_name)

    def markdown(self) -> str:
        """The table's columns as a Markdown table (name, type, meaning)."""
        lines = [
            f"**`{self.kind}`**: {self.meaning}.",
            "",
            "| column | type | meaning |",
            "|---|---|---|",
        ]
        lines.extend(f"| `{c.name}` | {c.type} | {c.meaning} |" for c in self.columns)
        return "\n".join(lines)

    def column(self, name: str) -> Column:
        """The declaration a column name falls under.

        Args:
            name: A column name, e.g. ``"reward"`` or ``"stock_apple"``.

        Returns:
            Its column, or its family's.

        Raises:
            RecordSchemaError: When the table declares no such column.
        """
        if name in self._by_name:
            return self._by_name[name]
        for column in self.columns:
            if column.prefix is not None and name.startswith(column.prefix):
                return column
        raise RecordSchemaError(
            f"{self.kind} records: column {name!r} is not in the record schema "
            "(declare it in valuegym/records/schema.py)"
        )

    def table(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """The rows as a table of the declared types (columns in first-seen order).

        Args:
            rows: Flat mappings of column name to value; a column a row lacks is null there.

        Returns:
            The table (with only ``episode`` when there are no rows).

        Raises:
            RecordSchemaError: When a row has a column the schema does not declare, or a value
                that does not convert to its column's type.
        """
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(row))
        if not rows:
            return pa.table({"episode": pa.array([], pa.int64())})
        arrays = []
        for name in names:
            values = [row.get(name) for row in rows]
            arrays.append(self._array(name, values))
        return pa.table(arrays, names=list(names))

    def _array(self, name: str, values: list[Any]) -> pa.Array:
        column = self.column(name)
        declared = column.type
        if column.alternative is not None and any(isinstance(v, str) for v in values):
            declared = column.alternative
        try:
            # Inferred first, then cast safely: pa.array(values, type=int64) would truncate 7.5.
            return pa.array(values).cast(declared)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
            raise RecordSchemaError(
                f"{self.kind} records: column {name!r} does not hold {declared}: {error}"
            ) from None


def metric_column(metric: str) -> str:
    """The ``steps`` column of an env metric (an ``info`` entry): ``env_<metric>``."""
    return f"{METRIC_PREFIX}{metric}"


def metric_names(columns: Iterable[str]) -> list[str]:
    """The env metric names of a table's ``env_<metric>`` columns, in column order."""
    return [c.removeprefix(METRIC_PREFIX) for c in columns if c.startswith(METRIC_PREFIX)]


_F64 = pa.float64()
_I64 = pa.int64()
_STR = pa.string()
_BOOL = pa.bool_()
_F64_LIST = pa.list_(pa.float64())

_POSITION = (
    Column("episode", _I64, "episode number from 0 (the unit of replication)"),
    Column("step", _I64, "step number from 0 within the episode"),
    Column("agent", _STR, "its recorded name: its entry's, with _0, _1, ... when count > 1"),
)
_ENTRY = (
    Column("entry", _STR, "the agent's scenario entry: its id, else its kind and index (softmax1)"),
    Column("entry_index", _I64, "the entry's position in the scenario's agents list"),
    Column(
        "agent_kind",
        _STR,
        "the entry's agent kind (lm, greedy, softmax, random, ppo, planner, scripted)",
    ),
)
_STATE = (
    Column("mood", _F64, "mood in [-1, 1]"),
    Column("stress", _F64, "stress in [0, 1]"),
    Column("temperature", _F64, "the value-state temperature T0 * exp(a_s stress + a_m mood)"),
    Column("most_wanted", _STR, "the value with the highest wanting"),
    Column("stock_<value>", _F64, "satiation stock of each value", prefix=_STOCK_PREFIX),
    Column(
        "wanting_<value>",
        _F64,
        "wanting (effective weight x marginal utility) of each value",
        prefix=_WANTING_PREFIX,
    ),
)
_ENTROPY = (
    Column("length", _I64, "generated tokens"),
    Column("mean_token_entropy", _F64, "mean per-token entropy at temperature 1"),
    Column("total_token_entropy", _F64, "summed per-token entropy at temperature 1"),
    Column("mean_sampled_entropy", _F64, "mean entropy of the distributions sampled from"),
    Column("total_sampled_entropy", _F64, "summed entropy of the distributions sampled from"),
    Column("surprisal", _F64, "-sum log p(token) at temperature 1"),
    Column("mean_surprisal", _F64, "surprisal per token"),
    Column("is_estimate", _BOOL, "entropies from top-k log-probabilities (HTTP servers)"),
    Column("total_entropy_tail_bound", _F64, "bound on the missing tail's entropy, or null"),
    Column("unit", _STR, "nats or bits"),
)

#: Every record table, by kind.
TABLES: Final[dict[str, TableSchema]] = {
    schema.kind: schema
    for schema in (
        TableSchema(
            "steps",
            "one agent at one step, with its state after the step",
            (
                *_POSITION,
                *_ENTRY,
                Column("env_agent", _STR, "the env's name for the agent"),
                Column("action", _I64, "the discrete action taken (-1: did not act)"),
                Column("reward", _F64, "utility gain of the step"),
                Column("terminated", _BOOL, "the episode ended for the agent"),
                Column("truncated", _BOOL, "the episode was cut for the agent"),
                *_STATE,
                Column(
                    "env_<metric>",
                    _F64,
                    "each numeric info entry of the env (text entries as strings)",
                    prefix=METRIC_PREFIX,
                    alternative=_STR,
                ),
            ),
        ),
        TableSchema(
            "utterances",
            "one utterance, with the state its agent spoke from and its channel settings",
            (
                *_POSITION,
                *_ENTRY,
                *_STATE,
                Column("sampling_temperature", _F64, "the temperature actually sampled at"),
                Column("text", _STR, "what was said"),
                Column("finish_reason", _STR, "stop (end of sequence or stop string) or length"),
                Column("model", _STR, "the language model's name"),
                *_ENTROPY,
                Column("token_entropy", _F64_LIST, "per token: entropy at temperature 1"),
                Column("sampled_entropy", _F64_LIST, "per token: entropy sampled from"),
                Column("token_logprob", _F64_LIST, "per token: log p at temperature 1"),
                Column("persona", _STR, "the persona the prompt gave"),
                Column("context_id", _STR, "hash of the context (persona, template, events)"),
                Column("context", _STR, "the events the prompt listed (JSON list)"),
                Column("prompt", _STR, "the chat messages (JSON)"),
                Column("prompt_state", _STR, "the prompt channel: actual, blind or fixed(...)"),
                Column("prompt_mood", _F64, "the mood the prompt stated (NaN: blind)"),
                Column("prompt_stress", _F64, "the stress the prompt stated (NaN: blind)"),
                Column("prompt_most_wanted", _STR, "the want the prompt stated"),
                Column("speech_temperature_setting", _STR, "state or a fixed temperature"),
                Column("act_temperature_setting", _STR, "state or a fixed temperature"),
                Column("top_p", _F64, "nucleus truncation used (1: none)"),
                Column("top_k", _I64, "top-k truncation used (0: none)"),
                Column("min_p", _F64, "min-p truncation used (0: none)"),
                Column("max_new_tokens", _I64, "the token cap the utterance was generated under"),
                Column("stop", _STR, "the strings that end an utterance (JSON list)"),
                Column(
                    "steer_stress",
                    _F64,
                    "steering coefficient alpha (s - s0) of the stress direction (NaN: none)",
                ),
                Column("steer_mood", _F64, "the same for the mood direction (NaN: none)"),
                Column("sampler_seed", _I64, "seed of the batch the utterance was sampled in"),
                Column("sampler_index", _I64, "its position in that batch"),
                Column("semantic_entropy", _F64, "semantic entropy over K samples (NaN: none)"),
                Column("semantic_entropy_discrete", _F64, "its discrete estimate (NaN: none)"),
                Column("n_clusters", _I64, "meaning clusters among the K samples (0: none)"),
            ),
        ),
        TableSchema(
            "information",
            "the mutual information between stated states and an agent's utterance at a step",
            (
                *_POSITION,
                *_ENTRY,
                Column("context_id", _STR, "the context the states were stated in"),
                Column("states", _STR, "the designed states (JSON list)"),
                Column("mutual_information", _F64, "I(S; Y)"),
                Column("marginal_entropy", _F64, "H(Y)"),
                Column("conditional_entropy", _F64, "H(Y | S)"),
                Column("n_states", _I64, "designed states"),
                Column("n_samples", _I64, "samples per state"),
                Column("standard_error", _F64, "Monte Carlo standard error of I"),
                Column("unit", _STR, "nats or bits"),
                Column("sampling_temperature", _F64, "temperature the samples were drawn at (1)"),
                Column("top_p", _F64, "nucleus truncation of the samples (1: none)"),
                Column("top_k", _I64, "top-k truncation of the samples (0: none)"),
                Column("min_p", _F64, "min-p truncation of the samples (0: none)"),
            ),
        ),
        TableSchema(
            "replay",
            "one sample of a recorded context regenerated under one cell of the replay grid",
            (
                *_POSITION,
                *_ENTRY,
                Column("context_id", _STR, "the replayed context"),
                Column("cell", _STR, "the grid cell (c000...; placebo cells p000...)"),
                Column(
                    "placebo",
                    _BOOL,
                    "the prompt stated a random stress and mood, drawn independently of the "
                    "actual state (recorded in prompt_stress, prompt_mood)",
                ),
                Column("set_stress", _F64, "the cell's stated stress (NaN: the agent's own)"),
                Column("set_mood", _F64, "the cell's stated mood (NaN: the agent's own)"),
                Column("set_temperature", _F64, "the cell's temperature (NaN: the agent's own)"),
                Column(
                    "set_steer_stress",
                    _F64,
                    "the cell's steering stress coefficient alpha (s - s0) (NaN: the agent's own)",
                ),
                Column("prompt_stress", _F64, "the stress the prompt stated"),
                Column("prompt_mood", _F64, "the mood the prompt stated"),
                Column("temperature", _F64, "the temperature sampled at"),
                Column("persona_index", _I64, "the grid persona (-1: the agent's own)"),
                Column("sample", _I64, "sample number (same seed in every cell)"),
                Column("actual_stress", _F64, "the recorded agent's stress"),
                Column("actual_mood", _F64, "the recorded agent's mood"),
                Column("actual_temperature", _F64, "the recorded agent's speech temperature"),
                Column("text", _STR, "what was said"),
                Column("length", _I64, "generated tokens"),
                Column("finish_reason", _STR, "stop or length"),
                Column("sequence_entropy", _F64, "summed entropy of the distributions sampled"),
                Column("mean_sampled_entropy", _F64, "its mean per token"),
                Column("total_token_entropy", _F64, "summed entropy at temperature 1"),
                Column("mean_token_entropy", _F64, "its mean per token"),
                Column("surprisal", _F64, "-sum log p(token) at temperature 1"),
            ),
        ),
        TableSchema(
            "manipulation",
            "one sample of the lowest or highest stated stress level's replay cell, scored under "
            "both levels' prompts (manipulation check: how far the stated stress shifts replies)",
            (
                *_POSITION,
                *_ENTRY,
                Column("context_id", _STR, "the replayed context"),
                Column("temperature", _F64, "the temperature both cells sampled at"),
                Column("low_stress", _F64, "the lowest stress the grid states"),
                Column("high_stress", _F64, "the highest stress the grid states"),
                Column("sampled_stress", _F64, "the stated stress of the cell the sample is from"),
                Column("sample", _I64, "sample number (same seed in both cells)"),
                Column("loglik_low", _F64, "log p(sample | prompt stating low_stress), nats, T=1"),
                Column(
                    "loglik_high", _F64, "log p(sample | prompt stating high_stress), nats, T=1"
                ),
                Column("length", _I64, "generated tokens of the sample"),
            ),
        ),
        TableSchema(
            "dose",
            "one sample of a non-placebo replay cell scored under the unsteered model and under "
            "its cell's steering, on the cell's prompt (the steering's dose-response guard)",
            (
                *_POSITION,
                *_ENTRY,
                Column("context_id", _STR, "the replayed context"),
                Column("cell", _STR, "the grid cell (as in replay)"),
                Column("set_steer_stress", _F64, "the cell's steering stress coefficient"),
                Column("sample", _I64, "sample number (same seed in every cell)"),
                Column("length", _I64, "generated tokens of the sample"),
                Column("degenerate", _BOOL, "empty, or at least half repeated word 3-grams"),
                Column("loglik_unsteered", _F64, "log p(sample | prompt), unsteered, nats, T=1"),
                Column("loglik_steered", _F64, "log p(sample | prompt), the cell's steering"),
            ),
        ),
        TableSchema(
            "appraisals",
            "one listener's appraisal of one utterance (Conversation-v1 text mode), with its "
            "stress and mood before and after the step",
            (
                *_POSITION,
                *_ENTRY,
                Column("speaker", _STR, "who said it (recorded name)"),
                Column("speaker_entry", _STR, "the speaker's scenario entry"),
                Column("act", _STR, "the speech act (ask, help, share, joke, complain, silent)"),
                Column("text", _STR, "what the listener read"),
                Column("replaced", _BOOL, "the text is an intervention's replacement"),
                Column("addressed", _BOOL, "the utterance was addressed to this listener"),
                Column("weight", _F64, "1 when addressed, else the listener's overheard weight"),
                Column("repeats", _F64, "earlier asks in its window with the same meaning"),
                Column("repeat", _BOOL, "repeats > 0"),
                Column("judged_valence", _F64, "the valence judge's p(pos) - p(neg) (NaN: off)"),
                Column("valence_input", _F64, "valence given to the value store"),
                Column("surprisal_per_word", _F64, "-log p(text | chat) per word, nats (NaN: off)"),
                Column("expected_surprisal", _F64, "its running expectation before (NaN: none)"),
                Column("surprise_input", _F64, "surprise given to the value store"),
                Column("words", _I64, "words in the text"),
                Column("stress_before", _F64, "the listener's stress before the step"),
                Column("stress_after", _F64, "its stress after the step"),
                Column("mood_before", _F64, "the listener's mood before the step"),
                Column("mood_after", _F64, "its mood after the step"),
            ),
        ),
        TableSchema(
            "interventions",
            "one variant of a replaced incoming message, re-simulated from the episode's start "
            "with the same random numbers up to the listener's next turn",
            (
                *_POSITION,
                *_ENTRY,
                Column("variant", _STR, "the variant's name (original: the recorded message)"),
                Column("reference", _STR, "the variant the others are contrasted with"),
                Column("speaker", _STR, "who said the replaced message"),
                Column("text", _STR, "the message the listener read"),
                Column("repeats", _F64, "its repeats (appraisal)"),
                Column("judged_valence", _F64, "its judged valence (appraisal)"),
                Column("valence_input", _F64, "valence given to the listener"),
                Column("surprise_input", _F64, "surprise given to the listener"),
                Column("stress_before", _F64, "the listener's stress before the message"),
                Column("stress_change", _F64, "stress after minus before the message's step"),
                Column("mood_change", _F64, "mood after minus before the message's step"),
                Column("next_step", _I64, "the step of the listener's next turn (-1: none)"),
                Column("next_stress", _F64, "its stress at that turn (before acting)"),
                Column("next_act", _I64, "the action it took then (-1: none)"),
                Column("next_text", _STR, "what it said then (empty: not an LM agent)"),
                Column("next_mean_token_entropy", _F64, "that utterance's mean token entropy"),
                Column("next_surprisal", _F64, "that utterance's surprisal (summed)"),
                Column("next_length", _F64, "that utterance's tokens"),
            ),
        ),
    )
}

#: The per-episode record tables a run may write.
RECORD_KINDS: Final = tuple(TABLES)


def schema_markdown() -> str:
    """Every record table as Markdown: the record schema section of ``docs/design.md``."""
    return "\n\n".join(schema.markdown() for schema in TABLES.values()) + "\n"
