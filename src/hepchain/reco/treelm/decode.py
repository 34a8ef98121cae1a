"""Decoding truth trees from clustering-tree prompts: batched, with the key/value cache, greedy
or sampled, with or without the grammar mask (:class:`~hepchain.reco.treelm.grammar.
GrammarState`). Masked logits are set to −inf before the softmax, so the returned
log-probabilities are those of the distribution actually sampled from (what GRPO's ratios and
KL need)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from hepchain.reco.treelm.grammar import TRUTH_NODE_MAX, GrammarState
from hepchain.reco.treelm.vocab import VOCAB

PAD, EOE = VOCAB.id("PAD"), VOCAB.id("EOE")


@dataclass(frozen=True)
class Decoded:
    """``tokens[i]``: the generated ids of prompt i (up to and including EOE when reached);
    ``logp[i]``: their log-probabilities under the (masked) sampling distribution."""

    tokens: list[list[int]]
    logp: list[Tensor]


def left_pad(prompts: list[list[int]]) -> tuple[Tensor, Tensor]:
    n = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), n), PAD, dtype=torch.long)
    attn = torch.zeros((len(prompts), n), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, n - len(p):] = torch.tensor(p)
        attn[i, n - len(p):] = 1
    return ids, attn


@torch.no_grad()
def generate(model: nn.Module, prompts: list[list[int]], max_len: int, constrained: bool,
             greedy: bool = True, temperature: float = 1.0,
             generator: torch.Generator | None = None, batch_size: int = 64) -> Decoded:
    """Continue each prompt until EOE or ``max_len`` tokens in all (prompt included)."""
    tokens: list[list[int]] = []
    logps: list[Tensor] = []
    for lo in range(0, len(prompts), batch_size):
        out = _generate(model, prompts[lo:lo + batch_size], max_len, constrained, greedy,
                        temperature, generator)
        tokens += out.tokens
        logps += out.logp
    return Decoded(tokens, logps)


def _generate(model: nn.Module, prompts: list[list[int]], max_len: int, constrained: bool,
              greedy: bool, temperature: float, generator: torch.Generator | None) -> Decoded:
    model.eval()
    if max(len(p) for p in prompts) + TRUTH_NODE_MAX + 1 > max_len:
        raise ValueError("A prompt leaves no room for a truth node within max_len.")
    states = [GrammarState.after(p, max_len) for p in prompts] if constrained else []
    ids, attn = left_pad(prompts)
    pos = (attn.cumsum(1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attn, position_ids=pos, use_cache=True)
    cache, logits = out.cache, out.logits[:, -1].float()
    lengths = np.array([len(p) for p in prompts])
    done = np.zeros(len(prompts), bool)
    gen: list[list[int]] = [[] for _ in prompts]
    logp: list[list[Tensor]] = [[] for _ in prompts]
    last = pos[:, -1]
    while not done.all():
        if constrained:
            allowed = torch.from_numpy(np.stack([s.allowed() for s in states]))
            logits = logits.masked_fill(~allowed, float("-inf"))
        logprob = torch.log_softmax(logits / temperature, dim=-1)
        if greedy:
            nxt = logprob.argmax(-1)
        else:
            nxt = torch.multinomial(logprob.exp(), 1, generator=generator).squeeze(1)
        nxt = torch.where(torch.from_numpy(done), torch.full_like(nxt, PAD), nxt)
        for i in np.flatnonzero(~done):
            tok = int(nxt[i])
            gen[i].append(tok)
            logp[i].append(logprob[i, tok])
            lengths[i] += 1
            if constrained:
                states[i].advance(tok)
            if tok == EOE or lengths[i] >= max_len:
                done[i] = True
        if done.all():
            break
        attn = torch.cat([attn, torch.ones((len(prompts), 1), dtype=torch.long)], 1)
        last = last + 1
        out = model(input_ids=nxt[:, None], attention_mask=attn, position_ids=last[:, None],
                    cache=cache, use_cache=True)
        cache, logits = out.cache, out.logits[:, -1].float()
    return Decoded(gen, [torch.stack(x) for x in logp])
