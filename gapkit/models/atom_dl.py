"""Atom_DL (Sun & Yuan, Acta Phys. Sin. 72, 028901, 2023): element vectors from formulas alone.

A BERT-style Transformer encoder reads a pair of formulas, ``[CLS] f1 [SEP] f2 [SEP]``, each formula
written as element tokens repeated by count (SiO2 -> Si O O). Two self-supervised objectives:

* **masked-element modelling** — 15 % of the element tokens are chosen; of those 80 % become
  ``[MASK]``, 10 % a random element, 10 % stay; a linear layer + softmax predicts the original;
* **pair classification** — the ``[CLS]`` output says whether both formulas are "the same class":
  their distinct elements occupy the same periodic-table groups (HF and HCl: groups {1, 17} both -> 1;
  HF and H2O: {1, 17} vs {1, 16} -> 0).

``loss = loss_lm + loss_label``. The rows of the token-embedding layer are the element vectors.

Tokenisation choices (the paper does not state them):

* vocabulary: token id = atomic number Z (1..103) for elements, 0 = padding, then ``[CLS]``,
  ``[SEP]``, ``[MASK]`` — so ``token_embedding.weight[Z]`` is element Z's vector;
* a formula is first **reduced** (Co12Mn5Nd2 stays, Fe4O6 -> Fe2O3); each count is rounded to an
  integer, at least 1 (fractional occupancies like Ba0.5 become 1 token) and **capped at 8 tokens**;
  if a formula still has more than ``max_tokens`` (24) tokens, its largest counts are lowered one by
  one until it fits (the 99th percentile of OQMD is 15 tokens, so this rarely bites);
* the number of chosen tokens is ``max(1, round(0.15 * n_element_tokens))`` per sample, as in BERT's
  reference implementation (every sample contributes to ``loss_lm``); a "random element" is drawn
  uniformly from the elements of the training formulas (it may coincide with the original, as in BERT);
* the pair label ignores stoichiometry (Fe2O3 and FeO are the same class), following the paper's
  wording "the elements belong to the same groups".
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Element
from torch import nn
from tqdm.auto import tqdm

from gapkit.featurize.composition import parse_formula

logger = logging.getLogger(__name__)

MAX_Z = 103
PAD, CLS, SEP, MASK = 0, MAX_Z + 1, MAX_Z + 2, MAX_Z + 3
VOCAB_SIZE = MAX_Z + 4
IGNORE = -100  # cross-entropy ignore_index for unchosen positions
MAX_COUNT = 8
MAX_TOKENS = 24
MASK_PROB = 0.15


# --------------------------------------------------------------------------- tokens and labels
def formula_tokens(formula: str, max_count: int = MAX_COUNT, max_tokens: int = MAX_TOKENS) -> np.ndarray:
    """Element tokens (atomic numbers) of a reduced formula, counts rounded, capped at max_count each."""
    comp = parse_formula(formula).reduced_composition
    elements = list(comp)
    if any(el.Z > MAX_Z for el in elements):
        raise ValueError(f"Formula {formula!r} has an element beyond Z={MAX_Z}; Atom_DL's vocabulary stops there.")
    if len(elements) > max_tokens:
        raise ValueError(f"Formula {formula!r} has more elements than max_tokens={max_tokens}.")
    counts = np.array([min(max_count, max(1, int(round(comp[el])))) for el in elements])
    while counts.sum() > max_tokens:  # lower the largest count until the formula fits
        counts[int(np.argmax(counts))] -= 1
    return np.repeat([el.Z for el in elements], counts).astype(np.int64)


@lru_cache(maxsize=None)
def _group(z: int) -> int:
    return Element.from_Z(z).group  # lanthanides/actinides are group 3 in pymatgen


def group_signature(formula: str) -> tuple[int, ...]:
    """Sorted periodic-table groups of a formula's distinct elements: HF -> (1, 17)."""
    return tuple(sorted(_group(el.Z) for el in parse_formula(formula)))


def pair_label(formula1: str, formula2: str) -> int:
    """1 when both formulas' elements fill the same periodic-table groups (HF, HCl), else 0 (HF, H2O)."""
    return int(group_signature(formula1) == group_signature(formula2))


def build_pairs(formulas: Sequence[str], n_samples: int, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Balanced formula pairs: columns formula1, formula2, label (half 1, half 0), shuffled, seeded."""
    formulas = list(dict.fromkeys(formulas))  # unique, order kept
    rng = np.random.default_rng(seed)
    signatures = [group_signature(f) for f in tqdm(formulas, desc="group signatures", disable=not progress,
                                                 mininterval=1.0)]
    codes, sig_ids = np.unique(np.array([hash(s) for s in signatures]), return_inverse=True)
    members = [np.flatnonzero(sig_ids == k) for k in range(len(codes))] if len(codes) < 2000 else None
    if members is None:  # many signatures: group with one argsort instead of one scan per signature
        order = np.argsort(sig_ids, kind="stable")
        bounds = np.flatnonzero(np.diff(sig_ids[order])) + 1
        members = np.split(order, bounds)
    if len(codes) < 2:
        raise ValueError("All formulas share one group signature: cannot build negative pairs; add other chemistries.")
    group_size = np.array([len(members[s]) for s in sig_ids])
    eligible = np.flatnonzero(group_size >= 2)
    if len(eligible) == 0:
        raise ValueError("No two formulas share a group signature: cannot build positive pairs.")
    n_pos = n_samples // 2
    n_neg = n_samples - n_pos
    pos_anchor = rng.choice(eligible, size=n_pos, replace=n_pos > len(eligible))
    pos_partner = np.empty(n_pos, dtype=np.int64)
    for k, i in enumerate(pos_anchor):
        group = members[sig_ids[i]]
        j = group[rng.integers(len(group))]
        while j == i:  # a different formula of the same class
            j = group[rng.integers(len(group))]
        pos_partner[k] = j
    neg_anchor = rng.choice(len(formulas), size=n_neg, replace=n_neg > len(formulas))
    neg_partner = rng.integers(len(formulas), size=n_neg)
    clash = sig_ids[neg_partner] == sig_ids[neg_anchor]
    while clash.any():
        neg_partner[clash] = rng.integers(len(formulas), size=int(clash.sum()))
        clash = sig_ids[neg_partner] == sig_ids[neg_anchor]
    names = np.asarray(formulas, dtype=object)
    df = pd.DataFrame({
        "formula1": names[np.concatenate([pos_anchor, neg_anchor])],
        "formula2": names[np.concatenate([pos_partner, neg_partner])],
        "label": np.r_[np.ones(n_pos, dtype=np.int64), np.zeros(n_neg, dtype=np.int64)],
    })
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def assemble(tokens1: np.ndarray, tokens2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[CLS] f1 [SEP] f2 [SEP]`` token ids and segment ids (0 for the first formula, 1 for the second)."""
    ids = np.concatenate([[CLS], tokens1, [SEP], tokens2, [SEP]]).astype(np.int64)
    segments = np.r_[np.zeros(len(tokens1) + 2, dtype=np.int64), np.ones(len(tokens2) + 1, dtype=np.int64)]
    return ids, segments


def mask_tokens(ids: np.ndarray, rng: np.random.Generator, elements: np.ndarray,
                mask_prob: float = MASK_PROB) -> tuple[np.ndarray, np.ndarray]:
    """BERT masking of element tokens: returns (corrupted ids, labels with IGNORE at unchosen positions)."""
    ids = ids.copy()
    labels = np.full_like(ids, IGNORE)
    candidates = np.flatnonzero((ids > PAD) & (ids <= MAX_Z))
    if len(candidates) == 0:
        return ids, labels
    n_chosen = max(1, int(round(mask_prob * len(candidates))))
    chosen = rng.choice(candidates, size=n_chosen, replace=False)
    labels[chosen] = ids[chosen]
    action = rng.random(n_chosen)
    to_mask = chosen[action < 0.8]
    to_random = chosen[(action >= 0.8) & (action < 0.9)]  # the last 10 % keep the original token
    ids[to_mask] = MASK
    ids[to_random] = rng.choice(elements, size=len(to_random))
    return ids, labels


class AtomDLDataset(torch.utils.data.Dataset):
    """Formula pairs -> masked token sequences; masks are redrawn every epoch unless ``static``."""

    def __init__(self, pairs: pd.DataFrame, tokens: dict[str, np.ndarray], elements: np.ndarray,
                 seed: int = 0, static: bool = False) -> None:
        self.formula1 = pairs["formula1"].to_numpy()
        self.formula2 = pairs["formula2"].to_numpy()
        self.labels = pairs["label"].to_numpy().astype(np.int64)
        self.tokens = tokens
        self.elements = np.asarray(elements, dtype=np.int64)
        self.seed = seed
        self.static = static  # validation: the same masks every epoch, so its curve is comparable
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> np.ndarray:
        """Token count of each sample (``[CLS] f1 [SEP] f2 [SEP]``), for batching by length."""
        n = {f: len(t) for f, t in self.tokens.items()}
        return np.array([n[a] + n[b] + 3 for a, b in zip(self.formula1, self.formula2)], dtype=np.int64)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        ids, segments = assemble(self.tokens[self.formula1[i]], self.tokens[self.formula2[i]])
        rng = np.random.default_rng([self.seed, i]) if self.static else self._rng
        masked, labels = mask_tokens(ids, rng, self.elements)
        return {"input_ids": masked, "segment_ids": segments, "mlm_labels": labels, "pair_label": self.labels[i]}


def collate(batch: list[dict[str, np.ndarray]]) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence (PAD ids, IGNORE labels)."""
    n = max(len(b["input_ids"]) for b in batch)
    out = {
        "input_ids": torch.full((len(batch), n), PAD, dtype=torch.long),
        "segment_ids": torch.zeros((len(batch), n), dtype=torch.long),
        "mlm_labels": torch.full((len(batch), n), IGNORE, dtype=torch.long),
    }
    for k, b in enumerate(batch):
        m = len(b["input_ids"])
        for key in out:
            out[key][k, :m] = torch.from_numpy(b[key])
    out["pair_label"] = torch.tensor([b["pair_label"] for b in batch], dtype=torch.long)
    return out


def token_names(ids: Sequence[int]) -> list[str]:
    """Readable tokens: element symbols and [CLS]/[SEP]/[MASK]/[PAD]."""
    special = {PAD: "[PAD]", CLS: "[CLS]", SEP: "[SEP]", MASK: "[MASK]"}
    return [special.get(int(i)) or Element.from_Z(int(i)).symbol for i in ids]


def tokenize_formulas(formulas: Sequence[str], progress: bool = True) -> dict[str, np.ndarray]:
    """Token arrays of each distinct formula (parsed once)."""
    unique = list(dict.fromkeys(formulas))
    return {f: formula_tokens(f) for f in tqdm(unique, desc="tokenising", disable=not progress, mininterval=1.0)}


# --------------------------------------------------------------------------- the network
class AtomDL(nn.Module):
    """BERT-style encoder: token + position + segment embeddings, Transformer blocks, MLM and pair heads."""

    def __init__(self, d_model: int = 16, n_layers: int = 8, n_heads: int = 8, dim_feedforward: int = 64,
                 dropout: float = 0.1, max_len: int = 2 * MAX_TOKENS + 3, vocab_size: int = VOCAB_SIZE) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model, padding_idx=PAD)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.segment_embedding = nn.Embedding(2, d_model)
        self.input_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, dim_feedforward, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.output_norm = nn.LayerNorm(d_model)
        self.mlm_head = nn.Linear(d_model, vocab_size)  # the paper's "linear multi-class classifier"
        self.pair_head = nn.Linear(d_model, 2)

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (masked-element logits [B, L, vocab], pair logits [B, 2])."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).unsqueeze(0)
        x = self.token_embedding(input_ids) + self.position_embedding(positions) + self.segment_embedding(segment_ids)
        x = self.dropout(self.input_norm(x))
        h = self.output_norm(self.encoder(x, src_key_padding_mask=input_ids == PAD))
        return self.mlm_head(h), self.pair_head(h[:, 0])

    def element_vectors(self, elements: Sequence[int] | None = None) -> pd.DataFrame:
        """The embedding rows of elements (atomic numbers; default all 1..103) as a DataFrame by symbol."""
        zs = list(elements) if elements is not None else list(range(1, MAX_Z + 1))
        weights = self.token_embedding.weight.detach().float().cpu().numpy()[zs]
        index = pd.Index([Element.from_Z(int(z)).symbol for z in zs], name="element")
        return pd.DataFrame(weights, index=index, columns=[str(c) for c in range(weights.shape[1])])
