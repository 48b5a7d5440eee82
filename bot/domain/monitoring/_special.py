"""Distribution functions behind the drift p-values, in numpy and `math` only.

SciPy is not a runtime dependency of modelbot, yet users compare our p-values with
the ones Evidently shows, which come from ``scipy.stats.ks_2samp`` and
``scipy.stats.chisquare``. So this module reproduces the *same choices* SciPy makes
(which distribution, which algorithm in which region) with independent code:

- χ² survival: the regularised upper incomplete gamma Q(k/2, x/2), by its power
  series below a+1 and Lentz's continued fraction above (Numerical Recipes §6.2).
- two-sample Kolmogorov–Smirnov, ``method="auto"``: the exact null distribution
  when both samples have at most 10 000 rows, otherwise the one-sample Kolmogorov
  distribution at n = round(n₁n₂/(n₁+n₂)) (``kstwo.sf``), evaluated with the
  Simard–L'Ecuyer (2011) recipe: Ruben–Gambino closed forms at the edges, the exact
  one-sided Smirnov sum (Birnbaum–Tingey) in the upper tail, Durbin's matrix method
  (Marsaglia–Tsang–Wang 2003) near the centre and the Pelz–Good asymptotic series
  for larger n. Where SciPy would use Pomeranz's recursion (n ≤ 140) we use Durbin's
  matrix, which is also exact; results agree to ~1e-12.
- exact two-sample KS: lattice paths that leave the band |x/m − y/n| < d (Hodges
  1958), counted column by column in log space so no binomial overflows; equal sample
  sizes use the alternating binomial sum in Horner form.

The loops here run over the lattice or a series (at most the sample sizes of a KS
test with ≤ 10 000 rows), never over data rows.
"""

from __future__ import annotations

import math

import numpy as np

_TINY = 1e-300
_EPS = 2.220446049250313e-16
_MIN_LOG = -708.3964185322641  # log of the smallest normal double


# ---------------------------------------------------------------- normal and χ²


def normal_two_sided_p(z: float) -> float:
    """P(|Z| ≥ |z|) for a standard normal Z, via erfc (no 1−cdf cancellation)."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def regularized_gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x)/Γ(a), the upper regularised incomplete gamma function."""
    if a <= 0 or x < 0 or math.isnan(x):
        raise ValueError(f"regularized_gamma_q needs a > 0 and x ≥ 0, got a={a}, x={x}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    log_prefactor = -x + a * math.log(x) - math.lgamma(a)
    max_iter = 10_000 + int(10 * math.sqrt(a))
    if x < a + 1.0:
        # P(a, x) = e^{-x} x^a / Γ(a) · Σ x^n / (a (a+1) … (a+n))
        term = 1.0 / a
        total = term
        ap = a
        for _ in range(max_iter):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _EPS:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefactor))
    # Continued fraction for Q(a, x), modified Lentz.
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, max_iter):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return min(1.0, math.exp(log_prefactor) * h)


def chi2_sf(statistic: float, dof: int) -> float:
    """Survival function of the χ² distribution with `dof` degrees of freedom."""
    if math.isinf(statistic):
        return 0.0
    return regularized_gamma_q(dof / 2.0, statistic / 2.0)


# ---------------------------------------------------------------- log factorials


def _log_factorials(upto: int) -> np.ndarray:
    """log(k!) for k = 0..upto, each from `math.lgamma` (correctly rounded-ish)."""
    return np.array([math.lgamma(k + 1.0) for k in range(upto + 1)])


# ---------------------------------------------------------------- one-sided Smirnov


def smirnov_sf(n: int, x: float) -> float:
    """P(D⁺ₙ ≥ x), the exact one-sided Kolmogorov–Smirnov tail (Birnbaum–Tingey).

    sf = x · Σ_{v=0}^{⌊n(1−x)⌋} C(n,v) (x + v/n)^{v−1} (1 − x − v/n)^{n−v},
    summed in log space. For n > 10⁶ SciPy switches to exp(−(6nx+1)²/(18n)); so do we.
    """
    if x <= 0.0:
        return 1.0
    if x >= 1.0:
        return 0.0
    if n == 1:
        return 1.0 - x
    if -2.0 * n * x * x < _MIN_LOG:
        return 0.0
    if math.floor(n * x) >= n - 1:
        return (1.0 - x) ** n
    if n > 1_000_000:
        return math.exp(-((6.0 * n * x + 1.0) ** 2) / 18.0 / n)
    v = np.arange(0, math.floor(n * (1.0 - x)) + 1, dtype=np.float64)
    rest = ((n - v) - n * x) / n  # 1 − x − v/n
    keep = rest > 0
    v, rest = v[keep], rest[keep]
    lf = _log_factorials(n)
    vi = v.astype(np.int64)
    log_terms = (
        lf[n] - lf[vi] - lf[n - vi] + (v - 1.0) * np.log(x + v / n) + (n - v) * np.log(rest) + math.log(x)
    )
    top = float(log_terms.max())
    return float(min(1.0, math.exp(top) * np.exp(log_terms - top).sum()))


# ---------------------------------------------------------------- two-sided Kolmogorov (one sample)


def _durbin_cdf(n: int, d: float) -> float:
    """P(Dₙ < d) by Durbin's matrix method (Marsaglia, Tsang & Wang 2003).

    With k = ⌈nd⌉, h = k − nd and m = 2k − 1, the m×m matrix H has
    H[i, j] = 1/(i−j+1)! for i−j+1 ≥ 0, its first column and last row corrected by
    the h-terms; then P = n!/nⁿ · (Hⁿ)[k−1, k−1]. The power is taken by squaring with
    a separate binary exponent so nothing overflows.
    """
    nd = n * d
    if nd <= 0.5:
        return 0.0
    k = math.ceil(nd)
    h = k - nd
    m = 2 * k - 1
    idx = np.arange(m)
    diff = idx[:, None] - idx[None, :] + 1  # i − j + 1
    lf = _log_factorials(m)
    H = np.where(diff >= 0, np.exp(-lf[np.clip(diff, 0, m)]), 0.0)
    powers = h ** np.arange(1, m + 1)
    first_col = (1.0 - powers) * np.exp(-lf[1 : m + 1])  # (1 − h^{i+1})/(i+1)!
    H[:, 0] = first_col
    H[m - 1, :] = first_col[::-1]
    H[m - 1, 0] = (1.0 - 2.0 * h**m + max(0.0, 2.0 * h - 1.0) ** m) * math.exp(-lf[m])

    result = np.eye(m)
    result_exp = 0
    base, base_exp = H, 0
    e = n
    while e > 0:
        if e & 1:
            result = result @ base
            result_exp += base_exp
            scale = np.abs(result).max()
            if scale > 0:
                _, ex = math.frexp(scale)
                result = result / math.ldexp(1.0, ex)
                result_exp += ex
        e >>= 1
        if e:
            base = base @ base
            base_exp *= 2
            scale = np.abs(base).max()
            if scale > 0:
                _f, ex = math.frexp(scale)
                base = base / math.ldexp(1.0, ex)
                base_exp += ex
    value = result[k - 1, k - 1]
    if value <= 0:
        return 0.0
    log_p = math.log(value) + result_exp * math.log(2.0) + math.lgamma(n + 1.0) - n * math.log(n)
    return min(1.0, math.exp(log_p))


def _pelz_good_cdf(n: int, x: float) -> float:
    """Pelz–Good (1976) asymptotic series for P(Dₙ ≤ x): K₀ + K₁/√n + K₂/n + K₃/n^{3/2}."""
    z = math.sqrt(n) * x
    z2 = z * z
    if -(math.pi**2) / 8.0 / z2 < _MIN_LOG:
        return 0.0
    pi2 = math.pi**2
    maxk = math.ceil(16.0 * z / math.pi)
    k = np.arange(1, maxk + 1, dtype=np.float64)
    m2 = (2.0 * k - 1.0) ** 2
    w_odd = np.exp(-m2 * pi2 / (8.0 * z2))  # exp(−(2k−1)²π²/(8z²))
    w_int = np.exp(-(k**2) * pi2 / (2.0 * z2))  # exp(−k²π²/(2z²))
    s2pi = math.sqrt(2.0 * math.pi)

    k0 = s2pi / z * w_odd.sum()
    k1 = s2pi / (6.0 * z**4) * ((pi2 / 4.0 * m2 - z2) * w_odd).sum()
    poly2 = (
        (6.0 * z**6 + 2.0 * z**4)
        + (2.0 * z**4 - 5.0 * z2) * pi2 / 4.0 * m2
        + math.pi**4 * (1.0 - 2.0 * z2) / 16.0 * m2**2
    )
    k2 = s2pi / (72.0 * z**7) * (poly2 * w_odd).sum() - pi2 * s2pi / (36.0 * z**3) * (k**2 * w_int).sum()
    poly3 = (
        (-30.0 * z**6 - 90.0 * z**8)
        + pi2 * (135.0 * z**4 - 96.0 * z**6) / 4.0 * m2
        + math.pi**4 * (212.0 * z**4 - 60.0 * z2) / 16.0 * m2**2
        + math.pi**6 * (5.0 - 30.0 * z2) / 64.0 * m2**3
    )
    k3 = (
        s2pi / (6480.0 * z**10) * (poly3 * w_odd).sum()
        + pi2 * s2pi / (216.0 * z**6) * ((3.0 * z2 - pi2 * k**2) * k**2 * w_int).sum()
    )
    return float(k0 + k1 / math.sqrt(n) + k2 / n + k3 / n**1.5)


def kolmogorov_sf(n: int, x: float) -> float:
    """P(Dₙ ≥ x) for the two-sided one-sample KS statistic (SciPy's ``kstwo.sf``)."""
    if x >= 1.0:
        return 0.0
    if x <= 0.0:
        return 1.0
    t = n * x
    if t <= 1.0:  # Ruben–Gambino: P(Dₙ < x) = n!/nⁿ (2t − 1)ⁿ for 1/(2n) ≤ x ≤ 1/n
        if t <= 0.5:
            return 1.0
        cdf = math.exp(math.lgamma(n + 1.0) - n * math.log(n) + n * math.log(2.0 * t - 1.0))
        return _clip(1.0 - cdf)
    if t >= n - 1:
        return _clip(2.0 * (1.0 - x) ** n)
    if x >= 0.5:
        return _clip(2.0 * smirnov_sf(n, x))
    nx2 = t * x
    if n <= 140:
        if nx2 <= 4.0:
            return _clip(1.0 - _durbin_cdf(n, x))
        return _clip(2.0 * smirnov_sf(n, x))
    if nx2 >= 370.0:
        return 0.0
    if nx2 >= 2.2:
        return _clip(2.0 * smirnov_sf(n, x))
    if n <= 100_000 and n * x**1.5 <= 1.4:
        return _clip(1.0 - _durbin_cdf(n, x))
    return _clip(1.0 - _pelz_good_cdf(n, x))


def _clip(p: float) -> float:
    return min(1.0, max(0.0, p))


# ---------------------------------------------------------------- two-sample KS


MAX_EXACT_N = 10_000
"""SciPy's ``ks_2samp(method="auto")`` is exact when both samples are at most this big."""


def ks_2samp_pvalue(d: float, n1: int, n2: int) -> float:
    """Two-sided p-value of the two-sample KS statistic `d`, as ``ks_2samp`` (auto) gives it."""
    if min(n1, n2) <= 0:
        raise ValueError("KS needs two non-empty samples")
    if max(n1, n2) <= MAX_EXACT_N:
        return _exact_two_sample_sf(d, n1, n2)
    m, n = max(n1, n2), min(n1, n2)
    en = m * n / (m + n)
    return kolmogorov_sf(round(en), d)


def _exact_two_sample_sf(d: float, n1: int, n2: int) -> float:
    """P(D_{n1,n2} ≥ d) under H₀, exactly.

    d is snapped to the lattice first: with g = gcd and L = lcm of the sizes, the
    statistic is h/L for an integer h, and a path from (0,0) to (m,n) "exits" once
    |n·x − m·y|/g ≥ h.
    """
    g = math.gcd(n1, n2)
    lcm = (n1 // g) * n2
    h = round(d * lcm)
    if h == 0:
        return 1.0
    if n1 == n2:
        return _clip(_equal_sizes_sf(n1, h))
    return _clip(_lattice_exit_probability(n1, n2, g, h))


def _equal_sizes_sf(n: int, h: int) -> float:
    """P(D_{n,n} ≥ h/n) = 2 Σ_{k≥1} (−1)^{k−1} C(2n, n−kh)/C(2n, n), in Horner form.

    r_k = C(2n, n−kh)/C(2n, n−(k−1)h) = Π_{j<h} (n−(k−1)h−j)/(n+(k−1)h+j+1), and
    P = 2·r₁(1 − r₂(1 − r₃(1 − …))) avoids the alternating sum's cancellation.
    """
    kmax = n // h
    kk = np.arange(kmax, dtype=np.float64)[:, None]  # k − 1
    j = np.arange(h, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore"):
        log_r = np.log((n - kk * h - j) / (n + kk * h + j + 1.0)).sum(axis=1)
    r = np.exp(log_r)
    total = 0.0
    for rk in r[::-1]:
        total = rk * (1.0 - total)
    return 2.0 * total


def _lattice_exit_probability(n1: int, n2: int, g: int, h: int) -> float:
    """Share of monotone lattice paths (0,0)→(m,n) that touch |ng·x − mg·y| ≥ h.

    E(x, y), the number of such paths ending at (x, y), is C(x+y, y) on or outside
    the band and E(x−1, y) + E(x, y−1) inside it; one column of the band is a running
    sum of the previous one, done with ``np.logaddexp.accumulate`` on log-counts.
    """
    m, n = max(n1, n2), min(n1, n2)
    mg, ng = m // g, n // g
    lf = _log_factorials(m + n)

    def log_binom_col(i: int, ys: np.ndarray) -> np.ndarray:
        return lf[i + ys] - lf[i] - lf[ys]

    def window(i: int) -> tuple[int, int]:
        lo = max((ng * i - h) // mg + 1, 0)
        hi = min(-((-(ng * i + h)) // mg), n + 1)  # ceil, exclusive
        return min(lo, n), hi

    # Column 0: y inside while mg·y < h; those points have no exiting path.
    lo, hi = 0, min(-((-h) // mg), n + 1)
    col = np.full(hi - lo, -np.inf)
    for i in range(1, m + 1):
        new_lo, new_hi = window(i)
        if new_hi <= new_lo:
            return 1.0
        ys = np.arange(new_lo, new_hi)
        # E(i−1, y): stored when y was inside the previous window, else all paths.
        prev = log_binom_col(i - 1, ys)
        inside = (ys >= lo) & (ys < hi)
        prev[inside] = col[ys[inside] - lo]
        start = log_binom_col(i, np.array([new_lo - 1]))[0] if new_lo > 0 else -np.inf
        acc = np.logaddexp.accumulate(np.concatenate(([start], prev)))
        col = acc[1:]
        lo, hi = new_lo, new_hi
    log_exit = col[n - lo]
    if log_exit == -np.inf:
        return 0.0
    return math.exp(log_exit - (lf[m + n] - lf[m] - lf[n]))
