"""How listeners appraise what is said to them, and the designed intervention on a message.

Part of the scenario schema (:mod:`valuegym.scenarios.schema` re-exports these models). In
``valuegym/Conversation-v1`` text mode each utterance is appraised by its listeners
(:mod:`valuegym.agents.appraisal`) and the appraisal enters the listeners' value states::

    appraisal:                         # every listener; an agent's own appraisal replaces it
      repetition: {clusterer: embedding}          # an ask repeats an earlier one in meaning
      valence: {judge: embedding, weight: 1.0}    # how friendly or hostile the text reads
      surprise: {per_nat: 0.5, rate: 0.2, context_lines: 0}  # against the running expectation
      overheard: 0.0                              # weight of messages to someone else
      model: null                                 # judges' model (default: first LM agent's)
    measure:
      intervention:                    # re-simulate each episode with one message replaced
        listener: helper
        at_step: 12
        variants: {neutral: "Could you help me with the schedule?", repeat: "{last_ask}"}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from valuegym.scenarios.base import FrozenSpec, invalid_value, key_problem

__all__ = [
    "VARIANT_FIELDS",
    "GeneratedVariantSpec",
    "InterventionSpec",
    "ListenerAppraisalSpec",
    "RepetitionSpec",
    "SurpriseSpec",
    "ValenceSpec",
]


class RepetitionSpec(FrozenSpec):
    """When an incoming ask repeats an earlier one in meaning."""

    clusterer: Literal["embedding", "entailment", "text"] = Field(
        default="embedding",
        description="The meaning clusterer: embedding (all-MiniLM-L6-v2, cosine >= threshold), "
        "entailment (bidirectional, asked of the appraisal model) or text (normalised text "
        "identical). Calibrate with `valuegym calibrate-clusterer`.",
    )
    threshold: float | None = Field(
        default=None,
        ge=-1.0,
        le=1.0,
        description="Cosine similarity (embedding) or p(entails) (entailment); None: the "
        "clusterer's calibrated default.",
    )


class ValenceSpec(FrozenSpec):
    """How friendly or hostile an utterance reads, and how much that moves the listener."""

    judge: Literal["embedding", "lm", "off"] = Field(
        default="embedding",
        description="embedding (similarity to labelled anchors), lm (the appraisal model's "
        "scored answer) or off. Calibrate with `valuegym calibrate-valence`.",
    )
    weight: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Valence input = weight x judged valence."
    )


class SurpriseSpec(FrozenSpec):
    """The listener's surprisal of an utterance, against its running expectation."""

    per_nat: float = Field(
        default=0.5,
        ge=0.0,
        le=10.0,
        description="Surprise input per nat per word above the running expectation "
        "(0: surprise off).",
    )
    rate: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        description="How far the expectation moves toward each new surprisal.",
    )
    context_lines: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Chat lines before the utterance the listener's model reads besides its "
        "header (0: how unusual the message is in itself; repeats are the repetition "
        "channel's). Each line costs about 0.08 s with SmolLM2-135M on 2 cores.",
    )


class ListenerAppraisalSpec(FrozenSpec):
    """How one listener appraises what it hears."""

    repetition: RepetitionSpec = Field(default_factory=RepetitionSpec)
    valence: ValenceSpec = Field(default_factory=ValenceSpec)
    surprise: SurpriseSpec = Field(default_factory=SurpriseSpec)
    overheard: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Weight of the valence and surprise of messages addressed to someone "
        "else (0: a listener appraises only what is said to it).",
    )


#: Placeholders a variant may hold: the replaced message, the listener's previous ask.
VARIANT_FIELDS = ("original", "last_ask")


def _check_placeholders(text: str, where: str) -> None:
    try:
        text.format(**dict.fromkeys(VARIANT_FIELDS, ""))
    except (KeyError, IndexError, ValueError):
        raise invalid_value(
            f"{where}: only {{original}} and {{last_ask}} may appear in braces"
        ) from None


class GeneratedVariantSpec(FrozenSpec):
    """A variant a language model writes, greedily, for each episode's replaced message."""

    generate: str = Field(
        min_length=1,
        description="The instruction (a user turn), e.g. 'Rewrite this so it sounds hostile: "
        "{original}'; {original} is the replaced message, {last_ask} the previous ask.",
    )
    max_new_tokens: int = Field(default=32, ge=1, le=256, description="Most tokens written.")


class InterventionSpec(FrozenSpec):
    """Replace one incoming message per episode with designed variants (re-simulated).

    In each episode the first message addressed to ``listener`` at or after ``at_step`` is
    replaced by each variant in turn, and the episode is run again from its start with the
    same random numbers up to the listener's next turn. A variant is a text, where
    ``{original}`` is the replaced message and ``{last_ask}`` the last ask the listener received
    before it, verbatim; or ``{generate: INSTRUCTION}``, a text the appraisal model writes
    greedily from the instruction (same placeholders) for each episode.
    """

    listener: str = Field(min_length=1, description="The agent id whose message is replaced.")
    at_step: int = Field(default=0, ge=0, description="Replace the first message from here.")
    variants: dict[str, str | GeneratedVariantSpec] = Field(
        min_length=1,
        description="Variant name -> replacement text ({original}, {last_ask}) or "
        "{generate: instruction}.",
    )
    reference: str = Field(
        default="original",
        description="What each variant is compared with: 'original' (the recorded message) "
        "or a variant's name.",
    )

    @field_validator("variants")
    @classmethod
    def _variant_texts(
        cls, variants: dict[str, str | GeneratedVariantSpec]
    ) -> dict[str, str | GeneratedVariantSpec]:
        for name, variant in variants.items():
            if name == "original":
                raise invalid_value("'original' names the recorded message; pick another name")
            text = variant if isinstance(variant, str) else variant.generate
            if not text.strip():
                raise invalid_value(f"variant {name!r}: the text is empty")
            _check_placeholders(text, f"variant {name!r}")
        return variants

    @model_validator(mode="after")
    def _reference_exists(self) -> InterventionSpec:
        if self.reference != "original" and self.reference not in self.variants:
            raise key_problem(
                "reference",
                f"{self.reference!r} is neither 'original' nor a variant "
                f"({', '.join(self.variants)})",
            )
        return self
