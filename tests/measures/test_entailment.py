import math

import numpy as np
import pytest

from valuegym.lm.base import LanguageModel
from valuegym.measures import (
    ENTAILMENT_ANSWERS,
    ENTAILMENT_QUESTION,
    EntailmentClusterer,
    EntailmentJudge,
    LanguageModelJudge,
    NLIJudge,
    get_clusterer,
)


class MeaningJudge:
    """Entailment by a lookup of each text's meaning; records every batch it is asked."""

    def __init__(self, meaning, one_way=()):
        self.meaning = meaning
        self.one_way = set(one_way)  # (premise, hypothesis) pairs that entail only that way
        self.batches = []

    def entailment_probability(self, premises, hypotheses):
        self.batches.append(list(zip(premises, hypotheses, strict=True)))
        return np.array(
            [
                1.0 if (p, h) in self.one_way or self.meaning[p] == self.meaning[h] else 0.0
                for p, h in zip(premises, hypotheses, strict=True)
            ]
        )

    def describe(self):
        return {"judge": "lookup"}


def test_a_judge_satisfies_the_protocol():
    assert isinstance(MeaningJudge({}), EntailmentJudge)


def test_alternating_meanings_cost_one_batch_per_cluster_and_transitivity_saves_pairs():
    texts = [f"text {i}" for i in range(10)]
    judge = MeaningJudge({text: i % 2 for i, text in enumerate(texts)})
    clusterer = EntailmentClusterer(judge)
    labels = clusterer.cluster(texts)
    np.testing.assert_array_equal(labels, [0, 1] * 5)
    # Round 1: text 0 against the 9 others; round 2: text 1 against the 4 odd ones left.
    assert clusterer.pair_judgements == 9 + 4 < 10 * 9 // 2
    assert clusterer.judge_batches == len(judge.batches) == 2
    assert [len(batch) for batch in judge.batches] == [18, 8]  # both directions per pair


def test_all_distinct_meanings_ask_each_pair_exactly_once():
    texts = [f"meaning {i}" for i in range(10)]
    judge = MeaningJudge({text: i for i, text in enumerate(texts)})
    clusterer = EntailmentClusterer(judge)
    np.testing.assert_array_equal(clusterer.cluster(texts), np.arange(10))
    asked = [frozenset(pair) for batch in judge.batches for pair in batch]
    assert len(set(asked)) == clusterer.pair_judgements == 45
    assert len(asked) == 90


def test_judgements_are_cached_for_the_life_of_the_clusterer():
    texts = ["a", "b", "c", "a"]
    judge = MeaningJudge({"a": 0, "b": 1, "c": 0})
    clusterer = EntailmentClusterer(judge)
    np.testing.assert_array_equal(clusterer.cluster(texts), [0, 1, 0, 0])
    assert clusterer.pair_judgements == 2  # a-b and a-c; c joined a, so b-c is never asked
    np.testing.assert_array_equal(clusterer.cluster(list(reversed(texts))), [0, 0, 1, 0])
    assert clusterer.pair_judgements == 2
    assert len(judge.batches) == 1


def test_normalised_duplicates_and_empty_utterances_are_settled_without_the_judge():
    judge = MeaningJudge({"Yes!": 0, "No.": 1})
    clusterer = EntailmentClusterer(judge)
    labels = clusterer.cluster(["Yes!", "yes", " YES ", "", "No.", "  "])
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 2, 1])
    assert clusterer.pair_judgements == 1


def test_one_way_entailment_is_not_the_same_meaning():
    short, long = "I'll come tomorrow.", "I'll come tomorrow at nine."
    judge = MeaningJudge({short: 0, long: 1}, one_way=[(long, short)])
    np.testing.assert_array_equal(EntailmentClusterer(judge).cluster([short, long]), [0, 1])
    both_ways = MeaningJudge({short: 0, long: 1}, one_way=[(long, short), (short, long)])
    np.testing.assert_array_equal(EntailmentClusterer(both_ways).cluster([short, long]), [0, 0])


def test_entailment_matrix_asks_every_pair_in_one_batch():
    texts = ["a", "b", "a", "c"]
    judge = MeaningJudge({"a": 0, "b": 0, "c": 1})
    clusterer = EntailmentClusterer(judge)
    matrix = clusterer.entailment_matrix(texts)
    expected = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]], dtype=float)
    np.testing.assert_array_equal(matrix, expected)
    assert len(judge.batches) == 1
    assert clusterer.pair_judgements == 3


def test_get_clusterer_builds_an_entailment_clusterer_only_with_a_judge():
    judge = MeaningJudge({})
    clusterer = get_clusterer("entailment", judge=judge, threshold=0.7)
    assert isinstance(clusterer, EntailmentClusterer)
    assert clusterer.describe() == {"clusterer": "entailment", "threshold": 0.7, "judge": "lookup"}
    with pytest.raises(ValueError, match="needs a judge"):
        get_clusterer("entailment")
    with pytest.raises(ValueError, match="threshold"):
        EntailmentClusterer(judge, threshold=0.0)


class ScriptedModel(LanguageModel):
    """Scores "Yes" and "No" from a table keyed by the premise; records the prompts."""

    name = "scripted"

    def __init__(self, answers):
        self.answers = answers
        self.prompts = []

    def _generate(self, prompts, **kwargs):
        raise AssertionError("the judge must score, never generate")

    def _score(self, prompt, continuations):
        self.prompts.append((prompt, tuple(continuations)))
        content = prompt[0]["content"]
        premise = content.split("\n")[0].removeprefix("Statement A: ")
        return np.array(self.answers[premise])


def test_language_model_judge_reads_the_scored_answers_of_the_documented_question():
    model = ScriptedModel({"It rains.": [math.log(0.6), math.log(0.2)], "Sun.": [-3.0, -1.0]})
    judge = LanguageModelJudge(model)
    probabilities = judge.entailment_probability(["It rains.", "Sun."], ["It pours.", "Rain."])
    np.testing.assert_allclose(probabilities, [0.75, 1.0 / (1.0 + math.exp(2.0))])
    first_prompt, continuations = model.prompts[0]
    assert continuations == ENTAILMENT_ANSWERS == ("Yes", "No")
    assert first_prompt == [
        {
            "role": "user",
            "content": ENTAILMENT_QUESTION.format(premise="It rains.", hypothesis="It pours."),
        }
    ]
    assert judge.describe()["model"] == "scripted"


# ------------------------------------------------------------------- NLI cross-encoder

_WORDS = ["yes", "no", "i", "will", "come", "to", "the", "party", "won", "'", "t", ",", "."]


def _tiny_nli_model(folder, id2label, entailment_bias):
    """A randomly initialised one-layer BERT NLI classifier saved as a local model folder."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS]) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(vocab))
    config = transformers.BertConfig(
        vocab_size=len(_WORDS) + 5,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=3,
        id2label=id2label,
        label2id={label: index for index, label in id2label.items()},
    )
    torch.manual_seed(0)
    network = transformers.BertForSequenceClassification(config)
    with torch.no_grad():
        network.classifier.weight.zero_()
        network.classifier.bias.copy_(torch.tensor(entailment_bias))
    tokenizer.save_pretrained(folder)
    network.save_pretrained(folder)
    return tokenizer, network


@pytest.mark.parametrize(
    "id2label",
    [
        {0: "CONTRADICTION", 1: "NEUTRAL", 2: "ENTAILMENT"},
        {0: "entailment", 1: "neutral", 2: "contradiction"},
    ],
)
def test_nli_judge_loads_a_local_model_and_reads_the_entailment_label(tmp_path, id2label):
    entailment = next(i for i, label in id2label.items() if label.lower() == "entailment")
    bias = [0.0, 0.0, 0.0]
    bias[entailment] = 2.0
    _tiny_nli_model(tmp_path, id2label, bias)
    judge = NLIJudge(str(tmp_path), batch_size=2)
    premises = ["yes, i will come to the party.", "no", "i won't come."]
    hypotheses = ["no, i won't come to the party.", "yes", "i will come."]
    probabilities = judge.entailment_probability(premises, hypotheses)
    # A zero classifier weight leaves only the bias: softmax(bias)[entailment], exactly.
    expected = math.exp(2.0) / (math.exp(2.0) + 2.0)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6)
    assert judge.describe() == {"judge": "nli", "model": str(tmp_path), "max_length": 256}
    labels = EntailmentClusterer(judge).cluster(["yes.", "no.", "yes!"])
    np.testing.assert_array_equal(labels, [0, 0, 0])  # the judge says "entails" to everything


def test_nli_judge_probabilities_match_the_network_run_directly(tmp_path):
    torch = pytest.importorskip("torch")
    tokenizer, network = _tiny_nli_model(
        tmp_path, {0: "contradiction", 1: "neutral", 2: "entailment"}, [0.0, 0.0, 0.0]
    )
    with torch.no_grad():
        network.classifier.weight.normal_(0.0, 50.0)
    network.save_pretrained(tmp_path)
    premises = ["yes, i will come.", "no.", "the party"]
    hypotheses = ["no, i won't come.", "yes.", "i will come to the party"]
    probabilities = NLIJudge(str(tmp_path), batch_size=2).entailment_probability(
        premises, hypotheses
    )
    network.eval()
    expected = []
    for premise, hypothesis in zip(premises, hypotheses, strict=True):
        with torch.no_grad():
            logits = network(**tokenizer(premise, hypothesis, return_tensors="pt")).logits[0]
        expected.append(float(torch.softmax(logits, dim=-1)[2]))
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5)
    assert np.ptp(probabilities) > 1e-5  # the pairs reach the network (random weights)


def test_nli_judge_rejects_a_model_without_an_entailment_label(tmp_path):
    _tiny_nli_model(tmp_path, {0: "negative", 1: "neutral", 2: "positive"}, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="entail"):
        NLIJudge(str(tmp_path)).entailment_probability(["yes"], ["no"])
