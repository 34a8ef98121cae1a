"""GRPO (DeepSeekMath, arXiv:2402.03300, eq. 3–4) with the physics rewards, our own loop with
the grammar mask (TRL's GRPOTrainer supports constrained decoding only through vLLM).

Per step: ``prompts`` training clustering trees, ``group`` sampled truth trees each from the
current policy under the grammar mask (temperature ``temperature``); reward = weighted sum of
:mod:`~hepchain.reco.treelm.rewards` terms; advantage = (r − group mean) / (group std + 1e-4)
on every token; one policy update (μ = 1, so π_old = the sampling policy) of

    −mean_i mean_t [ min(ρ A, clip(ρ, 1 − ε, 1 + ε) A) − β (π_ref/π − log(π_ref/π) − 1) ]

with ρ = π/π_old and all log-probabilities taken over the masked distribution (the one
actually sampled from). The reference π_ref is the model after translation fine-tuning.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.core.seeding import derive_seed
from hepchain.reco.treelm.decode import generate
from hepchain.reco.treelm.grammar import GrammarState, TreeError, parse, prompt
from hepchain.reco.treelm.rewards import TERMS, rewards
from hepchain.reco.treelm.trees import Tree
from hepchain.reco.treelm.vocab import VOCAB

PAD = VOCAB.id("PAD")


def masked_logprobs(model: nn.Module, prompts: list[list[int]], outputs: list[list[int]],
                    max_len: int, temperature: float = 1.0) -> list[Tensor]:
    """Log-probabilities of each output token under ``model`` given its prompt, over the
    grammar-masked distribution at ``temperature`` (teacher forcing, one batched forward
    pass)."""
    seqs = [p + o for p, o in zip(prompts, outputs, strict=True)]
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s)
    logits = model(input_ids=ids, attention_mask=(ids != PAD).long()).logits.float() / temperature
    out = []
    for i, (p, o) in enumerate(zip(prompts, outputs, strict=True)):
        state = GrammarState.after(p, max_len)
        masks = []
        for tok in o:
            masks.append(torch.from_numpy(state.allowed()))
            state.advance(tok)
        lg = logits[i, len(p) - 1:len(p) - 1 + len(o)].masked_fill(~torch.stack(masks),
                                                                   float("-inf"))
        out.append(torch.log_softmax(lg, -1).gather(1, torch.tensor(o)[:, None]).squeeze(1))
    return out


def _tree(p: list[int], o: list[int]) -> Tree | None:
    try:
        return parse(p + o).truth
    except TreeError:
        return None


def grpo(model: nn.Module, reco: list[Tree], settings: dict[str, Any], max_len: int,
         seed: int, pt_min: float) -> list[dict[str, float]]:
    """Fine-tune ``model`` in place with GRPO on the clustering trees ``reco`` (pruned at
    ``pt_min`` GeV); returns the mean reward terms of the sampled groups per step."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=float(settings["lr"]), weight_decay=0.0)
    rng = np.random.default_rng(derive_seed(seed, "grpo"))
    gen = torch.Generator().manual_seed(derive_seed(seed, "grpo-sampling"))
    group, eps, beta = int(settings["group"]), float(settings["clip"]), float(settings["beta"])
    weights = {k: float(settings["weights"][k]) for k in TERMS}
    curve = []
    for _ in range(int(settings["steps"])):
        pick = rng.choice(len(reco), size=int(settings["prompts"]), replace=False)
        prompts = [prompt(reco[i]) for i in pick for _ in range(group)]
        sampled = generate(model, prompts, max_len, constrained=True, greedy=False,
                           temperature=float(settings["temperature"]), generator=gen)
        terms = [rewards(_tree(p, o), reco[i], hard=bool(settings["hard"]), pt_min=pt_min)
                 for p, o, i in zip(prompts, sampled.tokens, np.repeat(pick, group),
                                    strict=True)]
        total = np.array([sum(weights[k] * t[k] for k in TERMS) for t in terms])
        grouped = total.reshape(-1, group)
        adv = ((grouped - grouped.mean(1, keepdims=True))
               / (grouped.std(1, keepdims=True) + 1e-4)).ravel()
        model.train()
        temperature = float(settings["temperature"])
        logp = masked_logprobs(model, prompts, sampled.tokens, max_len, temperature)
        with torch.no_grad():
            ref_logp = masked_logprobs(ref, prompts, sampled.tokens, max_len, temperature)
        losses = []
        for lp, old, rl, a in zip(logp, sampled.logp, ref_logp, adv, strict=True):
            ratio = torch.exp(lp - old.detach())
            surrogate = torch.minimum(ratio * a, ratio.clamp(1 - eps, 1 + eps) * a)
            kl = torch.exp(rl - lp) - (rl - lp) - 1
            losses.append(-(surrogate - beta * kl).mean())
        opt.zero_grad()
        torch.stack(losses).mean().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        curve.append({k: float(np.mean([t[k] for t in terms])) for k in TERMS}
                     | {"total": float(total.mean())})
    model.eval()
    return curve
