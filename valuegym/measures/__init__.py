"""What is measured about utterances: entropy, meaning clusters, semantic entropy, information.

Each module is small and loads no model: the measures take what a backend produced (a
:class:`~valuegym.lm.base.Generation`, log-likelihoods, texts) and turn it into numbers.

- :mod:`valuegym.measures.entropy`: token and utterance entropy, surprisal, units.
- :mod:`valuegym.measures.clustering`: grouping utterances that say the same thing (by text,
  sentence embedding, or bidirectional entailment with a judge passed in).
- :mod:`valuegym.measures.entailment`: the judges of entailment (NLI model, language model).
- :mod:`valuegym.measures.calibration`: how often a clusterer merges or splits meanings.
- :mod:`valuegym.measures.semantic`: semantic entropy over K samples of one state.
- :mod:`valuegym.measures.kernel_entropy`: Kernel Language Entropy over a semantic graph.
- :mod:`valuegym.measures.information`: mutual information between value state and utterance.
"""

from valuegym.measures.calibration import (
    Calibration,
    CategoryCalibration,
    LabelledPair,
    calibrate,
    load_pairs,
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

__all__ = [
    "DEFAULT_HEAT_TIME",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "ENTAILMENT_ANSWERS",
    "ENTAILMENT_QUESTION",
    "Calibration",
    "CategoryCalibration",
    "Clusterer",
    "EmbeddingClusterer",
    "EntailmentClusterer",
    "EntailmentJudge",
    "LabelledPair",
    "LanguageModelJudge",
    "MutualInformation",
    "NLIJudge",
    "SemanticEntropy",
    "TextClusterer",
    "UtteranceEntropy",
    "calibrate",
    "cluster_log_probabilities",
    "cross_score",
    "entropy",
    "entropy_from_logits",
    "get_clusterer",
    "kernel_language_entropy",
    "load_pairs",
    "load_sentence_embedder",
    "mutual_information",
    "mutual_information_from_loglik",
    "normalise_text",
    "semantic_entropy",
    "semantic_entropy_from_labels",
    "semantic_graph_from_entailment",
    "semantic_graph_from_labels",
    "unit_name",
]
