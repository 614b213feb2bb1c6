"""CloudWatch statistics over weighted samples.

A *sample* is ``(value, weight)``: the weight is how many times the value occurred
(``PutMetricData`` ``Values`` + ``Counts``; a plain ``Value`` has weight 1).  Statistic sets
(``StatisticValues``) are not samples: AWS needs the raw values for every statistic in this
module except the five basic ones, so callers must leave them out (see
:func:`statistic_set_as_sample` for the two degenerate cases AWS does accept).

Every rule below is taken from the AWS user guide page "CloudWatch statistics definitions"
(``Statistics-definitions.html``, quoted as [SD]) and the ``GetMetricStatistics`` /
``PutMetricAlarm`` API references ([API]).  Where the documentation is silent the choice made
is stated as such.

Definitions, with N the total weight of a group and x_1 <= … <= x_N the values expanded by
weight (integer weights; non-integer weights use the same formulas on the cumulative-weight
axis, see ``_window``):

* **Percentile pP** — nearest rank, no interpolation: ``x_k`` with ``k = max(1, ceil(P/100·N))``.
  [SD]: "p95 … means that 95 percent of the data within the period is lower than this value and
  5 percent of the data is higher than this value", and (section "Percentiles versus trimmed
  mean") "Both p99 and tm99 ignore the 1% of the data points with the highest values … After
  that, p99 is the maximum value of the remaining 99%, while tm99 is the average of the
  remaining 99%".  The answer is therefore always one of the data values (no interpolation),
  and ``pP`` is exactly the largest value that ``TM(:P%)`` keeps.  ``p0`` is the minimum,
  ``p100`` the maximum.

* **Percentage bounds** (``TM(a%:b%)``, ``tmB`` = ``TM(:B%)``, ``IQM`` = ``TM(25%:75%)``, and the
  same for WM/TC/TS) select by *rank*: the ``floor(a/100·N)`` lowest and the
  ``N - ceil(b/100·N)`` highest data points are removed, i.e. ranks
  ``floor(a/100·N) < r <= ceil(b/100·N)`` are kept.
  [SD]: "tm90 calculates the average after removing the 10% of data points with the highest
  values. TM(2%:98%) calculates the average after removing the 2% lowest data points and the 2%
  highest data points"; "TM(10%:90%) uses only the values between the 10th and 90th
  percentiles"; "tm99 … is the same as TM(:99%)".  The page does not say how a fractional number
  of data points is rounded; the count removed at each end is rounded *down* (a data point is
  only dropped when it lies wholly inside the trimmed fraction).  This is the rounding that makes
  the largest kept value equal ``pB`` as the "Percentiles versus trimmed mean" section requires,
  and it is applied symmetrically at the low end.  Ties are split by rank (removing "the 10% of
  data points" removes data points, not every copy of a value).

* **Absolute bounds** (``TM(150:1000)``, ``PR(:300)`` …) select by *value*: ``a < x <= b``.
  [SD]: "TM(150:1000) calculates the average after removing all data points that are lower
  than or equal to 150, or higher than 1000"; "TC(80:500) uses only the values that are between
  80 (exclusive) and 500 (inclusive). TC(:0.5) uses only the values that equal 0.5 or are
  lower"; Note: "if you define two boundaries as fixed values instead of percentages, the
  calculation includes values equal to the higher boundary, but does not include values equal to
  the lower boundary"; and for PR the current page adds that percentile rank is exclusive on
  the lower bound and inclusive on the upper bound (seen in the ja_jp edition: "パーセンタイル
  ランクは下限には含まれず、上限には含まれます"); its examples: "PR(:300) returns the percentage of
  data points that have a value of 300 or less".

* **TM** = mean of the kept data points; undefined (``None``) when none is kept.
* **TC** = number of kept data points ("the number of data points in the chosen range for a
  trimmed mean statistic") — ``0.0`` when none is kept.
* **TS** = sum of the kept values ("equivalent to (Trimmed Mean) * (Trimmed count)") — ``0.0``
  when none is kept (an empty sum; the documentation is silent on this case).
* **WM** = mean over *all* N data points after replacing the ones outside the bounds: [SD] "the
  values that are outside the boundary are not ignored, but instead are considered to be equal
  to the value at the edge of the appropriate boundary … wm98 calculates the average while
  treating the 2% of the highest values to be equal to the value at the 98th percentile".  With
  percentage bounds the removed low/high ranks take the smallest/largest *kept* value (the
  largest kept value is ``pB``, as quoted); with absolute bounds the edge of the boundary is the
  bound itself, i.e. values are clipped to ``[a, b]``.  Undefined when a percentage window keeps
  nothing.
* **PR** = ``100 · (weight with a < x <= b) / N`` — a percentage 0‥100 ("the percentage of
  values that meet a fixed threshold").  Absolute bounds only ([API] PutMetricAlarm: "PR(n:m)
  where n and m are values of the metric"; [SD] only shows absolute PR bounds).
* **IQM** = ``TM(25%:75%)`` ([SD]: "It is equivalent to TM(25%:75%)").

Not handled here (callers' business): AWS does not report these statistics "for metrics when
any of the metric values are negative numbers" [SD]/[API]; ``ExtendedStatistics`` holds 1‥10
names [API]; PutMetricAlarm only allows ``X%`` between 10 and 90 in ``TM(X%:X%)`` etc. [API].
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

__all__ = ["ExtStat", "KINDS", "parse_extended_statistic", "compute", "compute_grouped",
           "compute_grouped_many", "basic", "statistic_set_as_sample"]

KINDS = ("p", "TM", "WM", "TC", "TS", "PR", "IQM")


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExtStat:
    """A parsed extended statistic.

    ``kind``: one of :data:`KINDS`.  ``lower``/``upper``: the bounds as numbers (percent values
    0‥100 when ``*_is_pct``, metric values otherwise), ``None`` when open.  A percentile ``pP``
    is stored as ``upper=P`` (it is the largest value ``TM(:P%)`` keeps); ``IQM`` as 25/75.
    Mixing a percentage and an absolute bound is rejected, so the two flags are always equal;
    an open bound carries the flag of the statistic's mode.  ``name`` is the statistic exactly
    as the caller wrote it — AWS echoes it as the key of ``ExtendedStatistics`` in datapoints.

    ``lower_exact``/``upper_exact`` hold the bounds as exact fractions (parsed from the decimal
    text) so that rank cut-offs such as ``ceil(99.9/100 · 1000)`` are computed without
    floating-point error; they are derived from ``lower``/``upper`` when not given.
    """

    kind: str
    lower: float | None
    upper: float | None
    lower_is_pct: bool
    upper_is_pct: bool
    name: str
    lower_exact: Fraction | None = field(default=None, repr=False, compare=False)
    upper_exact: Fraction | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown statistic kind {self.kind!r}")
        if self.lower is not None and self.lower_exact is None:
            object.__setattr__(self, "lower_exact", Fraction(repr(float(self.lower))))
        if self.upper is not None and self.upper_exact is None:
            object.__setattr__(self, "upper_exact", Fraction(repr(float(self.upper))))

    @property
    def is_pct(self) -> bool:
        return self.lower_is_pct or self.upper_is_pct


# [API] (old concepts page): "You can specify any percentile, using up to two decimal places
# (for example, p95.45)"; GetMetricStatistics: "Specify values between p0.0 and p100".
_P_RE = re.compile(r"p(\d{1,3}(?:\.\d{1,2})?)")
# [SD]: TM/WM bounds are "one or two numbers between 0 and 100, up to 10 decimal places";
# "They can only be abbreviated using lowercase letters when you specifying only one number,
# such as tm99" …
_SHORT_RE = re.compile(r"(tm|wm|tc|ts)(\d{1,3}(?:\.\d{1,10})?)")
# … "can all be abbreviated using uppercase letters when specifying a range, such as
# TM(5%:95%), TM(100:200), or TM(:95%)".
_NUM = r"\d+(?:\.\d{1,10})?%?"
_RANGE_RE = re.compile(rf"(TM|WM|TC|TS|PR)\(({_NUM})?:({_NUM})?\)")

_HUNDRED = Fraction(100)


def _bad(name: str, param: str) -> ValueError:
    return ValueError(
        f"The value {name} for parameter {param} is not a valid percentile/statistic.")


def parse_extended_statistic(name: str, param: str = "ExtendedStatistics") -> ExtStat:
    """Parse an extended statistic name the way AWS accepts it.

    Accepted (case-sensitive, as [SD] "Syntax" prescribes):

    * ``pN`` — N in 0‥100 with at most two decimals (``p99``, ``p99.9``, ``p0.0``, ``p100``);
    * ``tmN``/``wmN``/``tcN``/``tsN`` (lowercase only) — same as ``TM(:N%)``, N in 0‥100 with up
      to 10 decimals;
    * ``TM(a:b)``, ``WM``, ``TC``, ``TS`` (uppercase only) with one or two bounds, either both
      percentages (``TM(10%:90%)``, ``TM(:95%)``, ``TM(5%:)``, each 0‥100) or both absolute
      values (``TM(100:2000)``); up to 10 decimals;
    * ``PR(a:b)`` — absolute bounds only (``PR(:300)``, ``PR(100:2000)``, ``PR(5:)``);
    * ``IQM``.

    A lower bound greater than the upper bound is rejected (the documentation does not say
    what AWS does; such a range could never select anything).  Negative bounds and exponent
    notation are rejected.  Raises :class:`ValueError` whose message is suitable for an
    ``InvalidParameterValue`` answer; ``param`` names the request parameter in that message.
    """
    if not isinstance(name, str):
        raise _bad(str(name), param)
    if name == "IQM":
        return ExtStat("IQM", 25.0, 75.0, True, True, name, Fraction(25), Fraction(75))
    m = _P_RE.fullmatch(name)
    if m:
        q = Fraction(m.group(1))
        if q > _HUNDRED:
            raise _bad(name, param)
        return ExtStat("p", None, float(q), True, True, name, None, q)
    m = _SHORT_RE.fullmatch(name)
    if m:
        q = Fraction(m.group(2))
        if q > _HUNDRED:
            raise _bad(name, param)
        return ExtStat(m.group(1).upper(), None, float(q), True, True, name, None, q)
    m = _RANGE_RE.fullmatch(name)
    if not m:
        raise _bad(name, param)
    kind, lo_s, hi_s = m.groups()
    if lo_s is None and hi_s is None:
        raise _bad(name, param)
    pcts = {s.endswith("%") for s in (lo_s, hi_s) if s is not None}
    if len(pcts) != 1:  # "TM(10%:500)": one percentage, one value
        raise _bad(name, param)
    pct = pcts.pop()
    if pct and kind == "PR":
        raise _bad(name, param)
    lo = Fraction(lo_s.rstrip("%")) if lo_s is not None else None
    hi = Fraction(hi_s.rstrip("%")) if hi_s is not None else None
    if pct and any(b is not None and b > _HUNDRED for b in (lo, hi)):
        raise _bad(name, param)
    if lo is not None and hi is not None and lo > hi:
        raise _bad(name, param)
    return ExtStat(kind, None if lo is None else float(lo), None if hi is None else float(hi),
                   pct, pct, name, lo, hi)


# --------------------------------------------------------------------------------------------
# Basic statistics and statistic sets
# --------------------------------------------------------------------------------------------

def basic(values, weights=None) -> dict:
    """SampleCount, Sum, Average, Minimum, Maximum of weighted samples ([SD] first five bullets).

    ``SampleCount`` is the total weight.  With no samples: SampleCount and Sum are 0.0 and the
    others ``None``.
    """
    v = np.asarray(values, dtype=np.float64)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=np.float64)
    if v.shape != w.shape:
        raise ValueError("values and weights must have the same length")
    if v.size == 0:
        return {"SampleCount": 0.0, "Sum": 0.0, "Average": None, "Minimum": None,
                "Maximum": None}
    n = float(w.sum())
    s = float(np.dot(v, w))
    return {"SampleCount": n, "Sum": s, "Average": s / n if n else None,
            "Minimum": float(v.min()), "Maximum": float(v.max())}


def statistic_set_as_sample(sample_count: float, total: float, minimum: float,
                            maximum: float) -> tuple[float, float] | None:
    """The ``(value, weight)`` a statistic set stands for, when AWS treats it as raw data.

    [SD] "Requirements to use percentiles…": statistic-set data can be used for these
    statistics only if "The SampleCount value of the statistic set is 1 and Min, Max, and Sum
    are all equal" or "The Min and Max are equal, and Sum is equal to Min multiplied by
    SampleCount".  Both mean ``SampleCount`` copies of ``Min``.  Otherwise ``None``.
    """
    if sample_count <= 0 or minimum != maximum:
        return None
    if sample_count == 1 and total == minimum:
        return float(minimum), 1.0
    if math.isclose(total, minimum * sample_count, rel_tol=1e-12, abs_tol=0.0) or \
            total == minimum * sample_count:
        return float(minimum), float(sample_count)
    return None


# --------------------------------------------------------------------------------------------
# Extended statistics
# --------------------------------------------------------------------------------------------

def _scaled(frac: Fraction, total: np.ndarray, ceil: bool) -> np.ndarray:
    """floor / ceil of ``frac · total`` per group, exactly.

    ``frac`` is an exact fraction (e.g. 999/1000 for 99.9%).  Integral totals (the normal case:
    integer counts) use Python integers, so ``ceil(0.29 · 100)`` is 29, never 30; other totals
    go through :class:`Fraction` of their (exact) binary value.
    """
    num, den = frac.numerator, frac.denominator
    out = np.empty(total.shape, dtype=np.float64)
    if den == 1:
        np.multiply(total, num, out=out)
        return np.ceil(out) if ceil else np.floor(out)
    ti = np.rint(total)
    integral = (ti == total) & (np.abs(total) < 2.0 ** 53)
    if integral.any():
        prod = ti[integral].astype(np.int64).astype(object) * num
        res = -((-prod) // den) if ceil else prod // den
        out[integral] = res.astype(np.float64)
    for j in np.flatnonzero(~integral):
        x = Fraction(float(total[j])) * frac
        out[j] = math.ceil(x) if ceil else math.floor(x)
    return out


def _window(stat: ExtStat, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank window ``(L, U]`` on the cumulative-weight axis for percentage bounds.

    ``L = floor(lower% · N)`` data points are cut at the bottom, everything past
    ``U = ceil(upper% · N)`` at the top (see the module docstring).  For integer weights these
    are whole ranks; for non-integer weights a sample straddling L or U contributes the part of
    its weight inside the window.
    """
    lo = np.zeros_like(total) if stat.lower_exact is None else \
        _scaled(stat.lower_exact / 100, total, ceil=False)
    hi = total.copy() if stat.upper_exact is None else \
        np.minimum(_scaled(stat.upper_exact / 100, total, ceil=True), total)
    return lo, hi


class _Groups:
    """Samples split into groups, computed once and shared by several statistics.

    ``gi`` maps each sample to a dense group index ``0..ng-1`` (``uniq[gi]`` is its id).  The
    value-sorted view (``sorted()``) is built on first use by a rank-based statistic: one
    ``argsort`` of the values followed by a stable (radix, for < 65536 groups) ``argsort`` of the
    group index — much cheaper than a two-key ``lexsort``.
    """

    def __init__(self, group_ids, values, weights):
        v = np.asarray(values, dtype=np.float64).ravel()
        w = np.ones_like(v) if weights is None else \
            np.asarray(weights, dtype=np.float64).ravel()
        g = np.asarray(group_ids).ravel()
        if not (v.shape == w.shape == g.shape):
            raise ValueError("group_ids, values and weights must have the same length")
        if v.size and not (w > 0).all():   # a zero count is no occurrence at all
            keep = w > 0
            g, v, w = g[keep], v[keep], w[keep]
        self.v, self.w = v, w
        self.n = v.size
        if self.n == 0:
            self.uniq = np.empty(0, dtype=np.int64)
            self.gi = np.empty(0, dtype=np.intp)
        else:
            g = g.astype(np.int64, copy=False)
            gmin, gmax = int(g.min()), int(g.max())
            if gmax - gmin <= 2 * self.n + 1024:   # dense id range: a lookup table, no sort
                off = g - gmin
                present = np.zeros(gmax - gmin + 1, dtype=bool)
                present[off] = True
                dense = np.cumsum(present) - 1
                self.gi = dense[off]
                self.uniq = np.flatnonzero(present).astype(np.int64) + gmin
            else:
                self.uniq, self.gi = np.unique(g, return_inverse=True)
                self.gi = self.gi.ravel()
        self.ng = len(self.uniq)
        self._total = None
        self._sorted = None

    @property
    def total(self) -> np.ndarray:
        if self._total is None:
            self._total = np.bincount(self.gi, weights=self.w, minlength=self.ng)
        return self._total

    def sorted(self):
        """(v, w, gi, starts, last, cum, total) ordered by (group, value)."""
        if self._sorted is None:
            o = np.argsort(self.v)
            gk = self.gi.astype(np.uint16) if self.ng < 65536 else self.gi
            order = o[np.argsort(gk[o], kind="stable")]
            v, w, gi = self.v[order], self.w[order], self.gi[order]
            counts = np.bincount(gi, minlength=self.ng)
            last = np.cumsum(counts) - 1
            starts = last - counts + 1
            cw = np.cumsum(w)
            base = cw[starts] - w[starts]
            cum = cw - base[gi]          # weight up to and including this sample, in its group
            total = cum[last]
            self._sorted = (v, w, gi, starts, last, cum, total)
        return self._sorted

    def compute(self, stat: ExtStat) -> np.ndarray:
        """The statistic per group (aligned with ``uniq``), NaN where undefined."""
        if self.ng == 0:
            return np.empty(0)
        if stat.kind != "p" and not stat.is_pct:
            return self._by_value(stat)
        return self._by_rank(stat)

    def _by_value(self, stat: ExtStat) -> np.ndarray:
        # Absolute bounds: keep a < x <= b ([SD] Note; "exclusive ... inclusive").
        v, w, gi, ng = self.v, self.w, self.gi, self.ng
        a, b = stat.lower, stat.upper
        total = self.total
        if stat.kind == "WM":
            lo = -np.inf if a is None else a
            hi = np.inf if b is None else b
            return np.bincount(gi, weights=np.clip(v, lo, hi) * w, minlength=ng) / total
        keep = np.ones(v.shape, dtype=bool)
        if a is not None:
            keep &= v > a
        if b is not None:
            keep &= v <= b
        kw = np.where(keep, w, 0.0)
        mass = np.bincount(gi, weights=kw, minlength=ng)
        if stat.kind == "PR":
            return 100.0 * mass / total
        if stat.kind == "TC":
            return mass
        ksum = np.bincount(gi, weights=kw * v, minlength=ng)
        if stat.kind == "TS":
            return ksum
        return np.where(mass > 0, ksum / np.where(mass > 0, mass, 1.0), np.nan)

    def _by_rank(self, stat: ExtStat) -> np.ndarray:
        v, w, gi, starts, last, cum, total = self.sorted()
        ng = self.ng

        def first_where(count_before: np.ndarray) -> np.ndarray:
            """Value of the sample ``count_before`` places into each group (clamped)."""
            return v[np.minimum(starts + count_before.astype(np.int64), last)]

        if stat.kind == "p":
            # Nearest rank: the first sample whose cumulative weight reaches ceil(P/100 · N).
            k = _scaled(stat.upper_exact / 100, total, ceil=True)
            return first_where(np.bincount(gi, weights=cum < k[gi], minlength=ng))

        lo, hi = _window(stat, total)
        cprev = cum - w
        kept = np.clip(np.minimum(cum, hi[gi]) - np.maximum(cprev, lo[gi]), 0.0, None)
        mass = np.bincount(gi, weights=kept, minlength=ng)
        if stat.kind == "TC":
            return mass
        ksum = np.bincount(gi, weights=kept * v, minlength=ng)
        if stat.kind == "TS":
            return ksum
        nonempty = hi > lo
        if stat.kind == "WM":
            # Removed low ranks take the smallest kept value (the first sample extending past
            # L); removed high ranks the largest kept value (the first sample reaching U), which
            # is p(upper) — "equal to the value at the 98th percentile" for wm98.
            v_lo = first_where(np.bincount(gi, weights=cum <= lo[gi], minlength=ng))
            v_hi = first_where(np.bincount(gi, weights=cum < hi[gi], minlength=ng))
            ksum = ksum + lo * v_lo + (total - hi) * v_hi
            mass = total
        return np.where(nonempty, ksum / np.where(mass > 0, mass, 1.0), np.nan)


def _as_dict(uniq: np.ndarray, res: np.ndarray) -> dict[int, float]:
    ok = ~np.isnan(res)
    return dict(zip(uniq[ok].tolist(), res[ok].tolist()))


def compute_grouped(stat: ExtStat, group_ids, values, weights) -> dict[int, float]:
    """``stat`` for every group of samples: ``{group id: value}``.

    ``group_ids`` (int64, any order), ``values`` (float64) and ``weights`` (float64 > 0; ``None``
    means 1; samples with weight <= 0 are ignored) have the same length.  Groups where the statistic is undefined (TM/WM/IQM whose
    range keeps no data point) are left out of the result; groups with no samples are never
    present.  Rank-based statistics sort once (argsort of the values + radix sort of the group
    index); value-threshold ones (absolute bounds, PR) do not sort at all.  No Python loop per
    sample or per group.
    """
    grp = _Groups(group_ids, values, weights)
    return _as_dict(grp.uniq, grp.compute(stat))


def compute_grouped_many(stats, group_ids, values, weights) -> dict[str, dict[int, float]]:
    """Several statistics over the same grouped samples, sorting only once.

    Returns ``{stat.name: compute_grouped(stat, …)}``.
    """
    grp = _Groups(group_ids, values, weights)
    return {s.name: _as_dict(grp.uniq, grp.compute(s)) for s in stats}


def compute(stat: ExtStat, values, weights=None) -> float | None:
    """``stat`` over one group of samples (unsorted), or ``None`` when undefined.

    Undefined: no samples at all (every kind), or a TM/WM/IQM range that keeps no data point.
    TC and TS of an empty range are 0.0; PR of a non-empty group is always defined.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    grp = _Groups(np.zeros(v.shape, dtype=np.int64), v, weights)
    if grp.n == 0:
        return None
    r = float(grp.compute(stat)[0])
    return None if math.isnan(r) else r
