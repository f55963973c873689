"""CrabNet (Wang et al., npj Comput. Mater. 2021), the composition branch of CGCrabNet.

A composition is a set of (element, fraction) pairs, at most 7 here, padded with Z = 0:

1. each element Z -> a fixed element vector (mat2vec by default, one-hot gives "HotCrab") -> Linear to d_m;
2. each fraction -> a sinusoidal "fractional encoding" (a positional encoding whose position is the
   fraction, half on a linear and half on a log scale) added to it;
3. N transformer-encoder layers with n heads let every element attend to the others (padding masked);
4. a residual feed-forward head gives per element a contribution p, a log-uncertainty u and a logit l;
   ``z1 = mean(p * sigmoid(l))`` and ``S = mean(u)`` over the real (unpadded) elements.

Nothing here depends on the order of the elements (no position encoding of the slot), so the model is
permutation invariant, and padded slots are masked out of attention and of the means.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MAX_ELEMENTS = 7


def element_table(name: str, max_z: int = 103, standardize: bool = True) -> np.ndarray:
    """float32[max_z+1, d] element vectors by Z (row 0 = padding = 0), z-scored per column over real elements.

    Standardising puts tables such as Magpie (melting points in K beside electronegativities) on one
    scale before the first linear layer; it changes nothing for a table that is already centred.
    """
    from gapkit.featurize.embeddings import embedding_matrix

    table = np.asarray(embedding_matrix(name, max_z=max_z), dtype=np.float32)
    if standardize:
        real = np.abs(table).sum(axis=1) > 0
        real[0] = False
        mu, sd = table[real].mean(axis=0), table[real].std(axis=0)
        sd[sd == 0] = 1.0
        table = np.where(real[:, None], (table - mu) / sd, 0.0).astype(np.float32)
    return table


class FractionalEncoder(nn.Module):
    """Sinusoidal encoding of a fraction x in (0, 1]: sin/cos(x * resolution / 10000^(2i/d))."""

    def __init__(self, dim: int, resolution: float = 5000.0, log10: bool = False) -> None:
        super().__init__()
        self.log10 = log10
        self.dim = dim
        self.resolution = resolution
        inv = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        self.register_buffer("inv_freq", inv, persistent=False)

    def forward(self, frac: torch.Tensor) -> torch.Tensor:
        """[B, E] fractions -> [B, E, dim] encodings."""
        x = frac.clamp(min=1.0 / self.resolution)
        if self.log10:  # CrabNet's log scale: 0.0025 * log2(x)^2, spreading out the small fractions
            x = (0.0025 * torch.log2(x) ** 2).clamp(max=1.0)
        angle = (x * self.resolution).unsqueeze(-1) * self.inv_freq
        return torch.stack((angle.sin(), angle.cos()), dim=-1).flatten(-2)[..., : self.dim]


class ResidualHead(nn.Module):
    """CrabNet's residual feed-forward network: Linear + LeakyReLU blocks with skip connections."""

    def __init__(self, d_in: int, dims: tuple[int, ...], d_out: int) -> None:
        super().__init__()
        sizes = [d_in, *dims]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.skips = nn.ModuleList(
            nn.Identity() if a == b else nn.Linear(a, b, bias=False) for a, b in zip(sizes[:-1], sizes[1:])
        )
        self.act = nn.LeakyReLU()
        self.out = nn.Linear(sizes[-1], d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the blocks then the output layer."""
        for fc, skip in zip(self.fcs, self.skips):
            x = self.act(fc(x)) + skip(x)
        return self.out(x)


class CrabNetModel(nn.Module):
    """Composition transformer: (Z[B,E], fractions[B,E]) -> (gap z1 [B], log-scale S [B])."""

    def __init__(self, element_vectors: np.ndarray | torch.Tensor, d_model: int = 512, n_layers: int = 3,
                 n_heads: int = 4, d_ff: int = 2048, dropout: float = 0.1,
                 head_dims: tuple[int, ...] = (1024, 512, 256, 128)) -> None:
        super().__init__()
        table = torch.as_tensor(np.asarray(element_vectors), dtype=torch.float32)
        self.register_buffer("element_vectors", table)  # fixed (not trained), saved with the model
        self.embed = nn.Linear(table.shape[1], d_model)
        self.frac_linear = FractionalEncoder(d_model // 2, log10=False)
        self.frac_log = FractionalEncoder(d_model - d_model // 2, log10=True)
        self.d_model = d_model
        # learned scales of the element vector and of the fractional encoding, as in CrabNet
        self.emb_scaler = nn.Parameter(torch.tensor(1.0))
        self.pe_scaler = nn.Parameter(torch.tensor(1.0))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.head = ResidualHead(d_model, tuple(head_dims), 3)

    def encode(self, elements: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
        """Per-element representations after attention, [B, E, d_model] (padding rows are zero)."""
        real = elements != 0
        packed = self.encode_packed(elements, fractions, real)
        out = packed.new_zeros(*elements.shape, packed.shape[-1])
        out[real] = packed
        return out

    def encode_packed(self, elements: torch.Tensor, fractions: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """Representations of the real elements only, [T, d_model] in row-major order of ``real``.

        Only attention needs the padded [B, E] layout; every per-element map (embedding, projections,
        feed-forward) runs on the T real elements. A formula has 3.5 elements on average against 7
        slots, so this halves the work of ``nn.TransformerEncoder`` while computing the same function
        with the same parameters (post-norm layers, ReLU, dropout where the layer has it).
        """
        z, frac = elements[real], fractions[real]
        x = self.embed(self.element_vectors[z]) * 2 ** self.emb_scaler
        pe = torch.cat((self.frac_linear(frac), self.frac_log(frac)), dim=-1)
        x = x + pe * 2 ** (1 - self.pe_scaler) ** 2
        for layer in self.encoder.layers:
            x = _packed_encoder_layer(layer, x, real)
        return x

    def forward(self, elements: torch.Tensor, fractions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict (z1, S) for a batch of padded compositions."""
        real = elements != 0
        if elements.shape[1] == 0 or not bool(real.any(dim=1).all()):
            raise ValueError("Every composition needs at least one element (Z = 0 is padding).")
        p, u, logit = self.head(self.encode_packed(elements, fractions, real)).unbind(-1)
        formula = torch.arange(elements.shape[0], device=elements.device).unsqueeze(1).expand_as(real)[real]
        n = real.sum(dim=1).to(p.dtype)
        z1 = torch.zeros_like(n).index_add_(0, formula, p * torch.sigmoid(logit)) / n
        s = torch.zeros_like(n).index_add_(0, formula, u) / n
        return z1, s

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from a collated batch dict (keys ``elements``, ``fractions``)."""
        return self(batch["elements"], batch["fractions"])


def _packed_encoder_layer(layer: nn.TransformerEncoderLayer, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """``layer`` (post-norm, ReLU) applied to packed rows x [T, d] of the padded batch mask ``real`` [B, E]."""
    attn = layer.self_attn
    b, e = real.shape
    d, h = x.shape[-1], attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    padded = qkv.new_zeros(b, e, 3 * d)
    padded[real] = qkv
    q, k, v = padded.view(b, e, 3, h, d // h).permute(2, 0, 3, 1, 4)  # each [B, heads, E, d/heads]
    keep = real[:, None, None, :]  # padded keys get no attention
    drop = attn.dropout if layer.training else 0.0
    ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, dropout_p=drop)
    ctx = ctx.transpose(1, 2).reshape(b, e, d)[real]
    x = layer.norm1(x + layer.dropout1(attn.out_proj(ctx)))
    ff = layer.linear2(layer.dropout(F.relu(layer.linear1(x))))
    return layer.norm2(x + layer.dropout2(ff))
