"""More model kinds and data quality, against the references users check them with.

Multi-class ROC AUC (one-vs-rest, macro and weighted) and regression metrics against
scikit-learn to 1e-9, property-based, in memory and chunk by chunk; data-quality shares
against pandas.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn import metrics as skm

from bot.domain.errors import InvalidInput
from bot.domain.monitoring import DigestAccumulator, data_quality_report, regression_report, roc_auc_ovr
from bot.domain.monitoring.data_quality import DataQualityAccumulator

TOL = 1e-9
PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- multi-class ROC AUC


@st.composite
def multiclass(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[int]]:
    k = draw(st.integers(3, 5))
    extra = draw(st.integers(0, 60))
    y = np.concatenate([np.arange(k), draw(hnp.arrays(np.int64, extra, elements=st.integers(0, k - 1)))])
    raw = draw(hnp.arrays(np.float64, (len(y), k), elements=st.integers(1, 20).map(float)))  # ties on purpose
    scores = raw / raw.sum(axis=1, keepdims=True)
    order = draw(st.permutations(list(range(len(y)))))
    return y[order], scores[order], list(range(k))


@PROPERTY
@given(multiclass(), st.integers(1, 4))
def test_one_vs_rest_auc_equals_sklearn(data: tuple[np.ndarray, np.ndarray, list[int]], chunks: int) -> None:
    y, scores, labels = data
    for average in ("macro", "weighted"):
        want = skm.roc_auc_score(y, scores, multi_class="ovr", average=average, labels=labels)
        assert roc_auc_ovr(y, scores, labels, average) == pytest.approx(want, abs=TOL)  # type: ignore[arg-type]
    acc = DigestAccumulator(None, label_column="y", prediction_column="p",
                            class_score_columns={c: f"s{c}" for c in labels})
    for part in np.array_split(np.arange(len(y)), chunks):
        acc.update({"y": y[part], "p": scores[part].argmax(axis=1), **{f"s{c}": scores[part, c] for c in labels}})
    quality = acc.result().quality
    assert quality is not None
    assert quality.roc_auc_ovr_macro == pytest.approx(
        skm.roc_auc_score(y, scores, multi_class="ovr", average="macro", labels=labels), abs=TOL)
    assert quality.roc_auc_ovr_weighted == pytest.approx(
        skm.roc_auc_score(y, scores, multi_class="ovr", average="weighted", labels=labels), abs=TOL)


def test_one_vs_rest_auc_refuses_what_sklearn_refuses() -> None:
    y = np.array([0, 1, 2, 0])
    good = np.full((4, 3), 1 / 3)
    with pytest.raises(InvalidInput, match="sum to 1"):
        roc_auc_ovr(y, good * 2, [0, 1, 2])
    with pytest.raises(InvalidInput, match="never occurs"):
        roc_auc_ovr(np.array([0, 1, 1, 0]), good, [0, 1, 2])
    acc = DigestAccumulator(None, label_column="y", prediction_column="p", class_score_columns={0: "a", 1: "b", 2: "c"})
    acc.update({"y": np.array([0, 1, 1]), "p": np.array([0, 1, 2]), "a": good[:3, 0], "b": good[:3, 1],
                "c": good[:3, 2]})
    digest = acc.result()
    assert digest.quality is not None and digest.quality.roc_auc_ovr_macro is None
    assert any("class 2" in note for note in digest.notes)


# ---------------------------------------------------------------- regression


finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
# labels on a 1/64 grid: a constant column then has an exact mean, so R²'s "no variance" case is
# exercised as sklearn sees it rather than as rounding noise of order 1e-30 (where no two
# summation orders agree, sklearn's own included)
dyadic = st.integers(-10**7, 10**7).map(lambda v: v / 64)
regression_pairs = st.integers(2, 80).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.float64, n, elements=st.one_of(dyadic, st.just(0.0), st.just(3.0))),
        hnp.arrays(np.float64, n, elements=finite),
    )
)


def _sk_regression(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {"mae": skm.mean_absolute_error(y, p), "rmse": skm.root_mean_squared_error(y, p),
                "r2": skm.r2_score(y, p), "mape": skm.mean_absolute_percentage_error(y, p)}


def _close(ours: float, theirs: float) -> bool:
    return ours == pytest.approx(theirs, rel=TOL, abs=TOL)


@PROPERTY
@given(regression_pairs, st.integers(1, 5))
def test_regression_metrics_equal_sklearn(pair: tuple[np.ndarray, np.ndarray], chunks: int) -> None:
    y, p = pair
    want = _sk_regression(y, p)
    report = regression_report(y, p)
    assert all(_close(report.metrics()[k], want[k]) for k in want), (report, want)
    acc = DigestAccumulator(None, label_column="y", prediction_column="p", task="regression")
    for part in np.array_split(np.arange(len(y)), chunks):
        acc.update({"y": y[part], "p": p[part]})
    chunked = acc.result().regression
    assert chunked is not None and all(_close(chunked.metrics()[k], want[k]) for k in want), (chunked, want)


def test_regression_corner_cases_follow_sklearn() -> None:
    constant = np.array([2.0, 2.0, 2.0])
    assert regression_report(constant, constant).r2 == skm.r2_score(constant, constant) == 1.0
    assert regression_report(constant, constant + 1).r2 == skm.r2_score(constant, constant + 1) == 0.0
    zeros = np.array([0.0, 1.0])
    assert regression_report(zeros, np.array([1.0, 1.0])).mape == skm.mean_absolute_percentage_error(
        zeros, np.array([1.0, 1.0]))  # huge, not infinite: |e| / ε
    assert regression_report(np.array([1.0]), np.array([2.0])).r2 is None  # sklearn: nan with a warning


# ---------------------------------------------------------------- data quality


@st.composite
def quality_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    n_ref, n_cur = draw(st.integers(1, 40)), draw(st.integers(1, 60))
    ref_x = draw(hnp.arrays(np.float64, n_ref, elements=st.floats(-10, 10, allow_nan=False)))
    cur_x = draw(hnp.arrays(np.float64, n_cur, elements=st.one_of(
        st.floats(-20, 20, allow_nan=False), st.just(np.nan), st.just(np.inf))))
    colours = ["red", "green", "blue", "grey"]
    ref_c = draw(st.lists(st.sampled_from(colours[:2]), min_size=n_ref, max_size=n_ref))
    cur_c = draw(st.lists(st.one_of(st.sampled_from(colours), st.none()), min_size=n_cur, max_size=n_cur))
    return pd.DataFrame({"x": ref_x, "c": ref_c}), pd.DataFrame({"x": cur_x, "c": cur_c})


@PROPERTY
@given(quality_frames(), st.integers(1, 4))
def test_data_quality_shares_equal_pandas(frames: tuple[pd.DataFrame, pd.DataFrame], chunks: int) -> None:
    ref, cur = frames
    x, c = cur["x"], cur["c"]
    present_x, present_c = x.dropna(), c.dropna()
    want_x = {"missing": x.isna().mean()}
    want_c = {"missing": c.isna().mean()}
    if len(present_x):
        want_x.update(wrong_type=0.0, out_of_range=float(
            (~present_x.between(ref["x"].min(), ref["x"].max())).mean()))
    if len(present_c):
        want_c.update(wrong_type=0.0, new_category=float((~present_c.isin(set(ref["c"]))).mean()))
    by_name = {q.feature: q for q in data_quality_report(ref, cur)}
    assert by_name["x"].shares() == pytest.approx(want_x, abs=1e-12)
    assert by_name["c"].shares() == pytest.approx(want_c, abs=1e-12)
    accs = {name: DataQualityAccumulator(name, ref[name]) for name in ("x", "c")}
    for part in np.array_split(np.arange(len(cur)), chunks):
        for name, acc in accs.items():
            acc.update(cur[name].iloc[part])
    assert accs["x"].result() == by_name["x"] and accs["c"].result() == by_name["c"]


def test_wrong_types_and_numbers_written_as_text() -> None:
    ref = pd.DataFrame({"age": [20.0, 30.0, 40.0], "plan": ["basic", "pro", "pro"]})
    # a CSV chunk with one bad value reads as text: "35" is still a number, "n/a" and True are not
    cur = pd.DataFrame({"age": ["35", "n/a", "50", None, True], "plan": ["pro", 7, "gold", None, "basic"]})
    age, plan = data_quality_report(ref, cur)
    assert (age.rows, age.missing, age.wrong_type, age.out_of_range) == (5, 1, 2, 1)  # "50" is out of range
    assert age.metrics() == {"missing:age": 0.2, "wrong_type:age": 0.5, "out_of_range:age": 0.5}
    assert (plan.wrong_type, plan.new_category) == (1, 1)  # 7 is a number; "gold" is new
    assert plan.flagged == ("missing", "wrong_type", "new_category")
    assert data_quality_report(ref, ref)[0].flagged == ()
