"""Classification quality: confusion matrix, accuracy, precision/recall/F1, ROC AUC.

The numbers must be the ones users already know from scikit-learn (the semantics doc
says so), so each definition below follows scikit-learn's, including its corner
cases: a ratio whose denominator is zero is 0.0 (sklearn's default ``zero_division``
outcome), macro averages include labels that occur only in predictions, and
``average="binary"`` rejects more than two labels. scikit-learn itself is not a
runtime dependency: everything is derived from one ``np.bincount`` confusion matrix,
which is also what the streaming digest accumulates chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from bot.domain.errors import InvalidInput
from bot.domain.monitoring._inputs import ArrayLike, as_1d, as_numeric_1d, same_length

Average = Literal["binary", "macro", "weighted"]

MAX_LABELS = 4096
"""A confusion matrix is dense (labels²); more labels than this is almost surely a
regression target passed by mistake, and would cost gigabytes."""

_DENSE_INT_RANGE = 1 << 16


@dataclass(frozen=True, eq=False)
class ConfusionMatrix:
    """Counts of (true label, predicted label) pairs; rows are truth, columns predictions.

    `labels` is sorted like scikit-learn's ``unique_labels`` and indexes both axes.
    Equality compares labels and counts (so reports holding one compare by value).
    """

    labels: tuple[Any, ...]
    counts: np.ndarray

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.labels == other.labels and np.array_equal(self.counts, other.counts)

    def __hash__(self) -> int:
        return hash((self.labels, self.counts.tobytes()))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def index_of(self, label: Hashable) -> int | None:
        """Position of `label` on the axes, or None when it occurs in neither column."""
        for i, existing in enumerate(self.labels):
            if existing == label:
                return i
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"labels": [_plain(x) for x in self.labels], "counts": self.counts.tolist()}


def _plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so reports serialise with the stdlib json."""
    return value.item() if isinstance(value, np.generic) else value


def _integral_codes(arr: np.ndarray, name: str) -> np.ndarray | None:
    """Integer view of label values when they are integers (or whole floats), else None."""
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "f":
        as_int = arr.astype(np.int64)
        if not np.array_equal(as_int, arr):
            raise InvalidInput(
                f"{name} holds continuous values (e.g. {arr[as_int != arr][0]!r}); "
                "classification metrics need class labels."
            )
        return as_int
    return None


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike) -> ConfusionMatrix:
    """Confusion matrix over the union of labels of both columns, via one ``np.bincount``.

    Small integer labels (the common 0/1 or class-id case) are offset into a dense
    range, which avoids sorting millions of rows; any other labels (strings, huge ids)
    are factorised with ``np.unique`` first.
    """
    t = as_1d(y_true, "y_true")
    p = as_1d(y_pred, "y_pred")
    same_length(("y_true", t), ("y_pred", p))
    return confusion_of_arrays(t, p)


def confusion_of_arrays(t: np.ndarray, p: np.ndarray) -> ConfusionMatrix:
    """`confusion_matrix` without the input checks, for callers that made them (chunks)."""
    bool_labels = t.dtype.kind == "b" and p.dtype.kind == "b"
    ti, pi = _integral_codes(t, "y_true"), _integral_codes(p, "y_pred")
    if ti is not None and pi is not None:
        lo = int(min(ti.min(), pi.min()))
        hi = int(max(ti.max(), pi.max()))
        if hi - lo < _DENSE_INT_RANGE:
            k = hi - lo + 1
            flat = ti * k  # one temporary, then in place: this runs on every chunk
            flat += pi
            if lo:
                flat -= lo * (k + 1)
            full = np.bincount(flat, minlength=k * k).reshape(k, k)
            present = np.flatnonzero(full.sum(axis=0) + full.sum(axis=1))
            if len(present) > MAX_LABELS:
                raise InvalidInput(f"{len(present)} distinct labels: too many for a confusion matrix.")
            counts = full[np.ix_(present, present)]
            values = present + lo
            labels = tuple(bool(v) for v in values) if bool_labels else tuple(int(v) for v in values)
            return ConfusionMatrix(labels, counts.astype(np.int64))
    try:
        both = np.concatenate([t, p])
        labels_arr, inverse = np.unique(both, return_inverse=True)
    except TypeError as exc:
        raise InvalidInput(
            f"y_true and y_pred mix label types ({t.dtype} and {p.dtype}); use one type for both."
        ) from exc
    k = len(labels_arr)
    if k > MAX_LABELS:
        raise InvalidInput(f"{k} distinct labels: too many for a confusion matrix.")
    n = len(t)
    counts = np.bincount(inverse[:n] * k + inverse[n:], minlength=k * k).reshape(k, k)
    return ConfusionMatrix(tuple(_plain(v) for v in labels_arr), counts.astype(np.int64))


def merge_confusion(a: ConfusionMatrix, b: ConfusionMatrix) -> ConfusionMatrix:
    """Sum two confusion matrices whose label sets may differ (chunked accumulation)."""
    try:
        labels = tuple(sorted(set(a.labels) | set(b.labels)))
    except TypeError as exc:
        raise InvalidInput("Chunks mix label types; use one type for labels and predictions.") from exc
    pos = {label: i for i, label in enumerate(labels)}
    out = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for cm in (a, b):
        idx = np.array([pos[x] for x in cm.labels], dtype=np.intp)
        out[np.ix_(idx, idx)] += cm.counts
    return ConfusionMatrix(labels, out)


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0.0 where den == 0: sklearn's ``zero_division="warn"`` value."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_class(cm: ConfusionMatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-label precision, recall, F1 and support (true count), in `cm.labels` order.

    F1 is 2·TP / (true + predicted), as sklearn computes it (not from rounded P and R).
    """
    tp = np.diag(cm.counts).astype(np.float64)
    pred_sum = cm.counts.sum(axis=0).astype(np.float64)
    true_sum = cm.counts.sum(axis=1).astype(np.float64)
    return _divide(tp, pred_sum), _divide(tp, true_sum), _divide(2.0 * tp, true_sum + pred_sum), true_sum


def precision_recall_f1(
    cm: ConfusionMatrix, average: Average = "binary", pos_label: Hashable = 1
) -> tuple[float, float, float]:
    """Precision, recall and F1 under sklearn's ``average`` semantics.

    - ``binary``: the metrics of `pos_label` only. More than two labels, or two labels
      of which none is `pos_label`, is an error as in sklearn; a single label that is
      not `pos_label` gives 0.0 everywhere (nothing was ever positive).
    - ``macro``: unweighted mean over every label seen in truth or predictions.
    - ``weighted``: mean weighted by each label's support in the truth.
    """
    precision, recall, f1, support = per_class(cm)
    if average == "binary":
        if len(cm.labels) > 2:
            raise InvalidInput(
                f"average='binary' needs at most two labels, got {len(cm.labels)}; use 'macro' or 'weighted'."
            )
        i = cm.index_of(pos_label)
        if i is None:
            if len(cm.labels) == 2:
                raise InvalidInput(f"pos_label={pos_label!r} is not one of the labels {list(cm.labels)}.")
            return 0.0, 0.0, 0.0
        return float(precision[i]), float(recall[i]), float(f1[i])
    if average == "macro":
        return float(precision.mean()), float(recall.mean()), float(f1.mean())
    if average == "weighted":
        if support.sum() == 0:
            return 0.0, 0.0, 0.0
        return (
            float(np.average(precision, weights=support)),
            float(np.average(recall, weights=support)),
            float(np.average(f1, weights=support)),
        )
    raise InvalidInput(f"Unknown average {average!r}; use 'binary', 'macro' or 'weighted'.")


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Share of rows where the prediction equals the label (sklearn ``accuracy_score``)."""
    cm = confusion_matrix(y_true, y_pred)
    return float(np.trace(cm.counts) / cm.total)


def roc_auc(y_true: ArrayLike, scores: ArrayLike, pos_label: Hashable | None = None) -> float:
    """Binary ROC AUC, exactly as ``sklearn.metrics.roc_auc_score``.

    The AUC equals the probability that a random positive outranks a random
    negative, ties counting one half — the Mann–Whitney form, which is identical to
    the trapezoid under sklearn's ROC curve (tied scores form one diagonal step). It
    is computed by sorting the positives' and the negatives' scores separately and
    counting, per positive, the negatives below and tied with it; the counts are
    integers, so the one division at the end is the only rounding.

    `pos_label` defaults to the greater of the two labels, as in sklearn.
    """
    t = as_1d(y_true, "y_true")
    s = as_numeric_1d(scores, "scores")
    same_length(("y_true", t), ("scores", s))
    classes = np.unique(t)
    if len(classes) != 2:
        raise InvalidInput(
            f"ROC AUC needs both classes in y_true, found {len(classes)} ({[_plain(c) for c in classes]})."
        )
    positive = classes[1] if pos_label is None else pos_label
    is_pos = t == positive
    if not is_pos.any():
        raise InvalidInput(f"pos_label={pos_label!r} does not occur in y_true.")
    return auc_from_split(s[~is_pos], s[is_pos])


def auc_from_split(
    negative_scores: np.ndarray, positive_scores: np.ndarray, overwrite: bool = False
) -> float:
    """AUC from the scores of the negatives and of the positives (may be unsorted).

    Exposed so the streaming digest can collect the two score lists chunk by chunk;
    `overwrite=True` sorts the given arrays in place instead of copying them.
    """
    n_neg, n_pos = len(negative_scores), len(positive_scores)
    if n_neg == 0 or n_pos == 0:
        raise InvalidInput("ROC AUC needs at least one positive and one negative row.")
    if overwrite:
        negative_scores.sort()
        positive_scores.sort()
        neg, pos = negative_scores, positive_scores
    else:
        neg, pos = np.sort(negative_scores), np.sort(positive_scores)
    # Run-length encode the sorted positives: scores often repeat (rounded model
    # outputs), and then only the distinct values need a binary search.
    starts = np.concatenate(([0], np.flatnonzero(pos[1:] != pos[:-1]) + 1))
    values = pos[starts]
    repeats = np.diff(np.concatenate((starts, [n_pos])))
    below = np.searchsorted(neg, values, side="left")
    below_or_tied = np.searchsorted(neg, values, side="right")
    # Σ over positives of 2·(negatives below + ½ tied), in exact integers.
    twice_wins = int(np.dot(repeats, below + below_or_tied))
    return twice_wins / (2.0 * n_pos * n_neg)


def roc_auc_ovr(
    y_true: ArrayLike, scores: Any, labels: Sequence[Hashable], average: Literal["macro", "weighted"] = "macro"
) -> float:
    """Multi-class ROC AUC, one-vs-rest, as ``roc_auc_score(y_true, scores, multi_class="ovr",
    average=…, labels=labels)``.

    `scores` is n × k: column j holds the probability of `labels[j]`. Each class in turn is
    the positive class against all the others (its binary AUC, `auc_from_split`); "macro"
    is their plain mean, "weighted" their mean weighted by each class's count in `y_true`.
    As in scikit-learn, rows must sum to 1 and every class must occur in `y_true` (an AUC
    with no positives is undefined, not zero).
    """
    t = as_1d(y_true, "y_true")
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(labels) or len(labels) < 3:
        raise InvalidInput(f"Multi-class scores need one column per class (at least 3), got shape {matrix.shape} "
                           f"for {len(labels)} labels.")
    same_length(("y_true", t), ("scores", matrix))
    if not np.isfinite(matrix).all():
        raise InvalidInput("scores has missing or infinite values; drop them first.")
    if not np.allclose(matrix.sum(axis=1), 1.0):
        raise InvalidInput("Multi-class scores must be probabilities: each row must sum to 1.")
    return ovr_from_columns(t, [matrix[:, j] for j in range(len(labels))], labels, average)


def ovr_from_columns(
    y_true: np.ndarray, columns: Sequence[np.ndarray], labels: Sequence[Hashable], average: str
) -> float:
    """One-vs-rest AUC from the label column and one score column per class (streaming ends here)."""
    unknown = set(np.unique(y_true).tolist()) - set(labels)
    if unknown:
        raise InvalidInput(f"y_true holds labels without a score column: {sorted(map(str, unknown))[:5]}.")
    aucs, support = [], []
    for label, column in zip(labels, columns, strict=True):
        is_pos = y_true == label
        count = int(np.count_nonzero(is_pos))
        if count == 0:
            raise InvalidInput(f"Class {label!r} never occurs in y_true: its one-vs-rest ROC AUC is undefined.")
        aucs.append(auc_from_split(column[~is_pos], column[is_pos]))
        support.append(count)
    if average == "weighted":
        return float(np.average(aucs, weights=support))
    if average == "macro":
        return float(np.mean(aucs))
    raise InvalidInput(f"Unknown average {average!r}; use 'macro' or 'weighted'.")


def request_error_rate(is_error: ArrayLike) -> float:
    """Share of requests flagged as failed (booleans, or 0/1): the serving error rate."""
    flags = as_1d(is_error, "is_error")
    if flags.dtype.kind != "b":
        if not np.isin(flags, (0, 1)).all():
            raise InvalidInput("is_error must hold booleans or 0/1 values.")
        flags = flags.astype(bool)
    return float(np.count_nonzero(flags) / len(flags))


@dataclass(frozen=True)
class QualityReport:
    """Quality of one window of labelled predictions.

    `precision`/`recall`/`f1` are the headline numbers: for the positive label when
    there are at most two labels, else the macro average. `error_rate` is the
    misclassification rate, 1 − accuracy. `roc_auc` is the binary AUC; with one score
    column per class, `roc_auc_ovr_macro`/`_weighted` are the one-vs-rest AUCs. Each is
    None without scores or when a class it needs is absent (undefined there, not zero).
    """

    rows: int
    labels: tuple[Any, ...]
    accuracy: float
    error_rate: float
    positive_label: Any
    precision: float
    recall: float
    f1: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    roc_auc: float | None
    confusion: ConfusionMatrix
    roc_auc_ovr_macro: float | None = None
    roc_auc_ovr_weighted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "labels": [_plain(x) for x in self.labels],
            "accuracy": self.accuracy,
            "error_rate": self.error_rate,
            "positive_label": _plain(self.positive_label),
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "weighted_precision": self.weighted_precision,
            "weighted_recall": self.weighted_recall,
            "weighted_f1": self.weighted_f1,
            "roc_auc": self.roc_auc,
            "roc_auc_ovr_macro": self.roc_auc_ovr_macro,
            "roc_auc_ovr_weighted": self.roc_auc_ovr_weighted,
            "confusion_matrix": self.confusion.to_dict(),
        }


def quality_from_confusion(
    cm: ConfusionMatrix,
    pos_label: Hashable = 1,
    roc_auc: float | None = None,
    ovr: tuple[float | None, float | None] = (None, None),
) -> QualityReport:
    """Build the report from accumulated counts (the streaming path ends here too)."""
    if cm.total == 0:
        raise InvalidInput("No labelled predictions in this window.")
    acc = float(np.trace(cm.counts) / cm.total)
    macro = precision_recall_f1(cm, "macro")
    weighted = precision_recall_f1(cm, "weighted")
    headline = precision_recall_f1(cm, "binary", pos_label) if len(cm.labels) <= 2 else macro
    return QualityReport(
        rows=cm.total,
        labels=cm.labels,
        accuracy=acc,
        error_rate=1.0 - acc,
        positive_label=pos_label if len(cm.labels) <= 2 else None,
        precision=headline[0],
        recall=headline[1],
        f1=headline[2],
        macro_precision=macro[0],
        macro_recall=macro[1],
        macro_f1=macro[2],
        weighted_precision=weighted[0],
        weighted_recall=weighted[1],
        weighted_f1=weighted[2],
        roc_auc=roc_auc,
        confusion=cm,
        roc_auc_ovr_macro=ovr[0],
        roc_auc_ovr_weighted=ovr[1],
    )


def quality_report(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    scores: ArrayLike | None = None,
    pos_label: Hashable = 1,
    class_scores: Mapping[Hashable, ArrayLike] | None = None,
) -> QualityReport:
    """All quality metrics of one window; AUC only when scores exist and its classes occur.

    `scores` are the model's score for `pos_label` (probability of the positive class),
    so binary AUC counts rows whose label equals `pos_label` as positives. `class_scores`
    maps each class of a multi-class model to its probability column (one-vs-rest AUC).
    """
    t = as_1d(y_true, "y_true")
    p = as_1d(y_pred, "y_pred")
    same_length(("y_true", t), ("y_pred", p))
    cm = confusion_of_arrays(t, p)
    auc: float | None = None
    if scores is not None:
        s = as_numeric_1d(scores, "scores")
        same_length(("y_true", t), ("scores", s))
        is_pos = t == pos_label
        if is_pos.any() and not is_pos.all():
            auc = auc_from_split(s[~is_pos], s[is_pos])
    ovr: tuple[float | None, float | None] = (None, None)
    if class_scores:
        labels = list(class_scores)
        matrix = np.column_stack([as_numeric_1d(class_scores[c], f"scores[{c}]") for c in labels])
        if set(labels) <= set(np.unique(t).tolist()):
            ovr = (roc_auc_ovr(t, matrix, labels, "macro"), roc_auc_ovr(t, matrix, labels, "weighted"))
    return quality_from_confusion(cm, pos_label, auc, ovr)
