"""Figures of the tree-LM study: the token rank–frequency (Zipf) plot against 1/k, and the
loss curves of the training stages (:mod:`hepchain.core.plotting`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from hepchain.core import plotting


def token_frequencies(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Counts of each used token id, descending (PAD excluded)."""
    used = np.concatenate([row[:n] for row, n in zip(tokens, lengths, strict=True)])
    counts = np.bincount(used.astype(np.int64))
    return np.sort(counts[counts > 0])[::-1]


def zipf_figure(counts: np.ndarray, path: Path) -> Path:
    """Relative frequency against rank with the Zipf law f(k) = f(1)/k."""
    fig, ax = plt.subplots()
    k = np.arange(1, counts.size + 1)
    f = counts / counts.sum()
    ax.loglog(k, f, drawstyle="steps-mid", label="tree tokens")
    ax.loglog(k, f[0] / k, ls="--", color="k", label="Zipf 1/k")
    ax.set(xlabel="rank k", ylabel="relative frequency", title="Token rank–frequency")
    ax.legend()
    return plotting.save(fig, path)


def loss_figure(histories: dict[str, list[dict[str, float]]], path: Path) -> Path:
    return plotting.loss_curves(histories, path, title="Tree LM training stages")


def reward_figure(curve: list[dict[str, float]], path: Path) -> Path:
    """Mean reward per term of the sampled groups against the GRPO step."""
    fig, ax = plt.subplots()
    for key in curve[0]:
        ax.plot(range(1, len(curve) + 1), [c[key] for c in curve], marker="o", label=key)
    ax.set(xlabel="GRPO step", ylabel="mean reward of the sampled groups",
           title="GRPO reward terms")
    ax.legend()
    return plotting.save(fig, path)
