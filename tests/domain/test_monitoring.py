"""Monitoring computations against the references users check them with.

scikit-learn for quality (to 1e-9, property-based), SciPy for KS / χ² p-values,
Wasserstein and Jensen–Shannon, numpy for quantiles, the PSI formula by hand, and the
streaming digest against the in-memory functions (exactly, or within its stated
bound for the one approximation, the streaming Wasserstein distance).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import special, stats
from scipy.spatial.distance import jensenshannon as scipy_jensenshannon
from sklearn import metrics as skm

from bot.domain.errors import InvalidInput
from bot.domain.monitoring import (
    DigestAccumulator,
    DriftConfig,
    accuracy,
    chisquare_test,
    choose_method,
    confusion_matrix,
    drift_report,
    feature_drift,
    jensenshannon,
    ks_2samp,
    latency_report,
    precision_recall_f1,
    psi,
    quality_report,
    request_error_rate,
    roc_auc,
    throughput,
    wasserstein_distance,
    wasserstein_norm,
    z_test,
)
from bot.domain.monitoring import _special as sp
from bot.domain.monitoring import statistics as dr

TOL = 1e-9
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _sk_prf(y_true: np.ndarray, y_pred: np.ndarray, average: str) -> tuple[float, float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's zero_division="warn" → 0.0 plus a warning
        p, r, f, _ = skm.precision_recall_fscore_support(y_true, y_pred, average=average)
    return p, r, f


labels_pair = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 3)),
    )
)
binary_pair = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.int64, n, elements=st.integers(0, 1)),
        hnp.arrays(np.int64, n, elements=st.integers(0, 1)),
    )
)


# ---------------------------------------------------------------- quality vs scikit-learn


@PROPERTY
@given(labels_pair)
def test_confusion_accuracy_macro_weighted_equal_sklearn(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = pair
    cm = confusion_matrix(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.array_equal(cm.counts, skm.confusion_matrix(y_true, y_pred))
    assert cm.labels == tuple(int(v) for v in np.unique(np.concatenate([y_true, y_pred])))
    assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=TOL)
    for average in ("macro", "weighted"):
        assert precision_recall_f1(cm, average) == pytest.approx(_sk_prf(y_true, y_pred, average), abs=TOL)


@PROPERTY
@given(binary_pair, st.sampled_from([0, 1]))
def test_binary_metrics_equal_sklearn_including_single_class(
    pair: tuple[np.ndarray, np.ndarray], pos_label: int
) -> None:
    """Covers one class only, and a class never predicted (sklearn's zero_division → 0)."""
    y_true, y_pred = pair
    cm = confusion_matrix(y_true, y_pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = skm.precision_recall_fscore_support(y_true, y_pred, average="binary", pos_label=pos_label)[
            :3
        ]
    assert precision_recall_f1(cm, "binary", pos_label) == pytest.approx(expected, abs=TOL)
    report = quality_report(y_true, y_pred, pos_label=pos_label)
    assert (report.precision, report.recall, report.f1) == pytest.approx(expected, abs=TOL)
    assert report.error_rate == pytest.approx(1 - skm.accuracy_score(y_true, y_pred), abs=TOL)


@PROPERTY
@given(labels_pair)
def test_binary_average_rejects_what_sklearn_rejects(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, y_pred = pair
    cm = confusion_matrix(y_true, y_pred)
    try:
        expected = _sk_prf(y_true, y_pred, "binary")
    except ValueError:
        with pytest.raises(InvalidInput):
            precision_recall_f1(cm, "binary")
    else:
        assert precision_recall_f1(cm, "binary") == pytest.approx(expected, abs=TOL)


@PROPERTY
@given(
    st.integers(2, 300).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.int64, n, elements=st.integers(0, 1)),
            st.one_of(
                hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 0.1, 0.5, 0.5, 0.9, 1.0])),  # ties
                hnp.arrays(np.float64, n, elements=st.floats(-1e6, 1e6, allow_nan=False)),
            ),
        )
    )
)
def test_roc_auc_equals_sklearn_with_ties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    y_true, scores = pair
    assume(0 < y_true.sum() < len(y_true))
    assert roc_auc(y_true, scores) == pytest.approx(skm.roc_auc_score(y_true, scores), abs=TOL)
    assert quality_report(y_true, y_true, scores).roc_auc == pytest.approx(
        skm.roc_auc_score(y_true, scores), abs=TOL
    )


def test_string_labels_and_bool_labels() -> None:
    y_true = np.array(["cat", "dog", "dog", "bird", "cat"])
    y_pred = np.array(["cat", "cat", "dog", "dog", "fish"])
    cm = confusion_matrix(y_true, y_pred)
    assert cm.labels == ("bird", "cat", "dog", "fish")
    assert np.array_equal(cm.counts, skm.confusion_matrix(y_true, y_pred))
    assert precision_recall_f1(cm, "macro") == pytest.approx(_sk_prf(y_true, y_pred, "macro"), abs=TOL)
    flags_true = np.array([True, False, True, True])
    flags_pred = np.array([True, True, False, True])
    report = quality_report(flags_true, flags_pred, pos_label=True)
    assert report.labels == (False, True)
    assert report.precision == pytest.approx(2 / 3)
    json.dumps(report.to_dict())  # plain JSON types only


def test_quality_report_multiclass_headline_is_macro_and_auc_needs_two_classes() -> None:
    y = np.array([0, 1, 2, 2, 1, 0])
    p = np.array([0, 2, 2, 2, 1, 1])
    report = quality_report(y, p, scores=np.linspace(0, 1, 6))
    assert report.positive_label is None
    assert report.f1 == report.macro_f1 == pytest.approx(_sk_prf(y, p, "macro")[2])
    assert report.weighted_recall == pytest.approx(report.accuracy)
    single = quality_report(np.zeros(4, dtype=int), np.array([0, 1, 0, 0]), scores=np.arange(4.0))
    assert single.roc_auc is None


def test_request_error_rate() -> None:
    assert request_error_rate([True, False, False, True]) == 0.5
    assert request_error_rate(np.array([0, 0, 1])) == pytest.approx(1 / 3)
    with pytest.raises(InvalidInput):
        request_error_rate([0, 2])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call",
    [
        lambda: confusion_matrix([], []),
        lambda: confusion_matrix([0, 1], [0]),
        lambda: confusion_matrix([0.0, np.nan], [0, 1]),
        lambda: confusion_matrix(pd.Series([0, None, 1], dtype="Int64"), [0, 1, 1]),
        lambda: confusion_matrix(np.array(["a", "b"], dtype=object), np.array([1, 2], dtype=object)),
        lambda: confusion_matrix([0.5, 1.0], [0, 1]),
        lambda: precision_recall_f1(confusion_matrix([0, 1, 2], [0, 1, 2]), "binary"),
        lambda: precision_recall_f1(confusion_matrix([0, 2], [0, 2]), "binary", pos_label=1),
        lambda: roc_auc([1, 1, 1], [0.1, 0.2, 0.3]),
        lambda: roc_auc([0, 1, 1], [0.1, np.nan, 0.3]),
        lambda: roc_auc([0, 1, 1], [0.1, 0.3]),
        lambda: latency_report([]),
        lambda: latency_report([1.0, np.nan]),
        lambda: latency_report([1.0, -2.0]),
        lambda: latency_report([1.0, 2.0], timestamps=[0.0]),
        lambda: ks_2samp([], [1.0]),
        lambda: ks_2samp([1.0, np.inf], [1.0]),
        lambda: psi([1.0, 2.0], [np.nan, 1.0]),
        lambda: wasserstein_norm([1.0], []),
        lambda: chisquare_test(["a", None], ["a"]),
        lambda: jensenshannon([1, 2], [1, 2, 3]),
        lambda: feature_drift([1.0, 2.0], [1.0, 2.0], config=DriftConfig(method="ks"), kind="categorical"),
        lambda: drift_report(pd.DataFrame({"x": [1.0]}), pd.DataFrame({"y": [1.0]}), ["x"]),
        lambda: DriftConfig(method="bogus"),  # type: ignore[arg-type]
    ],
)
def test_bad_input_raises_invalid_input(call) -> None:
    with pytest.raises(InvalidInput) as err:
        call()
    assert str(err.value)  # a sentence, not an empty error


def test_missing_values_dropped_only_when_asked() -> None:
    ref = pd.Series([1.0, 2.0, 3.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    cur = pd.Series([1.5, np.inf, 2.5, 3.5, 4.5, 5.5, 6.5])
    with pytest.raises(InvalidInput, match="missing"):
        feature_drift(ref, cur, "x")
    got = feature_drift(ref, cur, "x", config=DriftConfig(drop_missing=True))
    want = stats.ks_2samp(ref.dropna(), cur[np.isfinite(cur)])
    assert got.method == "ks"
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)


# ---------------------------------------------------------------- latency


@PROPERTY
@given(hnp.arrays(np.float64, st.integers(1, 500), elements=st.floats(0, 1e5)))
def test_latency_quantiles_are_numpys(values: np.ndarray) -> None:
    report = latency_report(values)
    expected = np.percentile(values, [50, 95, 99])
    assert [report.p50_ms, report.p95_ms, report.p99_ms] == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert report.mean_ms == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
    assert report.max_ms == values.max()


def test_throughput_from_timestamps() -> None:
    ts = pd.Series(pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:00:10Z", "2026-01-01T00:00:05Z"]))
    report = latency_report([10.0, 20.0, 30.0], timestamps=ts)
    assert report.span_seconds == 10.0
    assert report.throughput_per_s == pytest.approx(0.3)
    epoch = latency_report([1.0, 2.0], timestamps=[1_700_000_000.0, 1_700_000_004.0])
    assert epoch.throughput_per_s == pytest.approx(0.5)
    assert throughput(5, 10.0, 10.0) is None
    assert json.dumps(report.to_dict())


# ---------------------------------------------------------------- PSI by hand


def test_psi_categorical_hand_checked() -> None:
    # reference a×50 b×30 c×20 → r = (0.5, 0.3, 0.2); current a×40 b×40 c×20 → c = (0.4, 0.4, 0.2)
    # PSI = (0.5−0.4)·ln(0.5/0.4) + (0.3−0.4)·ln(0.3/0.4) + 0
    #     = 0.1·0.2231435513 + (−0.1)·(−0.2876820725) = 0.0223143551 + 0.0287682072 = 0.0510825624
    ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    cur = ["a"] * 40 + ["b"] * 40 + ["c"] * 20
    assert psi(ref, cur) == pytest.approx(0.0510825624, abs=1e-10)


def test_psi_new_category_gets_epsilon_1e_4() -> None:
    # reference a×60 b×40 → r = (0.6, 0.4, 0); its smallest non-zero share 0.4 > 1e-4, so the
    # empty bin c gets ε = 1e-4 → r = (0.6, 0.4, 0.0001). current a×50 b×30 c×20 → (0.5, 0.3, 0.2)
    # PSI = 0.1·ln(1.2) + 0.1·ln(4/3) + (0.0001−0.2)·ln(0.0001/0.2)
    #     = 0.0182321557 + 0.0287682072 + (−0.1999)·(−7.6009024595)
    #     = 0.0182321557 + 0.0287682072 + 1.5194204017 = 1.5664207646
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    assert psi(ref, cur) == pytest.approx(1.5664207646, abs=1e-9)


def test_psi_epsilon_is_a_millionth_of_a_tiny_smallest_share() -> None:
    # reference a×9999 b×1 → (0.9999, 0.0001, 0): smallest non-zero 0.0001 ≤ 1e-4, so
    # ε = 0.0001 / 10⁶ = 1e-10. current a×5000 b×2500 c×2500 → (0.5, 0.25, 0.25)
    # PSI = 0.4999·ln(0.9999/0.5) + (0.0001−0.25)·ln(0.0001/0.25) + (1e-10−0.25)·ln(1e-10/0.25)
    #     = 0.4999·0.6930471 + (−0.2499)·(−7.8240460) + (−0.2499999999)·(−21.6395565)
    #     = 0.3464543 + 1.9552291 + 5.4098891 = 7.7115725
    ref = ["a"] * 9999 + ["b"]
    cur = ["a"] * 5000 + ["b"] * 2500 + ["c"] * 2500
    assert psi(ref, cur) == pytest.approx(7.711572521, abs=1e-8)


def test_psi_numeric_reference_deciles_hand_checked() -> None:
    # reference 0…99: deciles (linear) 9.9, 19.8, …, 89.1 → 10 bins of 10 values: r = 0.1 each.
    # current 0…49 twice: the 5 lower bins hold 20 each (c = 0.2), the 5 upper none (c = 0 → ε = 1e-4,
    # as the smallest non-zero current share 0.2 > 1e-4).
    # PSI = 5·(0.1−0.2)·ln(0.1/0.2) + 5·(0.1−0.0001)·ln(0.1/0.0001)
    #     = 5·0.0693147 + 5·0.0999·6.9077553 = 0.3465736 + 3.4504238 = 3.7969974
    ref = np.arange(100.0)
    cur = np.concatenate([np.arange(50.0), np.arange(50.0)])
    assert dr.quantile_edges(ref, 10) == pytest.approx([9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1])
    assert psi(ref, cur, binning="quantile") == pytest.approx(3.796997352, abs=1e-8)
    assert psi(ref, ref, binning="quantile") == 0.0
    verdict = feature_drift(ref, cur, "x", config=DriftConfig(method="psi", psi_binning="quantile"))
    assert verdict.drifted and verdict.threshold == 0.1 and verdict.p_value is None


def test_numeric_psi_defaults_to_evidently_sturges_bins_hand_checked() -> None:
    # ref 0…99 and cur 0…49 twice: 200 values over [0, 99], Sturges: log2(200)+1 = 8.64 → 9 bins
    # of width 11: ref has 11 per bin and 12 in the last (88…99: numpy closes the last bin),
    # cur 22 in bins 1–4, 44…49 twice = 12 in bin 5, none above → ε = 1e-4 there.
    ref = np.arange(100.0)
    cur = np.concatenate([np.arange(50.0), np.arange(50.0)])
    edges = np.histogram_bin_edges(np.concatenate([ref, cur]), "sturges")
    assert len(edges) == 10 and edges[1] == 11.0
    r = np.array([11] * 8 + [12]) / 100
    c = np.array([22, 22, 22, 22, 12, 0, 0, 0, 0]) / 100
    c[c == 0] = 1e-4
    assert psi(ref, cur) == pytest.approx(float(np.sum((r - c) * np.log(r / c))), abs=1e-12)
    assert feature_drift(ref, cur, "x", config=DriftConfig(method="psi")).statistic == psi(ref, cur)


def test_evidently_binning_is_sturges_over_both_samples() -> None:
    rng = np.random.default_rng(0)
    ref, cur = rng.normal(size=3000), rng.normal(0.3, size=2000)
    both = np.concatenate([ref, cur])
    assert np.array_equal(
        dr.sturges_edges(both.min(), both.max(), len(both)), np.histogram_bin_edges(both, "sturges")
    )
    counts = dr.binned_counts(ref, cur, "numerical", "evidently", 10)
    edges = np.histogram_bin_edges(both, "sturges")
    r, c = np.histogram(ref, edges)[0] / 3000, np.histogram(cur, edges)[0] / 2000
    assert np.array_equal(counts.reference_shares, r) and np.array_equal(counts.current_shares, c)
    assert dr.jensenshannon_drift(ref, cur) == pytest.approx(scipy_jensenshannon(r, c), abs=1e-12)


# ---------------------------------------------------------------- p-values vs SciPy


small_samples = st.tuples(
    hnp.arrays(np.float64, st.integers(1, 120), elements=st.integers(-20, 20).map(float)),  # ties
    hnp.arrays(np.float64, st.integers(1, 120), elements=st.floats(-20, 20, allow_nan=False)),
    st.booleans(),
)


@PROPERTY
@given(small_samples)
def test_ks_exact_matches_scipy(samples: tuple[np.ndarray, np.ndarray, bool]) -> None:
    a, b, swap = samples
    if swap:
        a, b = b, a
    d, p = ks_2samp(a, b)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        want = stats.ks_2samp(a, b)
    assert d == pytest.approx(want.statistic, abs=1e-12)
    if any("Exact calculation unsuccessful" in str(w.message) for w in caught):
        # SciPy's exact sum left [0, 1] by rounding and it fell back to the asymptotic formula;
        # ours stays exact: compare with the path count done in integers.
        assert p == pytest.approx(_exact_ks_pvalue_by_counting(len(a), len(b), d), rel=1e-9, abs=1e-300)
    else:
        assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


def _exact_ks_pvalue_by_counting(n1: int, n2: int, d: float) -> float:
    """P(D ≥ d) by counting, in exact integers, the lattice paths (0,0)→(n1,n2) that stay inside
    |x·n2 − y·n1| < h·g (d = h/lcm); the definition, with no formula in between."""
    g = math.gcd(n1, n2)
    h = round(d * (n1 // g) * n2)
    inside = [[0] * (n2 + 1) for _ in range(n1 + 1)]
    for x in range(n1 + 1):
        for y in range(n2 + 1):
            if abs(x * n2 - y * n1) >= h * g:
                continue
            inside[x][y] = 1 if x == y == 0 else (inside[x - 1][y] if x else 0) + (inside[x][y - 1] if y else 0)
    return 1 - inside[n1][n2] / math.comb(n1 + n2, n1)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (9000, 1000, 0.05),  # exact, unequal sizes
        (4000, 4000, 0.04),  # exact, equal sizes
        (10001, 120, 0.2),  # asymptotic, kstwo with n ≤ 140
        (20000, 800, 0.05),  # asymptotic, Durbin/Pelz–Good region
        (30000, 900, 0.3),  # asymptotic, Smirnov tail
        (400_000, 300_000, 0.003),  # asymptotic, large n (Pelz–Good)
    ],
)
def test_ks_large_samples_match_scipy(n1: int, n2: int, shift: float) -> None:
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=n1)
    b = np.round(rng.normal(shift, size=n2), 3)
    d, p = ks_2samp(a, b)
    want = stats.ks_2samp(a, b)
    assert d == pytest.approx(want.statistic, abs=1e-12)
    assert p == pytest.approx(want.pvalue, rel=1e-8, abs=1e-300)


def test_kolmogorov_distribution_matches_scipy_kstwo() -> None:
    for n in (1, 2, 7, 60, 140, 141, 700, 5000, 120_000):
        for x in np.concatenate([np.linspace(0.002, 0.98, 45), [0.6 / n, 1.0 / n, 1.4 / n, 1 - 1.5 / n]]):
            want = stats.kstwo.sf(x, n)
            assert sp.kolmogorov_sf(n, float(x)) == pytest.approx(want, rel=1e-8, abs=1e-300), (n, x)
    for n in (2, 10, 333, 20000):
        for x in np.linspace(0.001, 0.99, 40):
            assert sp.smirnov_sf(n, float(x)) == pytest.approx(special.smirnov(n, x), rel=1e-9, abs=1e-300)


categorical_samples = st.tuples(
    hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 5)),
    hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 5)),
)


@PROPERTY
@given(categorical_samples)
def test_chisquare_matches_scipy_against_reference_proportions(
    samples: tuple[np.ndarray, np.ndarray],
) -> None:
    ref, cur = samples
    keys = sorted(set(ref) | set(cur))
    assume(len(keys) >= 2)
    f_obs = np.array([np.sum(cur == k) for k in keys], dtype=float)
    f_exp = np.array([np.sum(ref == k) for k in keys], dtype=float) * len(cur) / len(ref)
    stat, p = chisquare_test(ref, cur)
    if (f_exp == 0).any():  # a category new in the current data: drift, certainly
        assert (stat, p) == (math.inf, 0.0)
        return
    want = stats.chisquare(f_obs, f_exp)
    assert stat == pytest.approx(want.statistic, rel=1e-12, abs=1e-12)
    assert p == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)


def test_incomplete_gamma_matches_scipy() -> None:
    for a in (0.5, 1.0, 2.5, 10.0, 77.5, 500.0):
        for x in np.linspace(0.0, 4 * a + 20, 60):
            assert sp.regularized_gamma_q(a, float(x)) == pytest.approx(
                special.gammaincc(a, x), rel=1e-10, abs=1e-300
            )


def test_z_test_matches_the_two_proportion_formula() -> None:
    ref = np.array([0] * 70 + [1] * 30)
    cur = np.array([0] * 50 + [1] * 50)
    # p1 = 0.3, p2 = 0.5, pooled 0.4: z = −0.2 / √(0.4·0.6·(1/100 + 1/100)) = −2.8867513
    z, p = z_test(ref, cur)
    assert z == pytest.approx(-0.2 / math.sqrt(0.24 * 0.02))
    assert p == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    assert z_test(["x"] * 5, ["x"] * 9) == (0.0, 1.0)


# ---------------------------------------------------------------- distances vs SciPy


@PROPERTY
@given(
    hnp.arrays(np.float64, st.integers(1, 100), elements=st.floats(-1e3, 1e3, allow_nan=False)),
    hnp.arrays(np.float64, st.integers(1, 100), elements=st.floats(-1e3, 1e3, allow_nan=False)),
)
def test_wasserstein_matches_scipy(u: np.ndarray, v: np.ndarray) -> None:
    assert wasserstein_distance(u, v) == pytest.approx(stats.wasserstein_distance(u, v), rel=1e-9, abs=1e-9)
    assert wasserstein_norm(u, v) == pytest.approx(
        stats.wasserstein_distance(u, v) / max(np.std(u), 0.001), rel=1e-9, abs=1e-9
    )


@PROPERTY
@given(
    st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.float64, n, elements=st.floats(0, 100)),
            hnp.arrays(np.float64, n, elements=st.floats(0, 100)),
        )
    )
)
def test_jensenshannon_matches_scipy(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    assume(p.sum() > 0 and q.sum() > 0)
    with np.errstate(invalid="ignore"):
        want = scipy_jensenshannon(p, q)
    # Compare the divergence (the square): the square root turns rounding noise of 1e-16
    # around equal distributions into 1e-8, and SciPy into NaN when the noise is negative.
    want_sq = 0.0 if np.isnan(want) else want**2
    assert jensenshannon(p, q) ** 2 == pytest.approx(want_sq, abs=1e-12)


# ---------------------------------------------------------------- choosing tests like Evidently


@pytest.mark.parametrize(
    ("kind", "rows", "n_values", "method"),
    [
        ("numerical", 1000, 6, "ks"),
        ("numerical", 1000, 5, "chisquare"),
        ("numerical", 1000, 2, "z"),
        ("categorical", 10, 40, "chisquare"),
        ("categorical", 999, 2, "z"),
        ("numerical", 1001, 6, "wasserstein"),
        ("numerical", 1001, 5, "jensenshannon"),
        ("categorical", 5000, 2, "jensenshannon"),
    ],
)
def test_default_method_is_evidentlys(kind: str, rows: int, n_values: int, method: str) -> None:
    assert choose_method(kind, rows, n_values, DriftConfig()) == method  # type: ignore[arg-type]


def test_drift_report_small_and_large_reference() -> None:
    rng = np.random.default_rng(7)

    def frame(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "num": rng.normal(shift, 1, n),
                "cat": rng.choice(["a", "b", "c"], n, p=[0.5 - shift / 2, 0.3, 0.2 + shift / 2]),
                "flag": rng.random(n) < 0.2 + shift / 2,
                "small_int": rng.integers(0, 4, n),
            }
        )

    ref_small, cur_small = frame(500, 0.0), frame(700, 0.4)
    small = drift_report(ref_small, cur_small)
    assert [f.method for f in small.features] == ["ks", "chisquare", "z", "chisquare"]
    assert small.features[0].p_value == pytest.approx(
        stats.ks_2samp(ref_small["num"], cur_small["num"]).pvalue, rel=1e-9
    )
    assert small.features[0].drifted and small.dataset_drift
    large = drift_report(
        frame(3000, 0.0), frame(3000, 0.4), config=DriftConfig(thresholds={"wasserstein": 0.2})
    )
    assert [f.method for f in large.features] == [
        "wasserstein",
        "jensenshannon",
        "jensenshannon",
        "jensenshannon",
    ]
    assert large.features[0].threshold == 0.2
    assert large.share_drifted == sum(f.drifted for f in large.features) / 4
    assert large.dataset_drift == (large.share_drifted >= 0.5)
    json.dumps(large.to_dict())
    forced = drift_report(frame(300, 0.0), frame(300, 0.0), ["num"], DriftConfig(per_feature={"num": "psi"}))
    assert forced.features[0].method == "psi" and not forced.dataset_drift


# ---------------------------------------------------------------- streaming digest


def _frame(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    score = np.round(rng.random(n), 3)
    label = (rng.random(n) < 0.3 + 0.4 * score).astype(np.int64)
    return pd.DataFrame(
        {
            "timestamp": 1_700_000_000.0 + np.sort(rng.uniform(0, 3600, n)),
            "label": label,
            "prediction": (score > 0.5).astype(np.int64),
            "score": score,
            "latency_ms": rng.lognormal(3, 0.5, n),
            "x": rng.normal(shift, 1, n),
            "y": rng.exponential(1 + shift, n),
            "cat": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3 + shift / 4, 0.2 - shift / 4]),
            "flag": rng.random(n) < 0.1 + shift / 4,
        }
    )


def _accumulate(
    reference: pd.DataFrame, current: pd.DataFrame, features: list[str], config: DriftConfig, **kw
):
    acc = DigestAccumulator(
        reference,
        features,
        score_column="score",
        latency_column="latency_ms",
        timestamp_column="timestamp",
        config=config,
        **kw,
    )
    for start in range(0, len(current), 6_113):  # uneven chunks
        acc.update({c: current[c].iloc[start : start + 6_113] for c in acc.columns})
    return acc.result()


def test_streaming_digest_equals_in_memory_computations() -> None:
    rng = np.random.default_rng(11)
    reference, current = _frame(800, rng), _frame(40_000, rng, shift=0.2)
    features = ["x", "y", "cat", "flag"]
    digest = _accumulate(reference, current, features, DriftConfig())

    q = quality_report(current["label"], current["prediction"], current["score"])
    assert digest.quality == q
    assert digest.quality.roc_auc == pytest.approx(
        skm.roc_auc_score(current["label"], current["score"]), abs=TOL
    )
    lat = latency_report(current["latency_ms"], current["timestamp"])
    assert digest.latency is not None
    assert digest.latency.p99_ms == lat.p99_ms and digest.latency.throughput_per_s == lat.throughput_per_s
    assert digest.latency.mean_ms == pytest.approx(lat.mean_ms, rel=1e-12)

    want = drift_report(reference, current, features)
    assert digest.drift is not None
    for got, exp in zip(digest.drift.features, want.features, strict=True):
        assert (got.name, got.method, got.drifted) == (exp.name, exp.method, exp.drifted)
        assert got.statistic == pytest.approx(exp.statistic, rel=1e-12, abs=1e-12)
        assert got.p_value == pytest.approx(exp.p_value, rel=1e-9, abs=1e-300)
    assert [f.method for f in digest.drift.features] == ["ks", "ks", "chisquare", "z"]
    assert digest.drift.features[0].p_value == pytest.approx(
        stats.ks_2samp(reference["x"], current["x"]).pvalue, rel=1e-9
    )
    json.dumps(digest.to_dict())


@pytest.mark.parametrize("method", ["psi", "jensenshannon"])
@pytest.mark.parametrize("binning", ["quantile", "evidently"])
def test_streaming_binned_statistics_are_exact(method: str, binning: str) -> None:
    rng = np.random.default_rng(12)
    reference, current = _frame(5_000, rng), _frame(30_000, rng, shift=0.3)
    config = DriftConfig(method=method, psi_binning=binning, js_binning=binning)  # type: ignore[arg-type]
    ranges = {f: (current[f].min(), current[f].max(), len(current)) for f in ("x", "y")}
    digest = _accumulate(reference, current, ["x", "y", "cat"], config, current_ranges=ranges)
    want = drift_report(reference, current, ["x", "y", "cat"], config)
    assert digest.drift is not None
    for got, exp in zip(digest.drift.features, want.features, strict=True):
        assert got.method == method
        assert got.statistic == pytest.approx(exp.statistic, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: (rng.normal(0, 1, 4_000), np.concatenate([rng.normal(0.3, 1.2, 150_000), [-40.0, 55.0]])),
        lambda rng: (rng.lognormal(0, 1.0, 4_000), rng.lognormal(0.2, 1.1, 150_000)),  # heavy right tail
        lambda rng: (
            rng.integers(0, 50, 4_000).astype(float),
            rng.integers(0, 60, 150_000).astype(float),
        ),  # atoms
    ],
)
def test_streaming_wasserstein_within_its_bound_and_1e_3(make) -> None:
    rng = np.random.default_rng(13)
    ref, cur = make(rng)
    exact = stats.wasserstein_distance(ref, cur) / max(np.std(ref), 0.001)
    acc = DigestAccumulator(pd.DataFrame({"v": ref}), ["v"], label_column=None, prediction_column=None)
    for start in range(0, len(cur), 50_000):
        acc.update({"v": cur[start : start + 50_000]})
    result = acc.result().drift.features[0]  # type: ignore[union-attr]
    assert result.method == "wasserstein"
    assert result.error_bound is not None and result.error_bound <= 1e-3
    assert abs(result.statistic - exact) <= result.error_bound
    assert abs(result.statistic - exact) <= 1e-3


def test_streaming_low_cardinality_numeric_decides_at_the_end() -> None:
    ref = pd.DataFrame({"v": np.tile([0.0, 1.0, 2.0], 500)})  # 3 values, 1500 rows
    few = DigestAccumulator(ref, ["v"], label_column=None, prediction_column=None)
    few.update({"v": np.tile([0.0, 1.0, 1.0, 2.0], 100)})
    many = DigestAccumulator(ref, ["v"], label_column=None, prediction_column=None)
    many.update({"v": np.linspace(0, 2, 400)})
    assert few.result().drift.features[0].method == "jensenshannon"  # type: ignore[union-attr]
    assert many.result().drift.features[0].method == "wasserstein"  # type: ignore[union-attr]


def test_streaming_rejects_bad_chunks() -> None:
    ref = pd.DataFrame({"x": np.arange(50.0)})
    acc = DigestAccumulator(ref, ["x"])
    with pytest.raises(InvalidInput, match="no column"):
        acc.update({"label": [0], "prediction": [1]})
    with pytest.raises(InvalidInput, match="differ in length"):
        acc.update({"label": [0, 1], "prediction": [1], "x": [0.5, 0.7]})
    with pytest.raises(InvalidInput, match="missing"):
        acc.update({"label": [0, 1], "prediction": [1, 1], "x": [0.5, np.nan]})
    with pytest.raises(InvalidInput, match="No rows"):
        DigestAccumulator(ref, ["x"]).result()


def test_summarise_parquet_streams_row_groups(tmp_path) -> None:
    pa = pytest.importorskip(
        "pyarrow", reason="pyarrow reads Parquet; it is a runtime dependency for Parquet logs"
    )
    import pyarrow.parquet as pq

    from bot.domain.monitoring import summarise_parquet

    rng = np.random.default_rng(14)
    reference, current = _frame(2_000, rng), _frame(30_000, rng, shift=0.2)
    table = pa.Table.from_pandas(current, preserve_index=False)
    path = tmp_path / "predictions.parquet"
    pq.write_table(table, path, row_group_size=7_000)
    digest = summarise_parquet(path, reference, features=["x", "y", "cat", "flag"], config=DriftConfig())
    in_memory = _accumulate(reference, current, ["x", "y", "cat", "flag"], DriftConfig())
    assert digest.rows == 30_000
    assert digest.quality == in_memory.quality
    assert digest.latency == in_memory.latency
    assert digest.drift == in_memory.drift

    pq.write_table(table.drop_columns(["label", "score"]), tmp_path / "nolabel.parquet")
    with pytest.raises(InvalidInput, match="no 'label' column"):
        summarise_parquet(tmp_path / "nolabel.parquet", reference)
    pq.write_table(table.drop_columns(["latency_ms"]), tmp_path / "nolatency.parquet")
    partial = summarise_parquet(tmp_path / "nolatency.parquet", reference, features=["x"])
    assert partial.latency is None and any("latency_ms" in note for note in partial.notes)
    evidently_bins = summarise_parquet(
        path, reference, features=["x"], config=DriftConfig(method="psi", psi_binning="evidently")
    )
    want = psi(reference["x"], current["x"], binning="evidently")
    assert evidently_bins.drift.features[0].statistic == pytest.approx(want, rel=1e-12)  # type: ignore[union-attr]
