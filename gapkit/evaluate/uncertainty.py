"""Can a predicted band-gap uncertainty be trusted? Laplace intervals, calibration, recalibration, conformal.

The network's second output S gives one quantity, the Laplace scale ``b = exp(S)/2 * target_std`` in eV
(``gapkit.train.losses.laplace_scale``, derived there from the loss). A Laplace(mu, b) puts a fraction
``1 - exp(-t/b)`` of its mass within ``|e| <= t`` of mu, so its central p-interval is
``mu +- b*(-ln(1-p))``: b is the expected |error|, the 90 % half-width is ``ln(10)*b = 2.30 b``.

The metrics follow uncertainty-toolbox's definitions (computed here: that package is unmaintained since 2023):

* ``calibration_curve`` -- observed vs expected coverage of central intervals; ``miscalibration_area`` is the
  mean |observed - expected| over an evenly spaced grid of levels (the area between the curve and the diagonal);
* ``sharpness`` -- mean width of the p-intervals; ``nll`` -- mean Laplace negative log-likelihood (eV units);
* ``spearman`` -- rank correlation of predicted scale with |error| (report it on nonzero gaps: metals,
  easy zeros, inflate it);
* ``confidence_curve`` -- MAE of the materials kept as the least confident are removed, against the oracle
  that removes the largest true errors first;
* ``recalibration_factor`` -- one factor c for all scales (``b -> c*b``), fitted on validation by minimising the
  miscalibration area;
* ``conformal_halfwidth`` -- split-conformal intervals from validation residuals, plain (``|e|``) or scaled
  (normalised score ``|e|/b``), with the finite-sample quantile ``ceil((n+1)p)/n``.

Why not MAPIE: its ``SplitConformalRegressor`` wraps an unfitted or prefit scikit-learn regressor and calls its
``predict``; our estimators return a DataFrame (gap and scale), featurise structures on every call, and for the
scaled score one needs the scale beside the point prediction. The split-conformal quantile is a dozen lines
(below), tested for coverage on exchangeable data.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path


import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.stats import spearmanr

from gapkit.train.losses import laplace_nll_ev, laplace_scale  # noqa: F401 - the one S -> b conversion

logger = logging.getLogger(__name__)

LEVELS = np.linspace(0.01, 0.99, 99)  # the calibration grid (miscalibration area is a mean over it)
REPORT_LEVELS = (0.68, 0.90, 0.95)
METHODS = ("laplace", "recalibrated", "conformal", "conformal_scaled")


# ---------------------------------------------------------------------------------------------- intervals
def _check(errors: np.ndarray, scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    errors = np.abs(np.asarray(errors, float))
    if scale is None:
        return errors, None
    scale = np.asarray(scale, float)
    if errors.shape != scale.shape:
        raise ValueError(f"errors {errors.shape} and scale {scale.shape} differ in shape.")
    if not (scale > 0).all():
        raise ValueError("scales must be positive (and not NaN): pass the uncertainty_ev column of predict().")
    return errors, scale


def laplace_halfwidth(scale: np.ndarray, level: float) -> np.ndarray:
    """Half-width ``-b*ln(1-p)`` of the central p-interval of Laplace(mu, b)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    return np.asarray(scale, float) * -np.log1p(-level)


def laplace_interval(gap_ev: np.ndarray, scale: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of the central Laplace p-interval; the lower end is clipped at 0 eV (a gap is >= 0)."""
    half = laplace_halfwidth(scale, level)
    gap = np.asarray(gap_ev, float)
    return np.clip(gap - half, 0.0, None), gap + half


# ---------------------------------------------------------------------------------------------- metrics
def calibration_curve(errors: np.ndarray, scale: np.ndarray, levels: Sequence[float] | None = None) -> pd.DataFrame:
    """Observed fraction of |errors| inside each central Laplace p-interval, for p in ``levels``."""
    errors, scale = _check(errors, scale)
    levels = LEVELS if levels is None else np.asarray(levels, float)
    observed = [(errors <= laplace_halfwidth(scale, p)).mean() for p in levels]
    return pd.DataFrame({"expected": levels, "observed": observed})


def interval_coverage(errors: np.ndarray, scale: np.ndarray, levels: Sequence[float] | None = None) -> pd.DataFrame:
    """Calibration curve on a coarser default grid (0.05..0.95); kept for earlier callers."""
    return calibration_curve(errors, scale, np.linspace(0.05, 0.95, 19) if levels is None else levels)


def miscalibration_area(coverage: pd.DataFrame) -> float:
    """Mean |observed - expected| over the levels of a calibration curve: 0 is perfect calibration."""
    return float(np.mean(np.abs(coverage["observed"] - coverage["expected"])))


def coverage(errors: np.ndarray, halfwidth: np.ndarray | float) -> float:
    """Fraction of |errors| within the half-widths."""
    errors = np.abs(np.asarray(errors, float))
    return float((errors <= np.broadcast_to(np.asarray(halfwidth, float), errors.shape)).mean())


def sharpness(halfwidth: np.ndarray | float, n: int | None = None) -> float:
    """Mean full width (eV) of intervals with these half-widths."""
    half = np.asarray(halfwidth, float)
    return float(2 * half.mean())


def nll(errors: np.ndarray, scale: np.ndarray) -> float:
    """Mean Laplace negative log-likelihood ``log(2b) + |e|/b`` (eV units; lower is better)."""
    errors, scale = _check(errors, scale)
    return laplace_nll_ev(errors, scale)


def spearman(errors: np.ndarray, scale: np.ndarray, targets: np.ndarray | None = None) -> float:
    """Spearman(scale, |error|); with ``targets`` only on rows with a nonzero true gap."""
    errors, scale = _check(errors, scale)
    if targets is not None:
        keep = np.asarray(targets, float) > 0
        errors, scale = errors[keep], scale[keep]
    return float(spearmanr(scale, errors).statistic)


def error_uncertainty_spearman(errors: np.ndarray, scale: np.ndarray) -> float:
    """Rank correlation between |error| and predicted scale: do larger uncertainties flag larger errors?"""
    return spearman(errors, scale)


def mae_by_uncertainty_bin(errors: np.ndarray, scale: np.ndarray, n_bins: int = 5) -> pd.DataFrame:
    """MAE within quantile bins of the predicted scale (a calibrated model's MAE grows bin by bin)."""
    frame = pd.DataFrame({"abs_error": np.abs(errors), "scale": scale})
    frame["bin"] = pd.qcut(frame["scale"].rank(method="first"), n_bins, labels=False)
    return frame.groupby("bin").agg(mean_scale=("scale", "mean"), mae=("abs_error", "mean"),
                                    n=("abs_error", "size"))


def confidence_curve(errors: np.ndarray, scale: np.ndarray, n_points: int = 50) -> pd.DataFrame:
    """MAE of the kept materials as the least confident (largest scale) are removed, and the oracle's."""
    errors, scale = _check(errors, scale)
    n = len(errors)
    by_scale = errors[np.argsort(-scale, kind="stable")]
    by_error = np.sort(errors)[::-1]
    fractions = np.linspace(0.0, 0.95, n_points)
    rows = []
    for f in fractions:
        k = int(round(f * n))
        rows.append({"fraction_removed": f, "mae_ev": by_scale[k:].mean(), "oracle_mae_ev": by_error[k:].mean()})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- recalibration
def recalibration_factor(errors: np.ndarray, scale: np.ndarray, levels: Sequence[float] | None = None) -> float:
    """One factor c (``b -> c*b``) minimising the miscalibration area on these (validation) errors."""
    errors, scale = _check(errors, scale)
    ratio = np.sort(errors / scale)
    levels = LEVELS if levels is None else np.asarray(levels, float)
    unit = -np.log1p(-levels)  # half-widths of Laplace(0, 1)

    def area(log_c: float) -> float:  # = miscalibration_area(calibration_curve(errors, c*scale, levels))
        observed = np.searchsorted(ratio, np.exp(log_c) * unit, side="right") / len(ratio)
        return float(np.mean(np.abs(observed - levels)))

    # the area is piecewise constant in c: a bracketed search, then a grid polish around its answer
    res = minimize_scalar(area, bounds=(-5.0, 5.0), method="bounded", options={"xatol": 1e-4})
    grid = res.x + np.linspace(-0.3, 0.3, 121)
    best = min([res.x, 0.0, *grid], key=area)  # 0.0: c = 1 is a candidate, so recalibration never hurts
    return float(np.exp(best))


# ---------------------------------------------------------------------------------------------- conformal
def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split-conformal quantile: the ceil((n+1)p)-th smallest calibration score (inf when n is too small)."""
    scores = np.sort(np.asarray(scores, float))
    n = len(scores)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    k = int(np.ceil((n + 1) * level))
    return float(np.inf) if k > n else float(scores[k - 1])


def conformal_halfwidth(val_errors: np.ndarray, level: float, val_scale: np.ndarray | None = None,
                        scale: np.ndarray | None = None) -> np.ndarray | float:
    """Conformal half-width: plain ``q(|e|)``, or scaled ``q(|e|/b_val) * b`` when the scales are given."""
    if (val_scale is None) != (scale is None):
        raise ValueError("Scaled conformal needs both val_scale (calibration) and scale (the new rows).")
    val_errors, val_scale = _check(val_errors, val_scale)
    if val_scale is None:
        return conformal_quantile(val_errors, level)
    return conformal_quantile(val_errors / val_scale, level) * np.asarray(scale, float)


# ---------------------------------------------------------------------------------------------- one table
def method_halfwidths(method: str, level: float, scale: np.ndarray, val_errors: np.ndarray,
                      val_scale: np.ndarray, factor: float | None = None) -> np.ndarray:
    """Test half-widths of one method at one level, calibrated on the validation errors/scales."""
    scale = np.asarray(scale, float)
    if method == "laplace":
        return laplace_halfwidth(scale, level)
    if method == "recalibrated":
        c = recalibration_factor(val_errors, val_scale) if factor is None else factor
        return laplace_halfwidth(c * scale, level)
    if method == "conformal":
        return np.full_like(scale, conformal_halfwidth(val_errors, level))
    if method == "conformal_scaled":
        return conformal_halfwidth(val_errors, level, val_scale, scale)
    raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")


def method_scales(method: str, scale: np.ndarray, val_errors: np.ndarray, val_scale: np.ndarray,
                  factor: float | None = None) -> np.ndarray:
    """The Laplace scale each method implies (for its NLL and calibration curve).

    laplace: b; recalibrated: c*b; conformal: the constant b0 = mean validation |e| (the MLE of one Laplace
    scale); conformal_scaled: b times the MLE of one factor, mean(|e|/b) on validation.
    """
    scale = np.asarray(scale, float)
    val_errors, val_scale = _check(val_errors, val_scale)
    if method == "laplace":
        return scale
    if method == "recalibrated":
        return (recalibration_factor(val_errors, val_scale) if factor is None else factor) * scale
    if method == "conformal":
        return np.full_like(scale, val_errors.mean())
    if method == "conformal_scaled":
        return scale * float(np.mean(val_errors / val_scale))
    raise ValueError(f"Unknown method {method!r}; choose from {METHODS}.")


def evaluate_methods(val: pd.DataFrame, test: pd.DataFrame, methods: Sequence[str] = METHODS,
                     levels: Sequence[float] = REPORT_LEVELS) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Coverage and width per method and level on ``test``, calibrated on ``val``; and the headline metrics.

    ``val`` and ``test`` have columns ``target_ev``, ``gap_ev`` (prediction) and ``uncertainty_ev`` (b).
    Returns (long table: method, level, coverage, width_ev; {method: {coverage_90, width_90_ev,
    miscalibration_area, nll, spearman_nonzero}}).
    """
    val_e = (val["gap_ev"] - val["target_ev"]).to_numpy(float)
    val_b = val["uncertainty_ev"].to_numpy(float)
    err = (test["gap_ev"] - test["target_ev"]).to_numpy(float)
    b = test["uncertainty_ev"].to_numpy(float)
    factor = recalibration_factor(val_e, val_b)
    rows, headline = [], {}
    for method in methods:
        for level in levels:
            half = method_halfwidths(method, level, b, val_e, val_b, factor)
            rows.append({"method": method, "level": level, "coverage": coverage(err, half),
                         "width_ev": sharpness(half)})
        scales = method_scales(method, b, val_e, val_b, factor)
        half90 = method_halfwidths(method, 0.9, b, val_e, val_b, factor)
        headline[method] = {
            "coverage_90": round(coverage(err, half90), 4),
            "width_90_ev": round(sharpness(half90), 4),
            "miscalibration_area": round(miscalibration_area(calibration_curve(err, scales)), 4),
            "nll": round(nll(err, scales), 4),
            # the ranking a method gives: constant widths rank nothing
            "spearman_nonzero": (None if method == "conformal"
                                 else round(spearman(err, scales, test["target_ev"].to_numpy(float)), 4)),
        }
    headline["recalibration_factor"] = round(factor, 4)  # type: ignore[assignment]
    return pd.DataFrame(rows), headline


def headline_metrics(predictions: dict[str, dict[str, pd.DataFrame]],
                     methods: Sequence[str] = METHODS) -> dict[str, dict[str, dict[str, float | None]]]:
    """``{model: {method: {coverage_90, width_90_ev, miscalibration_area, nll, spearman_nonzero}}}``.

    ``predictions`` maps a model name to its {"val": ..., "test": ...} frames (see ``evaluate_methods``);
    the recalibration factor is stored as ``factor`` under ``recalibrated``.
    """
    out = {}
    for name, parts in predictions.items():
        _, head = evaluate_methods(parts["val"], parts["test"], methods)
        factor = head.pop("recalibration_factor")
        if "recalibrated" in head:
            head["recalibrated"]["factor"] = factor
        out[name] = head
    return out


# ---------------------------------------------------------------------------------------------- ensembles
def ensemble_predictions(preds: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Combine member predictions: mean gap, spread (std over members), mean Laplace scale, and a total scale.

    The total is a Laplace scale with the variance of the mixture: var = spread^2 + 2*mean(b^2), so
    ``b_total = sqrt(spread^2/2 + mean(b^2))`` (aleatoric + epistemic).
    """
    gaps = np.stack([p["gap_ev"].to_numpy(float) for p in preds])
    scales = np.stack([p["uncertainty_ev"].to_numpy(float) for p in preds])
    spread = gaps.std(axis=0, ddof=1) if len(preds) > 1 else np.zeros(gaps.shape[1])
    out = pd.DataFrame({"gap_ev": gaps.mean(0), "spread_ev": spread, "aleatoric_ev": scales.mean(0),
                        "uncertainty_ev": np.sqrt(spread ** 2 / 2 + (scales ** 2).mean(0))},
                       index=preds[0].index)
    return out


# ---------------------------------------------------------------------------------------------- chemistry
def chemistry_table(formulas: Sequence[str]) -> pd.DataFrame:
    """Per formula: number of elements and the anion (most electronegative element), for grouping scales."""
    from pymatgen.core import Composition

    rows = []
    for f in formulas:
        comp = Composition(f)
        els = sorted(comp.elements, key=lambda e: e.X if e.X == e.X else 0.0)
        rows.append({"n_elements": len(els), "anion": els[-1].symbol})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- shipped models
def dataset_of(model_name: str) -> str:
    """'mp' or 'oqmd' from a shipped model's name (e.g. 'crabnet-oqmd-gap')."""
    return "oqmd" if "-oqmd-" in model_name else "mp"


def shipped_predictions(name: str, cache_dir: Path | str | None = None,
                        splits: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Validation and test predictions of a shipped model on its own campaign split (cached as pickles).

    Returns {"val": ..., "test": ...}, each with formula, target_ev, gap_ev, uncertainty_ev.
    """
    import gapkit.pretrained as pretrained

    folder = Path(cache_dir) if cache_dir is not None else None
    sha = pretrained.card(name)["sha256"][:12]
    out: dict[str, pd.DataFrame] = {}
    if folder is not None:
        paths = {part: folder / f"{name}-{sha}-{part}.pkl" for part in ("val", "test")}
        if all(p.is_file() for p in paths.values()):
            return {part: pd.read_pickle(p) for part, p in paths.items()}
    if splits is None:
        from gapkit.train.campaign import CampaignConfig, load_splits

        splits = load_splits(dataset_of(name), 0, CampaignConfig())
    model = pretrained.load(name)
    model.params["progress"] = False
    for part in ("val", "test"):
        df = splits[part]
        pred = model.predict(df)
        out[part] = pd.DataFrame({"formula": df["formula"].to_numpy(), "target_ev": df["gap_ev"].to_numpy(float),
                                  "gap_ev": pred["gap_ev"].to_numpy(), "uncertainty_ev": pred["uncertainty_ev"]
                                  .to_numpy()}, index=df.index)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            out[part].to_pickle(paths[part])
    return out


__all__ = ["LEVELS", "METHODS", "REPORT_LEVELS", "calibration_curve", "chemistry_table", "confidence_curve",
           "conformal_halfwidth", "conformal_quantile", "coverage", "dataset_of", "ensemble_predictions",
           "error_uncertainty_spearman", "evaluate_methods", "headline_metrics", "interval_coverage",
           "laplace_halfwidth", "laplace_interval", "laplace_scale", "mae_by_uncertainty_bin", "method_halfwidths",
           "method_scales", "miscalibration_area", "nll", "recalibration_factor", "sharpness",
           "shipped_predictions", "spearman"]
