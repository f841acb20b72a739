import math

import numpy as np
import pytest

from valuegym.agents.lm_agent import LMAgent
from valuegym.agents.prompts import (
    PromptState,
    PromptTemplate,
    describe_events,
    describe_mood,
    describe_stress,
    describe_wanting,
)
from valuegym.lm.base import Generation, LanguageModel
from valuegym.measures import UtteranceEntropy, get_clusterer, mutual_information, semantic_entropy
from valuegym.values import AgentSnapshot, ValueProfile, ValueStore

VALUES = {
    "social_contact": {"weight": 1.0, "curve": "log"},
    "rest": {"weight": 0.5, "curve": "saturating", "stress_weight": 1.0},
}
INBOX_MESSAGE = "Sam wrote: Can you help me move on Saturday?"


def _profile(stress: float, mood: float) -> ValueProfile:
    return ValueProfile.from_mapping(
        {"values": VALUES, "affect": {"stress_baseline": stress, "mood_baseline": mood}}
    )


@pytest.fixture
def store() -> ValueStore:
    """Agent 0 calm and cheerful, agent 1 stressed and glum."""
    return ValueStore.from_profiles([_profile(0.05, 0.5), _profile(0.9, -0.5)])


class FakeModel(LanguageModel):
    """Deterministic stand-in: text and measurements are a function of (seed, prompt index)."""

    name = "fake"

    def __init__(self, option_loglik=None):
        self.option_loglik = option_loglik or {}
        self.generate_calls = []
        self.score_calls = []

    def _generate(self, prompts, *, max_new_tokens, temperatures, seed, stop, truncation):
        temperatures = temperatures.tolist()
        self.generate_calls.append({"prompts": list(prompts), "temperature": temperatures})
        generations = []
        for index, temperature_used in enumerate(temperatures):
            rng = np.random.default_rng([0 if seed is None else seed, index])
            n_tokens = int(rng.integers(1, 5))
            token_entropy = rng.uniform(0.5, 3.0, n_tokens)
            generations.append(
                Generation(
                    text=f" reply {int(rng.integers(1000))} ",
                    token_ids=tuple(int(t) for t in rng.integers(0, 100, n_tokens)),
                    token_entropy=token_entropy,
                    sampled_entropy=token_entropy * min(temperature_used, 1.0),
                    token_logprob=-rng.uniform(0.1, 2.0, n_tokens),
                )
            )
        return generations

    def _score(self, prompt, continuations):
        self.score_calls.append({"prompt": prompt, "continuations": list(continuations)})
        return np.array([self.option_loglik[text] for text in continuations])


# ------------------------------------------------------------------------------ prompt


def test_mood_and_stress_are_verbalised_with_their_numbers():
    assert describe_stress(0.8) == "You feel quite stressed (stress 0.80/1)."
    assert describe_stress(0.05) == "You feel calm (stress 0.05/1)."
    assert describe_stress(1.0) == "You feel extremely stressed (stress 1.00/1)."
    assert describe_mood(-0.5) == "You are in a bad mood (mood -0.50 on a scale from -1 to 1)."
    assert describe_mood(0.7).startswith("You are in a very good mood")
    assert describe_events([]) == "Nothing new has happened."
    assert describe_events(["a", " ", "b "]) == "- a\n- b"


def test_prompt_verbalises_stress_mood_most_wanted_and_events(store):
    agent = LMAgent(FakeModel(), "Alex, a nurse who works night shifts")
    system, user = agent.prompt(store.snapshot(1), [INBOX_MESSAGE])
    assert system["role"] == "system"
    assert user["role"] == "user"
    assert system["content"].startswith("You are Alex, a nurse who works night shifts.")
    # The state comes last in the user message, after what happened, before the request.
    assert "You feel extremely stressed (stress 0.90/1)." in user["content"]
    assert "You are in a bad mood (mood -0.50" in user["content"]
    # Stress raises the weight of rest above social contact for this agent.
    assert store.snapshot(1).most_wanted == "rest"
    assert "You want rest most right now." in user["content"]
    assert describe_wanting(store.snapshot(1).wanting) == "rest 1.23, social contact 1.00"
    assert user["content"].index(f"- {INBOX_MESSAGE}") < user["content"].index("You feel")

    _, calm_user = agent.prompt(store.snapshot(0), [INBOX_MESSAGE])
    assert "You feel calm (stress 0.05/1)." in calm_user["content"]
    assert "You want social contact most right now." in calm_user["content"]


def test_scenario_template_overrides_the_strings(store):
    template = PromptTemplate(
        system="{persona} | {stress} | {mood} | {temperature}", user="Say hi. {{literal}}"
    )
    snapshot = store.snapshot(1)
    system, user = LMAgent(FakeModel(), "Bo", template=template).prompt(snapshot)
    assert system["content"] == f"Bo | 0.90 | -0.50 | {snapshot.temperature:.2f}"
    assert user["content"] == "Say hi. {literal}"


def test_template_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"template.user: unknown field \{hunger\}"):
        PromptTemplate(user="{hunger}")
    with pytest.raises(ValueError, match=r"template.system: unknown field \{options\}"):
        PromptTemplate(system="{options}")
    with pytest.raises(ValueError, match=r"template\.act: not a valid format string"):
        PromptTemplate(act="{events")


def test_an_envs_info_values_give_the_same_prompt_as_the_snapshot(store):
    agent = LMAgent(FakeModel(), ["Ana", "Alex"])
    snapshot = store.snapshot(1)
    from_info = AgentSnapshot.from_info(snapshot.to_dict(), 1, snapshot.value_names)
    assert agent.prompt(from_info, [INBOX_MESSAGE]) == agent.prompt(snapshot, [INBOX_MESSAGE])
    assert agent.temperature(from_info) == pytest.approx(snapshot.temperature)
    assert from_info.most_wanted == snapshot.most_wanted
    assert from_info.to_record() == snapshot.to_record()


def test_a_snapshot_from_info_names_what_is_missing():
    with pytest.raises(ValueError, match=r"missing \['stocks', 'stress'\]"):
        AgentSnapshot.from_info(
            {"wanting": {"rest": 1.0}, "mood": 0.0, "temperature": 1.0}, 0, ("rest",)
        )


def test_personas_follow_the_agents_row(store):
    agent = LMAgent(FakeModel(), ["Ana", "Ben"])
    assert agent.prompt(store.snapshot(1))[0]["content"].startswith("You are Ben.")
    with pytest.raises(ValueError, match="agent 1 has none"):
        LMAgent(FakeModel(), ["Ana"]).prompt(store.snapshot(1))


# ------------------------------------------------------------------------------ speaking


def test_a_population_speaks_in_one_generate_call():
    store = ValueStore.from_profiles([_profile(0.1 * i, 0.0) for i in range(6)])
    model = FakeModel()
    agent = LMAgent(model, [f"agent {i}" for i in range(6)])
    snapshots = [store.snapshot(i) for i in range(6)]
    utterances = agent.speak(snapshots, [[f"event {i}"] for i in range(6)], seed=3)
    assert len(model.generate_calls) == 1
    assert len(model.generate_calls[0]["prompts"]) == 6
    assert [u.agent for u in utterances] == list(range(6))
    assert "- event 4" in utterances[4].prompt[1]["content"]
    assert utterances[0].text == utterances[0].generation.text.strip()


def test_temperature_follows_the_value_state_unless_fixed(store):
    snapshots = [store.snapshot(0), store.snapshot(1)]
    expected = [snapshots[0].temperature, snapshots[1].temperature]
    assert expected[1] > expected[0]  # stress and bad mood raise the temperature

    model = FakeModel()
    utterances = LMAgent(model).speak(snapshots, seed=0)
    assert model.generate_calls[0]["temperature"] == pytest.approx(expected)
    assert [u.temperature for u in utterances] == pytest.approx(expected)

    fixed_model = FakeModel()
    fixed = LMAgent(fixed_model, speech_temperature=0.3).speak(snapshots, seed=0)
    assert fixed_model.generate_calls[0]["temperature"] == [0.3, 0.3]
    assert [u.temperature for u in fixed] == [0.3, 0.3]


def test_utterances_carry_the_generation_that_measures_read(store):
    utterance = LMAgent(FakeModel()).speak([store.snapshot(0)], seed=5)[0]
    generation = utterance.generation
    measured = UtteranceEntropy.from_generation(generation, base=2)
    assert measured.length == generation.length
    assert measured.total_token_entropy == pytest.approx(
        generation.token_entropy.sum() / math.log(2)
    )
    assert measured.surprisal == pytest.approx(generation.surprisal / math.log(2))
    assert utterance.temperature == pytest.approx(store.snapshot(0).temperature)


def test_speak_checks_its_contexts(store):
    agent = LMAgent(FakeModel())
    with pytest.raises(ValueError, match="one list of events per value state"):
        agent.speak([store.snapshot(0)], [["a"], ["b"]])
    with pytest.raises(ValueError, match="not a string"):
        agent.speak([store.snapshot(0)], ["a message"])


def test_sample_draws_k_utterances_of_one_state_in_one_call(store):
    model = FakeModel()
    agent = LMAgent(model)
    samples = agent.sample([store.snapshot(1)], [INBOX_MESSAGE], n_samples=4, temperature=1)
    assert len(model.generate_calls) == 1
    assert model.generate_calls[0]["temperature"] == [1.0] * 4
    assert len({str(call) for call in model.generate_calls[0]["prompts"]}) == 1
    assert len(samples) == 4
    both = agent.sample([store.snapshot(0), store.snapshot(1)], n_samples=2, seed=1)
    assert [u.agent for u in both] == [0, 0, 1, 1]
    assert model.generate_calls[1]["temperature"] == pytest.approx(
        [store.snapshot(0).temperature] * 2 + [store.snapshot(1).temperature] * 2
    )


def test_state_information_is_log_m_when_the_state_decides_the_text(store):
    class StateEcho(FakeModel):
        # Says "calm" or "stressed" depending on the prompt; scores only that text as likely.
        def _generate(self, prompts, **kwargs):
            generations = super()._generate(prompts, **kwargs)
            return [
                Generation(
                    text=_said(prompt),
                    token_ids=(1,),
                    token_entropy=np.zeros(1),
                    sampled_entropy=np.zeros(1),
                    token_logprob=np.zeros(1),
                )
                for prompt, _ in zip(prompts, generations, strict=True)
            ]

        def _score(self, prompt, continuations):
            return np.array([0.0 if text == _said(prompt) else -50.0 for text in continuations])

    def _said(prompt):
        return "stressed" if "extremely stressed" in prompt[1]["content"] else "calm"

    agent = LMAgent(StateEcho())
    states = [store.snapshot(0), store.snapshot(1)]
    samples = agent.sample(states, n_samples=3, temperature=1.0, seed=0)
    texts = [[u.text for u in samples[:3]], [u.text for u in samples[3:]]]
    prompts = [agent.prompt(state) for state in states]
    result = mutual_information(agent.model, prompts, texts)
    assert result.mutual_information == pytest.approx(math.log(2), abs=1e-12)
    assert (result.n_states, result.n_samples) == (2, 3)


# ------------------------------------------------------------------------------ acting

OPTIONS = ["reply", "ignore", "rest"]


def test_choose_act_by_lm_prefers_the_most_likely_option_at_low_temperature(store):
    model = FakeModel({"reply": -1.0, "ignore": -5.0, "rest": -3.0})
    cold = LMAgent(model, act_selection="lm", act_temperature=0.05)
    choices = {cold.choose_act(store.snapshot(0), OPTIONS, seed=seed) for seed in range(30)}
    assert choices == {0}
    greedy = LMAgent(model, act_selection="lm", act_temperature=0.0)
    assert greedy.choose_act(store.snapshot(1), OPTIONS, seed=0) == 0
    prompt = model.score_calls[-1]["prompt"]
    assert "reply; ignore; rest" in prompt[1]["content"]
    assert model.score_calls[-1]["continuations"] == OPTIONS


def test_choose_act_by_lm_samples_the_models_distribution_at_temperature_one(store):
    model = FakeModel({"reply": math.log(0.7), "ignore": math.log(0.3)})
    agent = LMAgent(model, act_selection="lm", act_temperature=1.0)
    rng = np.random.default_rng(0)
    choices = [
        agent.choose_act(store.snapshot(0), ["reply", "ignore"], rng=rng) for _ in range(2000)
    ]
    # Binomial(2000, 0.3): standard deviation about 20 draws.
    assert 0.3 * 2000 - 80 < sum(choices) < 0.3 * 2000 + 80


def test_choose_act_by_values_uses_the_wanting_at_the_value_state_temperature(store):
    agent = LMAgent(FakeModel(), act_selection="values", act_temperature=0.0)
    assert agent.choose_act(store.snapshot(0), OPTIONS, action_wanting=[0.1, 0.9, 0.2]) == 1
    warm = LMAgent(FakeModel(), act_selection="values")
    rng = np.random.default_rng(1)
    snapshot = store.snapshot(1)
    choices = np.bincount(
        [
            warm.choose_act(snapshot, OPTIONS, action_wanting=[1.0, 0.0, 0.5], rng=rng)
            for _ in range(3000)
        ],
        minlength=3,
    )
    expected = np.exp(np.array([1.0, 0.0, 0.5]) / snapshot.temperature)
    expected /= expected.sum()
    np.testing.assert_allclose(choices / 3000, expected, atol=0.035)


def test_choose_act_checks_its_inputs(store):
    agent = LMAgent(FakeModel())
    with pytest.raises(ValueError, match="action_wanting: required"):
        agent.choose_act(store.snapshot(0), OPTIONS, seed=0)
    with pytest.raises(ValueError, match="one score per option"):
        agent.choose_act(store.snapshot(0), OPTIONS, action_wanting=[1.0, 2.0], seed=0)
    with pytest.raises(ValueError, match="rng or seed"):
        agent.choose_act(
            store.snapshot(0),
            OPTIONS,
            action_wanting=[1, 2, 3],
            seed=0,
            rng=np.random.default_rng(),
        )
    with pytest.raises(ValueError, match="act_selection"):
        LMAgent(FakeModel(), act_selection="vibes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="speech_temperature"):
        LMAgent(FakeModel(), speech_temperature=-1.0)
    with pytest.raises(ValueError, match="persona"):
        LMAgent(FakeModel(), [])


# ------------------------------------------------------------------------------ real model


@pytest.fixture(scope="module")
def smollm2():
    from valuegym.lm import load_language_model

    model = load_language_model()
    yield model
    model.close()


@pytest.mark.slow
def test_stressed_and_calm_agents_reply_to_an_inbox_message_with_the_real_model(store, smollm2):
    agent = LMAgent(smollm2, "Alex, who shares a flat with Sam", max_new_tokens=12)
    snapshots = [store.snapshot(0), store.snapshot(1)]
    contexts = [[INBOX_MESSAGE]] * 2
    first = agent.speak(snapshots, contexts, seed=11)
    again = agent.speak(snapshots, contexts, seed=11)
    assert [u.text for u in first] == [u.text for u in again]
    for utterance in first:
        generation = utterance.generation
        assert generation.length > 0
        assert utterance.text
        assert np.all(np.isfinite(generation.token_entropy))
        assert np.all(generation.token_entropy >= 0)
        assert np.all(np.isfinite(generation.sampled_entropy))
        assert np.all(np.isfinite(generation.token_logprob))
        assert math.isfinite(UtteranceEntropy.from_generation(generation).mean_token_entropy)
    calm, stressed = first
    assert calm.temperature < 1.0 < stressed.temperature
    # Entropy rises with temperature token by token: below 1 the sampled distribution is
    # sharper than the model's own, above 1 flatter.
    tolerance = 1e-6
    assert np.all(calm.generation.sampled_entropy <= calm.generation.token_entropy + tolerance)
    assert np.all(
        stressed.generation.sampled_entropy >= stressed.generation.token_entropy - tolerance
    )


@pytest.mark.slow
def test_semantic_entropy_of_five_real_samples_lies_in_zero_to_log_five(store, smollm2):
    agent = LMAgent(smollm2, "Alex, who shares a flat with Sam", max_new_tokens=12)
    samples = agent.sample([store.snapshot(1)], [INBOX_MESSAGE], n_samples=5, seed=2, temperature=1)
    assert len({u.text for u in samples}) > 1  # the K samples differ
    generations = [u.generation for u in samples]
    for kind in ("text", "embedding"):
        result = semantic_entropy(generations, clusterer=get_clusterer(kind))
        assert result.n_samples == 5
        for value in (result.weighted, result.discrete):
            assert 0.0 <= value <= math.log(5) + 1e-9


@pytest.mark.slow
def test_choose_act_by_the_real_model_at_zero_temperature_takes_the_most_likely_option(
    store, smollm2
):
    agent = LMAgent(smollm2, "Alex", act_selection="lm", act_temperature=0.0)
    options = ["reply to Sam", "ignore the message", "rest"]
    snapshot = store.snapshot(1)
    loglik = smollm2.score(agent.template.act_messages("Alex", snapshot, options), options)
    assert np.all(np.isfinite(loglik))
    assert np.all(loglik < 0)
    assert agent.choose_act(snapshot, options, seed=0) == int(np.argmax(loglik))


# ------------------------------------------------------------------------------ channels


def test_speech_and_act_temperatures_are_separate_channels(store):
    state = store.snapshot(1)
    agent = LMAgent(FakeModel(), speech_temperature=0.2)
    assert agent.temperature(state) == 0.2
    assert agent.choice_temperature(state) == pytest.approx(state.temperature)
    agent = LMAgent(FakeModel(), act_temperature=0.0)
    assert agent.temperature(state) == pytest.approx(state.temperature)
    wanting = [0.1, 0.9, 0.3]
    assert {
        agent.choose_act(state, OPTIONS, action_wanting=wanting, seed=s) for s in range(20)
    } == {1}


def test_the_prompt_states_the_actual_state_nothing_or_fixed_values(store):
    calm, stressed = store.snapshot(0), store.snapshot(1)
    actual = LMAgent(FakeModel(), "Alex")
    assert "extremely stressed" in actual.prompt(stressed)[1]["content"]
    blind = LMAgent(FakeModel(), "Alex", prompt_state=PromptState("blind"))
    assert blind.prompt(stressed)[0]["content"] == "You are Alex."
    assert blind.prompt(calm) == blind.prompt(stressed)
    fixed = LMAgent(FakeModel(), "Alex", prompt_state=PromptState("fixed", stress=0.95))
    assert "extremely stressed" in fixed.prompt(calm)[1]["content"]
    assert fixed.prompt(calm)[1]["content"] != actual.prompt(calm)[1]["content"]
    assert blind.prompt(stressed)[1]["content"].endswith("\n\nReply in one short sentence.")
    # the context is what the model sees besides the state text
    assert actual.context_id(calm, ["hi"]) == fixed.context_id(stressed, ["hi"])
    assert actual.context_id(calm, ["hi"]) != actual.context_id(calm, ["hello"])
    with pytest.raises(ValueError, match="only stated with mode 'fixed'"):
        PromptState("actual", stress=0.5)
    with pytest.raises(ValueError, match=r"stress: must be in \[0, 1\]"):
        PromptState("fixed", stress=1.5)
