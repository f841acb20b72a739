"""What is measured about utterances: entropy, meaning clusters, semantic entropy, information.

Each module is small and loads no model: the measures take what a backend produced (a
:class:`~valuegym.lm.base.Generation`, log-likelihoods, texts) and turn it into numbers.

- :mod:`valuegym.measures.entropy`: token and utterance entropy, surprisal, units.
- :mod:`valuegym.measures.clustering`: grouping utterances that say the same thing (by text,
  sentence embedding, or bidirectional entailment with a judge passed in).
- :mod:`valuegym.measures.entailment`: the judges of entailment (NLI model, language model).
- :mod:`valuegym.measures.calibration`: how often a clusterer merges or splits meanings, and
  how often a valence judge misreads tone.
- :mod:`valuegym.measures.valence`: how friendly or hostile a message sounds (embedding
  anchors or a language model's scored answer).
- :mod:`valuegym.measures.semantic`: semantic entropy over K samples of one state.
- :mod:`valuegym.measures.kernel_entropy`: Kernel Language Entropy over a semantic graph.
- :mod:`valuegym.measures.information`: mutual information between value state and utterance.
"""

from valuegym.measures.calibration import (
    VALENCE_NEUTRAL_BAND,
    Calibration,
    CategoryCalibration,
    LabelledPair,
    ValenceCalibration,
    ValenceClassCalibration,
    calibrate,
    calibrate_valence,
    load_pairs,
    valence_class,
)
from valuegym.measures.clustering import (
    DEFAULT_SIMILARITY_THRESHOLD,
    Clusterer,
    EmbeddingClusterer,
    EntailmentClusterer,
    TextClusterer,
    get_clusterer,
    load_sentence_embedder,
    normalise_text,
)
from valuegym.measures.entailment import (
    ENTAILMENT_ANSWERS,
    ENTAILMENT_QUESTION,
    EntailmentJudge,
    LanguageModelJudge,
    NLIJudge,
)
from valuegym.measures.entropy import UtteranceEntropy, entropy, entropy_from_logits, unit_name
from valuegym.measures.information import (
    MutualInformation,
    cross_score,
    mutual_information,
    mutual_information_from_loglik,
)
from valuegym.measures.kernel_entropy import (
    DEFAULT_HEAT_TIME,
    kernel_language_entropy,
    semantic_graph_from_entailment,
    semantic_graph_from_labels,
)
from valuegym.measures.semantic import (
    SemanticEntropy,
    cluster_log_probabilities,
    semantic_entropy,
    semantic_entropy_from_labels,
)
from valuegym.measures.valence import (
    DEFAULT_VALENCE_TEMPERATURE,
    DEFAULT_VALENCE_TOP_K,
    VALENCE_ANSWERS,
    VALENCE_LABELS,
    VALENCE_QUESTION,
    EmbeddingValenceJudge,
    LabelledText,
    LanguageModelValenceJudge,
    ValenceJudge,
    get_valence_judge,
    load_valence_anchors,
    load_valence_items,
)

__all__ = [
    "DEFAULT_HEAT_TIME",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "DEFAULT_VALENCE_TEMPERATURE",
    "DEFAULT_VALENCE_TOP_K",
    "ENTAILMENT_ANSWERS",
    "ENTAILMENT_QUESTION",
    "VALENCE_ANSWERS",
    "VALENCE_LABELS",
    "VALENCE_NEUTRAL_BAND",
    "VALENCE_QUESTION",
    "Calibration",
    "CategoryCalibration",
    "Clusterer",
    "EmbeddingClusterer",
    "EmbeddingValenceJudge",
    "EntailmentClusterer",
    "EntailmentJudge",
    "LabelledPair",
    "LabelledText",
    "LanguageModelJudge",
    "LanguageModelValenceJudge",
    "MutualInformation",
    "NLIJudge",
    "SemanticEntropy",
    "TextClusterer",
    "UtteranceEntropy",
    "ValenceCalibration",
    "ValenceClassCalibration",
    "ValenceJudge",
    "calibrate",
    "calibrate_valence",
    "cluster_log_probabilities",
    "cross_score",
    "entropy",
    "entropy_from_logits",
    "get_clusterer",
    "get_valence_judge",
    "kernel_language_entropy",
    "load_pairs",
    "load_sentence_embedder",
    "load_valence_anchors",
    "load_valence_items",
    "mutual_information",
    "mutual_information_from_loglik",
    "normalise_text",
    "semantic_entropy",
    "semantic_entropy_from_labels",
    "semantic_graph_from_entailment",
    "semantic_graph_from_labels",
    "unit_name",
    "valence_class",
]
