import math

import numpy as np
import pytest

from valuegym.measures import (
    kernel_language_entropy,
    semantic_graph_from_entailment,
    semantic_graph_from_labels,
)


def complete_graph_kle(n_samples, weight, time):
    """KLE of K samples all joined by edges of one weight, derived by hand.

    L = w (K I - J) has eigenvalue 0 (the all-ones vector) and w K (K - 1 times), so the heat
    kernel is J / K + exp(-t w K) (I - J / K), whose diagonal is d = 1/K + exp(-t w K)(1 - 1/K).
    The density matrix kernel / (d K) then has eigenvalues 1 / (d K) once and
    exp(-t w K) / (d K) K - 1 times.
    """
    decay = math.exp(-time * weight * n_samples)
    diagonal = 1 / n_samples + decay * (1 - 1 / n_samples)
    spectrum = [1 / (diagonal * n_samples)] + [decay / (diagonal * n_samples)] * (n_samples - 1)
    return -sum(p * math.log(p) for p in spectrum)


def test_samples_without_edges_have_log_k():
    for n_samples in (1, 2, 5, 10):
        assert kernel_language_entropy(np.zeros((n_samples, n_samples))) == pytest.approx(
            math.log(n_samples)
        )
    assert kernel_language_entropy(np.zeros((4, 4)), base=2) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("n_samples", "weight", "time"), [(2, 1.0, 0.3), (5, 2.0, 0.3), (10, 1.0, 1.0)]
)
def test_a_complete_graph_matches_its_hand_derived_entropy(n_samples, weight, time):
    graph = weight * (np.ones((n_samples, n_samples)) - np.eye(n_samples))
    assert kernel_language_entropy(graph, time=time) == pytest.approx(
        complete_graph_kle(n_samples, weight, time), rel=1e-10
    )


def test_one_meaning_tends_to_zero_as_diffusion_grows():
    graph = semantic_graph_from_labels(np.zeros(10, dtype=int))
    assert kernel_language_entropy(graph, time=5.0) < 1e-12
    assert kernel_language_entropy(graph, time=0.01) > 1.0


def test_two_equal_disconnected_meanings_add_log_2():
    labels = np.array([0] * 5 + [1] * 5)
    one_meaning = kernel_language_entropy(semantic_graph_from_labels(np.zeros(5, dtype=int)))
    assert kernel_language_entropy(semantic_graph_from_labels(labels)) == pytest.approx(
        math.log(2) + one_meaning
    )


def test_entailment_graph_sums_both_directions_and_ignores_the_diagonal():
    entailment = np.array([[1.0, 0.9, 0.0], [0.2, 1.0, 0.5], [0.1, 0.5, 1.0]])
    np.testing.assert_allclose(
        semantic_graph_from_entailment(entailment),
        [[0.0, 1.1, 0.1], [1.1, 0.0, 1.0], [0.1, 1.0, 0.0]],
    )


def test_kernel_language_entropy_rejects_bad_graphs():
    with pytest.raises(ValueError, match="symmetric"):
        kernel_language_entropy(np.array([[0.0, 1.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="square"):
        kernel_language_entropy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="time"):
        kernel_language_entropy(np.zeros((2, 2)), time=0.0)
