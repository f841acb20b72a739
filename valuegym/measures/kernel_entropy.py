"""Kernel Language Entropy (Nikitin et al. 2024): the von Neumann entropy of a semantic kernel.

Semantic entropy counts meanings as if any two clusters were equally far apart. Kernel
Language Entropy keeps the graded similarities instead: the K samples are the nodes of a
weighted semantic graph ``W`` (``W_ij`` how much samples i and j mean the same thing), whose
heat kernel ``exp(-t L)`` (``L = D - W`` the graph Laplacian) is normalised to a density matrix
``rho`` (unit diagonal, divided by K) and ``KLE = -tr(rho log rho) = -sum_i lambda_i log
lambda_i`` over its eigenvalues. A graph without edges gives ``log K`` (every sample its own
meaning), a complete graph of strongly weighted edges tends to 0.

Graphs come from cluster labels of any clusterer (:func:`semantic_graph_from_labels`, KLE-c
in the paper) or from entailment probabilities (:func:`semantic_graph_from_entailment`, as
LM-Polygraph builds it from NLI).
"""

from __future__ import annotations

import numpy as np

from valuegym.measures.entropy import nats_to_base

__all__ = [
    "DEFAULT_HEAT_TIME",
    "kernel_language_entropy",
    "semantic_graph_from_entailment",
    "semantic_graph_from_labels",
]

#: Diffusion time ``t`` of the heat kernel; 0.3 as in LM-Polygraph's implementation of the paper.
DEFAULT_HEAT_TIME = 0.3


def semantic_graph_from_labels(labels: np.ndarray) -> np.ndarray:
    """Graph with an edge of weight 1 between samples of the same meaning cluster.

    Args:
        labels: Meaning cluster per sample.

    Returns:
        Symmetric ``(K, K)`` weights, zero on the diagonal.
    """
    labels = np.asarray(labels)
    graph = (labels[:, None] == labels[None, :]).astype(np.float64)
    np.fill_diagonal(graph, 0.0)
    return graph


def semantic_graph_from_entailment(entailment: np.ndarray) -> np.ndarray:
    """Graph weighted by entailment both ways: ``W_ij = p(i entails j) + p(j entails i)``.

    With 0/1 judgements and no "neutral" verdicts this is LM-Polygraph's graph
    (entailment 1, neutral 1/2, contradiction 0, summed over both directions).

    Args:
        entailment: ``(K, K)`` probabilities that sample i entails sample j.

    Returns:
        Symmetric ``(K, K)`` weights in ``[0, 2]``, zero on the diagonal.
    """
    entailment = np.asarray(entailment, dtype=np.float64)
    if entailment.ndim != 2 or entailment.shape[0] != entailment.shape[1]:
        raise ValueError(f"entailment: expected a square matrix (got shape {entailment.shape})")
    graph = entailment + entailment.T
    np.fill_diagonal(graph, 0.0)
    return graph


def kernel_language_entropy(
    graph: np.ndarray, *, time: float = DEFAULT_HEAT_TIME, base: float | None = None
) -> float:
    """Von Neumann entropy of the normalised heat kernel of a semantic graph.

    Args:
        graph: Symmetric non-negative ``(K, K)`` edge weights (the diagonal is ignored).
        time: Diffusion time ``t > 0`` of the heat kernel ``exp(-t L)``; larger values let
            similarity spread further along the graph.
        base: Logarithm base of the result; ``None`` gives nats, ``2`` bits.

    Returns:
        KLE in ``[0, log K]``.
    """
    weights = np.array(graph, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or weights.size == 0:
        raise ValueError(f"graph: expected a non-empty square matrix (got shape {weights.shape})")
    if not np.allclose(weights, weights.T) or np.any(weights < 0):
        raise ValueError("graph: edge weights must be symmetric and non-negative")
    if time <= 0:
        raise ValueError(f"time: must be > 0 (got {time})")
    np.fill_diagonal(weights, 0.0)
    laplacian = np.diag(weights.sum(axis=1)) - weights
    # expm of a symmetric matrix through its eigendecomposition.
    eigenvalues, eigenvectors = np.linalg.eigh(laplacian)
    kernel = (eigenvectors * np.exp(-time * eigenvalues)) @ eigenvectors.T
    scale = np.sqrt(np.diag(kernel))
    density = kernel / np.outer(scale, scale) / len(kernel)
    spectrum = np.clip(np.linalg.eigvalsh(density), 0.0, None)
    spectrum = spectrum[spectrum > 0]
    return nats_to_base(float(-np.sum(spectrum * np.log(spectrum))), base)
