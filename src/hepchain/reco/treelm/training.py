"""The two supervised stages, both through the one :class:`~hepchain.core.trainer.Trainer`
(checkpointed, so a killed run resumes):

- pre-training: next-token prediction on mixed sequences — clustering trees alone
  (``BOS RECO … EOE``) and truth trees alone (``BOS TRUTH … EOE``) of the training jets;
- translation: the same model continues on ``BOS RECO … SEP TRUTH … EOE`` with the loss on
  the truth part only (the reco prompt is context).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from hepchain.core.trainer import TrainConfig, Trainer
from hepchain.reco.treelm.grammar import encode
from hepchain.reco.treelm.trees import Tree
from hepchain.reco.treelm.vocab import VOCAB

PAD = VOCAB.id("PAD")
IGNORE = -100


def pad(seqs: list[list[int]], loss_from: list[int]) -> tuple[Tensor, Tensor]:
    """(ids, labels) right-padded with PAD; labels are IGNORE before ``loss_from[i]`` and on
    padding (the model shifts labels by one itself)."""
    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), PAD, dtype=torch.long)
    labels = torch.full((len(seqs), n), IGNORE, dtype=torch.long)
    for i, (s, start) in enumerate(zip(seqs, loss_from, strict=True)):
        ids[i, :len(s)] = torch.tensor(s)
        labels[i, start:len(s)] = ids[i, start:len(s)]
    return ids, labels


def pretraining_set(reco: list[Tree], truth: list[Tree]) -> tuple[Tensor, Tensor]:
    seqs = [encode(r, None) for r in reco] + [encode(None, t) for t in truth]
    return pad(seqs, [1] * len(seqs))


def translation_set(reco: list[Tree], truth: list[Tree]) -> tuple[Tensor, Tensor]:
    truth_id = VOCAB.id("TRUTH")
    seqs = [encode(r, t) for r, t in zip(reco, truth, strict=True)]
    return pad(seqs, [s.index(truth_id) + 1 for s in seqs])


def _trim(batch: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """Collate a batch and cut the columns that are padding in every row."""
    ids = torch.stack([b[0] for b in batch])
    labels = torch.stack([b[1] for b in batch])
    n = int((ids != PAD).sum(1).max())
    return ids[:, :n], labels[:, :n]


def lm_loss(model: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
    """Next-token cross-entropy on the labelled positions only (the output head, the
    costliest layer at this vocabulary size, runs on those alone)."""
    ids, labels = batch
    hidden = model.model(input_ids=ids, attention_mask=(ids != PAD).long()).last_hidden_state
    target = labels[:, 1:]
    keep = target != IGNORE
    return nn.functional.cross_entropy(model.lm_head(hidden[:, :-1][keep]), target[keep])


def fit_stage(model: nn.Module, train: tuple[Tensor, Tensor], val: tuple[Tensor, Tensor],
              settings: dict[str, Any], seed: int, name: str) -> list[dict[str, float]]:
    """Train ``model`` in place on one stage; returns the per-epoch history."""
    trainer = Trainer(model, lm_loss, TrainConfig.from_dict(settings, seed=seed), name=name,
                      collate_fn=_trim)
    return trainer.fit(train, val).epochs
