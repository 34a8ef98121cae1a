"""``hepchain jettag scaling``: test loss of one network (``scaling.model``, ParT by default)
vs its number of parameters and vs its number of training jets, power-law fits and the
compute-optimal size for the largest training sample.

* Parameters: every layer width of the preset's model times each of ``scaling.width_factors``,
  trained on all training jets.
* Training jets: the preset's model on the first ``f·N`` jets of the (random) training split
  for each ``f`` of ``scaling.train_fractions``; the validation and test jets stay the same.
* Fits (:func:`fit_power_law`): ``L = a·x^(−α) + c`` weighted by the test loss's standard
  error, kept when the constant is identified (the fit converges, 0 < c and σ_c < c);
  otherwise ``L = a·x^(−α)``. The exponent's error is the fit covariance's; with ``--seeds``
  the spread over seeds is the aggregate's std. When χ²/ndf > 1 the covariance is scaled by
  χ²/ndf (PDG scale factor) before any error is quoted.
* Compute-optimal size (Chinchilla-style, separable ``L = E + A N^(−α) + B D^(−β)`` assumed,
  compute ∝ N·D at a fixed number of epochs): minimising L at fixed N·D gives
  ``α A N^(−α) = β B D^(−β)``, so for the largest sample D the optimal number of parameters
  is ``N_opt = (α A / (β B))^(1/α) · D^(β/α)``, with A, α from the parameter fit (at that D)
  and B, β from the data fit (at the preset's size); its error comes from drawing the fit
  parameters from their covariances.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import curve_fit

from hepchain.core import plotting
from hepchain.core.errors import DataError, UsageError
from hepchain.core.result import Result
from hepchain.core.seeding import derive_seed
from hepchain.reco.jettag.data import load_jets, particle_features, split
from hepchain.reco.jettag.evaluate import test_loss
from hepchain.reco.jettag.models import NETWORKS, build_network
from hepchain.reco.jettag.training import fit_network

#: keys of a model block that hold layer widths (scaled by the width factor)
_WIDTHS = ("phi", "f", "embed", "pair_embed")


@dataclass(frozen=True)
class PowerLaw:
    """``L(x) = a·x^(−alpha) + c`` (``c`` = 0 when not fitted) with the covariance of the
    fitted parameters (order a, alpha[, c]) and the fit's χ² with its degrees of freedom."""

    a: float
    alpha: float
    c: float
    covariance: np.ndarray
    with_constant: bool
    chi2: float = float("nan")
    ndf: int = 0

    @property
    def alpha_error(self) -> float:
        return float(np.sqrt(self.covariance[1, 1]))

    def inflated(self) -> PowerLaw:
        """The fit with its covariance scaled by S² = max(1, χ²/ndf) (the PDG scale factor),
        so a fit worse than its errors allow gets errors to match."""
        scale = max(1.0, self.chi2 / self.ndf) if self.ndf > 0 else 1.0
        return replace(self, covariance=self.covariance * scale)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.a * np.asarray(x, float) ** -self.alpha + self.c


def fit_power_law(x: np.ndarray, loss: np.ndarray, error: np.ndarray) -> PowerLaw:
    """Weighted least-squares fit of ``loss ± error`` vs ``x`` (see the module docstring for
    when the constant is kept); needs at least 3 points with positive x and loss. Without the
    constant the fit is linear in (ln x, ln L), weights L/σ, so it always exists."""
    x, loss, error = (np.asarray(v, float) for v in (x, loss, error))
    if x.size < 3 or (x <= 0).any() or (loss <= 0).any():
        raise UsageError("A power-law fit needs at least 3 points with positive x and loss.")
    if not (np.isfinite(error).all() and (error > 0).all()):
        raise DataError("The test losses have no finite, positive errors (too few test jets?); "
                        "use more jets for the scaling study.")
    (slope, intercept), cov = np.polyfit(np.log(x), np.log(loss), 1, w=loss / error,
                                         cov="unscaled")
    a, alpha = float(np.exp(intercept)), float(-slope)
    jac = np.array([[0.0, a], [-1.0, 0.0]])  # (a, alpha) from (slope, intercept)
    pure = PowerLaw(a, alpha, 0.0, jac @ cov @ jac.T, with_constant=False)
    if x.size < 4:
        return _with_chi2(pure, x, loss, error)

    def law(xs: np.ndarray, a0: float, alpha: float, c: float) -> np.ndarray:
        return a0 * (xs / x[0]) ** -alpha + c  # pivot at x[0] keeps a0 of order L

    try:
        p, cov3 = curve_fit(law, x, loss, p0=(a * x[0] ** -alpha, alpha, 0.0), sigma=error,
                            absolute_sigma=True, maxfev=20000)
    except (RuntimeError, ValueError):
        return _with_chi2(pure, x, loss, error)  # not converged: c is not identified
    if np.isfinite(cov3).all() and p[2] > 0 and np.sqrt(cov3[2, 2]) < p[2]:
        return _with_chi2(_unpivot(p, cov3, x[0]), x, loss, error)
    return _with_chi2(pure, x, loss, error)


def _with_chi2(fit: PowerLaw, x: np.ndarray, loss: np.ndarray, error: np.ndarray) -> PowerLaw:
    """``fit`` with its χ² = Σ((L − fit)/σ)² and ndf = points − parameters."""
    chi2 = float(np.sum(((loss - fit(x)) / error) ** 2))
    return replace(fit, chi2=chi2, ndf=x.size - (3 if fit.with_constant else 2))


def _unpivot(p: np.ndarray, cov: np.ndarray, x0: float) -> PowerLaw:
    """Parameters fitted as ``a'·(x/x0)^(−α) + c`` back to ``a = a'·x0^α``, covariance by
    the Jacobian of (a', α, c) -> (a, α, c)."""
    a = p[0] * x0 ** p[1]
    jac = np.eye(3)
    jac[0, 0], jac[0, 1] = x0 ** p[1], a * np.log(x0)
    return PowerLaw(float(a), float(p[1]), float(p[2]), jac @ cov @ jac.T, with_constant=True)


def compute_optimal_parameters(params_fit: PowerLaw, data_fit: PowerLaw, n_jets: float,
                               seed: int, draws: int = 4000) -> tuple[float, float]:
    """``N_opt`` for ``n_jets`` training jets (module docstring) and the half-width of its
    68 % interval when the fit parameters are drawn from their covariances."""
    def n_opt(a: np.ndarray, alpha: np.ndarray, b: np.ndarray, beta: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            return (alpha * a / (beta * b)) ** (1 / alpha) * n_jets ** (beta / alpha)

    value = float(n_opt(*(np.array(v) for v in (params_fit.a, params_fit.alpha, data_fit.a,
                                                 data_fit.alpha))))
    rng = np.random.default_rng(seed)
    pa = rng.multivariate_normal([params_fit.a, params_fit.alpha], params_fit.covariance[:2, :2],
                                 draws)
    pb = rng.multivariate_normal([data_fit.a, data_fit.alpha], data_fit.covariance[:2, :2],
                                 draws)
    samples = n_opt(pa[:, 0], pa[:, 1], pb[:, 0], pb[:, 1])
    samples = samples[np.isfinite(samples) & (samples > 0)]
    if samples.size < draws // 2:
        return value, float("nan")
    lo, hi = np.percentile(samples, [16, 84])
    return value, float(hi - lo) / 2


def scaled_spec(spec: dict[str, Any], factor: float, heads: int | None) -> dict[str, Any]:
    """``spec`` with every layer width times ``factor`` (at least 1; ParT's particle widths
    rounded to a multiple of its ``heads``)."""
    def scale(w: float, multiple: int = 1) -> int:
        return max(multiple, round(w * factor / multiple) * multiple)

    out = dict(spec)
    for key in _WIDTHS:
        if key in spec:
            multiple = heads if key == "embed" and heads else 1
            out[key] = [scale(w, multiple) for w in spec[key]]
    if "convs" in spec:
        out["convs"] = [[k, [scale(c) for c in chans]] for k, chans in spec["convs"]]
    if "fc" in spec:
        out["fc"] = [[scale(w), d] for w, d in spec["fc"]]
    return out


def scaling(config: dict[str, Any], workdir: Path, seed: int) -> Result:
    """One seed of the scaling study (the seed chooses the split and the initialisations)."""
    sc = config["scaling"]
    name = sc["model"]
    if name not in NETWORKS or name not in config["models"]:
        raise UsageError(f"scaling.model must be one of the networks in `models` "
                         f"({', '.join(n for n in NETWORKS if n in config['models'])}); got "
                         f"{name!r}.")
    factors, fractions = sorted(sc["width_factors"]), sorted(sc["train_fractions"])
    if len(factors) < 3 or len(fractions) < 3 or not 0 < fractions[0] <= fractions[-1] <= 1:
        raise UsageError("scaling needs at least 3 width factors and 3 training fractions in "
                         "(0, 1].")
    result = Result(study="jettag", preset="")
    jets = load_jets(config["data"], result)                                        # data
    y = jets.labels
    train, val, test = split(y.size, config["split"], seed)
    tensors = particle_features(jets.records, config["features"], int(config["max_particles"]))
    base = config["models"][name]
    epochs = int(config["train"]["epochs"])

    def point(spec: dict[str, Any], jets_idx: np.ndarray, tag: str) -> tuple[int, float, float]:
        point_seed = derive_seed(seed, tag)
        fitted = fit_network(build_network(name, spec, tensors, len(jets.classes), point_seed),
                             tensors, y, jets_idx, val, config["train"], point_seed, tag)
        return (fitted.parameters, *test_loss(fitted.score(test), y[test]))

    by_params = [point(scaled_spec(base, f, base.get("heads")), train, f"width{f:g}")  # models
                 for f in factors]
    sizes = sorted({max(round(f * train.size), int(config["train"]["batch_size"]))
                    for f in fractions})  # at least one batch each
    if len(sizes) < 3:
        raise UsageError(f"scaling.train_fractions of {train.size} training jets give fewer "
                         "than 3 distinct sizes of at least one batch; use larger fractions.")
    by_jets = [point(base, train[:n], f"jets{n}") for n in sizes]
    for (n_params, loss, err), f in zip(by_params, factors, strict=True):           # metrics
        result.add("test loss vs parameters", f"{name}, {n_params} parameters (×{f:g})", loss,
                   std=err, unit="nats", higher_is_better=False)
    for (_, loss, err), n in zip(by_jets, sizes, strict=True):
        result.add("test loss vs training jets", f"{name}, {n} training jets", loss, std=err,
                   unit="nats", higher_is_better=False)
    fits = {}
    for key, xs, rows in (("parameters", [p for p, _, _ in by_params], by_params),
                          ("training jets", sizes, by_jets)):
        fit = fits[key] = fit_power_law(np.array(xs), np.array([r[1] for r in rows]),
                                        np.array([r[2] for r in rows])).inflated()
        result.add(f"power-law exponent (loss vs {key})", name, fit.alpha, std=fit.alpha_error,
                   higher_is_better=True)
        result.add(f"fit χ² (loss vs {key}, {fit.ndf} degrees of freedom)", name, fit.chi2,
                   higher_is_better=False)
        if fit.with_constant:
            result.add(f"asymptotic loss c (loss vs {key})", name, fit.c,
                       std=float(np.sqrt(fit.covariance[2, 2])), unit="nats")
        else:
            result.notes.append(f"Loss vs {key}: the constant c is not identified; "
                                "L = a·x^(−α) fitted.")
    if fits["parameters"].alpha > 0 and fits["training jets"].alpha > 0:
        n_opt, n_err = compute_optimal_parameters(fits["parameters"], fits["training jets"],
                                                  train.size, derive_seed(seed, "n_opt"))
        result.add(f"compute-optimal parameters for {train.size} training jets", name, n_opt,
                   std=n_err if np.isfinite(n_err) else None)
    else:
        result.notes.append("The compute-optimal size is not identified: a fitted exponent is "
                            "not positive (the loss does not fall with that axis here).")
    result.figures.append(scaling_figure(
        {"parameters": ([p for p, _, _ in by_params], by_params),
         "training jets": (sizes, by_jets)}, fits, workdir / "scaling.png", name))
    result.notes.append(
        f"{name} trained {epochs} epochs per point with the preset's training settings; test "
        f"loss on the same {test.size} test jets (± its standard error); fits L = a·x^(−α) "
        "(+ c where identified); compute ∝ parameters × training jets × epochs.")
    return result


def scaling_figure(points: dict[str, tuple[list[int], list[tuple[int, float, float]]]],
                   fits: dict[str, PowerLaw], path: Path, name: str) -> str:
    """Test loss vs parameters and vs training jets (log-log) with the fitted power laws."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, (key, (xs, rows)) in zip(axes, points.items(), strict=True):
        fit = fits[key]
        ax.errorbar(xs, [r[1] for r in rows], yerr=[r[2] for r in rows], fmt="o",
                    label=f"{name}, test jets")
        grid = np.geomspace(min(xs), max(xs), 50)
        label = (f"a·x^(−α){' + c' if fit.with_constant else ''}, "
                 f"α = {fit.alpha:.2f} ± {fit.alpha_error:.2f}")
        ax.plot(grid, fit(grid), label=label)
        ax.set(xscale="log", yscale="log", xlabel=key, title=f"loss vs {key}")
        ax.legend()
    axes[0].set_ylabel("test loss (cross-entropy) [nats]")
    return plotting.save(fig, path).name
