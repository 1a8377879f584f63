"""Area under the ROC curve of a score against binary labels (the track-score figure of merit
in training, the score-vs-truth benchmark and the shipped-model tests)."""

from __future__ import annotations

import numpy as np

__all__ = ["auc"]


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve by the rank-sum formula (ties share ranks).

    Args: `score` (n,) float, `label` (n,) float (> 0.5 = positive). Returns NaN when either
    class is empty.
    """
    score = np.asarray(score)
    label = np.asarray(label)
    pos = label > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_scores = score[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
