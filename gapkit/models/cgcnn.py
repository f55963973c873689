"""CGCNN (Xie & Grossman, PRL 120, 145301, 2018), the structure branch of CGCrabNet.

Nodes start from a fixed atom vector (CGCNN's 92-d ``atom_init``, or a one-hot of Z) mapped by a linear
layer to the node size (16 in CGCrabNet, 64 in CGCNN). T gated convolutions update every atom i from
its neighbours j:

    z_ij = v_i ⊕ v_j [⊕ g(d_ij)]           (g: Gaussian expansion of the distance, optional)
    v_i <- softplus(v_i + BN(Σ_j sigmoid(z_ij W_f + b_f) ⊙ softplus(z_ij W_s + b_s)))

then a mean over the atoms of each crystal, softplus, fully connected layers and two outputs: the gap
z2 and a log-scale S2 for the Laplace loss. Sums over neighbours and atoms use ``index_add`` on a
batch of concatenated graphs (see ``gapkit.featurize.graphs.collate_graphs``).

``readout="linear"`` is the paper's interpretable variant: each atom's final vector v_i is mapped by one
linear layer to its own two outputs (z_i, S_i), and the crystal's outputs are their means. The prediction
is then exactly the mean of per-site contributions (``site_outputs``; in target units
``gapkit.evaluate.site_contributions``). The same two outputs read as two logits (semiconductor, metal)
train a classifier with softmax and cross-entropy (``gapkit.train.tasks.MetalTask``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gapkit.featurize.graphs import DEFAULT_CUTOFF


def atom_init_table(name: str = "atom_init", max_z: int = 103) -> np.ndarray:
    """float32[max_z+1, d] node input vectors by Z: CGCNN's ``atom_init`` (92-d) or ``onehot`` (Z one-hot)."""
    if name == "onehot":
        table = np.eye(max_z + 1, dtype=np.float32)
        table[0] = 0.0
        return table
    if name != "atom_init":
        raise ValueError(f"node_features must be 'atom_init' or 'onehot', got {name!r}.")
    from gapkit.data import load_cgcnn_atom_init

    df = load_cgcnn_atom_init()
    table = np.zeros((max_z + 1, df.shape[1]), dtype=np.float32)
    for z, row in zip(df.index, df.to_numpy(dtype=np.float32)):
        if z <= max_z:
            table[z] = row
    return table


class GaussianDistance(nn.Module):
    """Expand a distance d into exp(-(d - mu_k)^2 / step^2) on a grid mu_k from 0 to the cutoff."""

    def __init__(self, d_max: float = DEFAULT_CUTOFF, step: float = 0.2) -> None:
        super().__init__()
        self.register_buffer("centres", torch.arange(0.0, d_max + step / 2, step), persistent=False)
        self.step = step

    @property
    def size(self) -> int:
        """Number of Gaussians."""
        return int(self.centres.shape[0])

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        """[E] distances -> [E, size] expansion; terms below exp(-50) ≈ 2e-22 are exactly 0."""
        if d.requires_grad:
            return torch.exp(-((d.unsqueeze(-1) - self.centres) ** 2) / self.step**2)
        # Why zeros: far Gaussians would be denormal floats (|d - mu| ≈ 1.9-2 Å) or underflow, which makes
        # both exp and the edge matrix products several times slower on x86; a 2e-22 term is far below float32
        # rounding of the O(1) nearest terms, so the products are the same. In place: one [E, size] tensor.
        x = d.unsqueeze(-1) - self.centres
        x.square_().div_(self.step**2).clamp_(max=50.0).neg_().exp_()
        return F.threshold_(x, 2e-22, 0.0)


class GatedConv(nn.Module):
    """One CGCNN gated graph convolution.

    ``[v_i ⊕ v_j ⊕ e_ij] W`` is computed as ``v_i W_i + v_j W_j + e_ij W_e``: the same linear map, but the
    node terms are multiplied once per atom instead of once per edge (12x fewer rows). When every atom has
    exactly ``k`` incoming edges stored centre by centre (the usual case: 12 neighbours within 8 Å), the
    centre term is broadcast and the neighbour sum is a reshape-and-sum instead of a gather and a scatter.
    In eval mode the edge batch norm is folded into the three linear maps (one pass over the edges less).
    With ``fused`` (see ``use_fused_edges``), training on a CPU with k-regular edges runs the compiled kernels
    of ``gapkit.models.fused_edges``: the same function and gradients without storing any [edges x 2F] tensor.
    """

    def __init__(self, node_dim: int, edge_dim: int, batch_norm: bool = True, fused: bool = False) -> None:
        super().__init__()
        self.fc_centre = nn.Linear(node_dim, 2 * node_dim)
        self.fc_neighbour = nn.Linear(node_dim, 2 * node_dim, bias=False)
        self.fc_edge = nn.Linear(edge_dim, 2 * node_dim, bias=False) if edge_dim else None
        self.bn_in = nn.BatchNorm1d(2 * node_dim) if batch_norm else nn.Identity()
        self.bn_out = nn.BatchNorm1d(node_dim) if batch_norm else nn.Identity()
        self.fused = fused

    def _folded(self) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(scale, shift) of the eval-mode input batch norm, or (None, None) when it must run as a layer."""
        bn = self.bn_in
        if self.training or not isinstance(bn, nn.BatchNorm1d) or not bn.track_running_stats:
            return None, None
        scale = torch.rsqrt(bn.running_var + bn.eps)
        shift = -bn.running_mean * scale
        if bn.affine:
            scale, shift = scale * bn.weight, shift * bn.weight + bn.bias
        return scale, shift

    def fuses(self, v: torch.Tensor, k: int | None) -> bool:
        """Whether a call on node vectors ``v`` with ``k`` edges per atom (None: irregular) runs the fused kernels."""
        return bool(self.fused and self.training and k is not None and v.device.type == "cpu"
                    and isinstance(self.bn_in, nn.BatchNorm1d))

    def forward(self, v: torch.Tensor, src: torch.Tensor, dst: torch.Tensor, edge_attr: torch.Tensor | None,
                k: int | None = None, edge_row: torch.Tensor | None = None) -> torch.Tensor:
        """Update node vectors v [N, F] from edges src -> dst with edge features ``edge_attr`` [E, d] (or None;
        with ``edge_row`` [E], one row per distinct bond, edge e reading row ``edge_row[e]``)."""
        if self.fuses(v, k):
            agg = self._fused_messages(v, src, edge_attr, k, edge_row)
        else:
            if edge_row is not None and edge_attr is not None:
                edge_attr = edge_attr.index_select(0, edge_row)
            agg = self._messages(v, src, dst, edge_attr, k)
        return F.softplus(v + self.bn_out(agg).to(v.dtype))

    def _edge_linears(self, v: torch.Tensor, edge_attr: torch.Tensor | None, scale: torch.Tensor | None = None,
                      shift: torch.Tensor | None = None):
        """(centre, neighbour, edge) terms (edge: None without edge features), with an eval-mode batch norm's
        ``scale``/``shift`` folded in when given."""
        w_c, b_c, w_n = self.fc_centre.weight, self.fc_centre.bias, self.fc_neighbour.weight
        if scale is not None:
            w_c, b_c, w_n = w_c * scale[:, None], b_c * scale + shift, w_n * scale[:, None]
        edge = None
        if self.fc_edge is not None and edge_attr is not None:
            edge = F.linear(edge_attr, self.fc_edge.weight)
            edge = edge * scale if scale is not None else edge
        return F.linear(v, w_c, b_c), F.linear(v, w_n), edge

    def _messages(self, v, src, dst, edge_attr, k):
        """Layer by layer: z per edge, batch norm, gates, sum over each atom's neighbours."""
        scale, shift = self._folded()
        centre, neighbour, edge_term = self._edge_linears(v, edge_attr, scale, shift)
        # index_select, not v[idx]: the same gather, several times faster on CPU for large index vectors
        z = neighbour.index_select(0, src)
        if edge_term is not None:
            z = z + edge_term.to(z.dtype)
        n, width = v.shape[0], z.shape[1]
        if k is not None:
            z = (z.view(n, k, width) + centre.unsqueeze(1)).view(n * k, width)
        else:
            z = z + centre.index_select(0, dst)
        if scale is None:
            z = self.bn_in(z)
        filt, core = z.chunk(2, dim=-1)
        msg = torch.sigmoid(filt) * F.softplus(core)
        if k is not None:
            return msg.view(n, k, -1).sum(1)
        return torch.zeros(n, msg.shape[1], dtype=msg.dtype, device=msg.device).index_add_(0, dst, msg)

    def _fused_messages(self, v, src, edge_attr, k, edge_row=None):
        """The same messages in training mode without storing z or its gates (see fused_edges)."""
        from gapkit.models.fused_edges import fused_gated_edge_sum

        centre, neighbour, _ = self._edge_linears(v, None)
        if self.fc_edge is None or edge_attr is None:
            return fused_gated_edge_sum(neighbour, centre, None, None, src, k, self.bn_in)
        # the edge map runs inside, where its weight gradient is computed the faster way round
        return fused_gated_edge_sum(neighbour, centre, edge_attr, self.fc_edge.weight, src, k, self.bn_in, edge_row)


def use_fused_edges(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Switch every CGCNN convolution of ``model`` to (or from) the fused CPU training kernels."""
    for module in model.modules():
        if isinstance(module, GatedConv):
            module.fused = enabled
    return model


def distinct_rows(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distinct values, row of each entry in them) of a CPU vector (NumPy's unique: ~2x faster than torch's)."""
    distinct, row = np.unique(values.detach().numpy(), return_inverse=True)
    return torch.from_numpy(distinct), torch.from_numpy(row.reshape(-1).astype(np.int64, copy=False))


def regular_degree(edge_dst: torch.Tensor, n_nodes: int) -> int | None:
    """k when the edges come centre by centre with exactly k per node (0,..,0,1,..,1,...), else None."""
    if n_nodes == 0 or edge_dst.numel() % n_nodes:
        return None
    k = edge_dst.numel() // n_nodes
    expected = torch.arange(n_nodes, device=edge_dst.device).repeat_interleave(k)
    return k if torch.equal(edge_dst, expected) else None


def mean_pool(x: torch.Tensor, crystal: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
    """Mean of node vectors per crystal: [N, F] -> [B, F]."""
    out = torch.zeros(n_atoms.shape[0], x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, crystal, x)
    return out / n_atoms.clamp(min=1).unsqueeze(-1).to(x.dtype)


READOUTS = ("mean", "linear")


class CGCNNModel(nn.Module):
    """Crystal graph network: a batch of graphs -> (gap z2 [B], log-scale S2 [B])."""

    def __init__(self, atom_vectors: np.ndarray | torch.Tensor, node_dim: int = 64, n_conv: int = 3,
                 hidden_dim: int = 128, n_hidden: int = 1, use_distance: bool = True,
                 cutoff: float = DEFAULT_CUTOFF, gaussian_step: float = 0.2, batch_norm: bool = True,
                 readout: str = "mean") -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS} ('mean': pooled vector + fully connected head; "
                             f"'linear': one scalar per site, averaged), got {readout!r}.")
        self.readout = readout
        table = torch.as_tensor(np.asarray(atom_vectors), dtype=torch.float32)
        self.register_buffer("atom_vectors", table)  # fixed input features, saved with the model
        self.embed = nn.Linear(table.shape[1], node_dim)
        self.expand = GaussianDistance(cutoff, gaussian_step) if use_distance else None
        edge_dim = self.expand.size if self.expand is not None else 0
        self.convs = nn.ModuleList(GatedConv(node_dim, edge_dim, batch_norm) for _ in range(n_conv))
        if readout == "linear":
            self.site_out = nn.Linear(node_dim, 2)  # v_i -> (z_i, S_i); no hidden layers, so sites stay additive
        else:
            sizes = [node_dim] + [hidden_dim] * n_hidden
            self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
            self.out = nn.Linear(sizes[-1], 2)

    def node_vectors(self, atomic_numbers: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                     distances: torch.Tensor) -> torch.Tensor:
        """Atom vectors after the convolutions, [N, node_dim]."""
        v = self.embed(self.atom_vectors.index_select(0, atomic_numbers))
        k = regular_degree(edge_dst, v.shape[0])
        edge_attr = edge_row = None
        if self.expand is not None:
            if not distances.requires_grad and any(conv.fuses(v, k) for conv in self.convs):
                # the edge features depend on the bond length alone: expand each distinct length once
                distances, edge_row = distinct_rows(distances)
            edge_attr = self.expand(distances)
        for conv in self.convs:
            v = conv(v, edge_src, edge_dst, edge_attr, k, edge_row)
        return v

    def embed_crystals(self, atomic_numbers: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                       distances: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        """Pooled crystal vectors after the convolutions, [B, node_dim]."""
        v = self.node_vectors(atomic_numbers, edge_src, edge_dst, distances)
        return F.softplus(mean_pool(v, _crystal_index(n_atoms), n_atoms))

    def site_outputs(self, atomic_numbers: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                     distances: torch.Tensor) -> torch.Tensor:
        """Per-site outputs (z_i, S_i), [N, 2], of the linear readout (the crystal's outputs are their means)."""
        if self.readout != "linear":
            raise ValueError("Per-site outputs exist only for readout='linear': the 'mean' readout mixes the sites "
                             "in its fully connected layers. Train a CGCNN with readout='linear'.")
        return self.site_out(self.node_vectors(atomic_numbers, edge_src, edge_dst, distances))

    def outputs(self, atomic_numbers: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                distances: torch.Tensor, n_atoms: torch.Tensor) -> torch.Tensor:
        """The two raw outputs per crystal, [B, 2]: (z2, S2) for regression, or two class logits."""
        if self.readout == "linear":
            sites = self.site_outputs(atomic_numbers, edge_src, edge_dst, distances)
            return mean_pool(sites, _crystal_index(n_atoms), n_atoms)
        h = self.embed_crystals(atomic_numbers, edge_src, edge_dst, distances, n_atoms)
        for fc in self.fcs:
            h = F.softplus(fc(h))
        return self.out(h)

    def forward(self, atomic_numbers: torch.Tensor, edge_src: torch.Tensor, edge_dst: torch.Tensor,
                distances: torch.Tensor, n_atoms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict (z2, S2) for a batch of concatenated graphs."""
        z2, s2 = self.outputs(atomic_numbers, edge_src, edge_dst, distances, n_atoms).unbind(-1)
        return z2, s2

    def outputs_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The two raw outputs per crystal, [B, 2], from a collated batch dict (class logits for MetalTask)."""
        return self.outputs(batch["atomic_numbers"], batch["edge_src"], batch["edge_dst"], batch["distances"],
                            batch["n_atoms"])

    def site_outputs_batch(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-site outputs [N, 2] from a collated batch dict (``readout='linear'`` only)."""
        return self.site_outputs(batch["atomic_numbers"], batch["edge_src"], batch["edge_dst"], batch["distances"])

    def forward_batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Predict from a collated batch dict (the keys of ``collate_graphs``)."""
        return self(batch["atomic_numbers"], batch["edge_src"], batch["edge_dst"], batch["distances"],
                    batch["n_atoms"])


def _crystal_index(n_atoms: torch.Tensor) -> torch.Tensor:
    """Crystal number of every atom of a batch, [N]."""
    return torch.repeat_interleave(torch.arange(n_atoms.shape[0], device=n_atoms.device), n_atoms)


def from_original_checkpoint(checkpoint: dict, atom_vectors: np.ndarray | None = None) -> CGCNNModel:
    """A CGCNNModel with the weights of an original CGCNN checkpoint (``gapkit.data.load_cgcnn_checkpoint``).

    The original ConvLayer's ``fc_full`` acts on [v_i, v_j, e_ij]; its weight splits into our centre,
    neighbour and edge maps; ``bn1``/``bn2`` are our ``bn_in``/``bn_out``; ``conv_to_fc`` + ``fcs`` + ``fc_out``
    are our fully connected head. Distances: Gaussians from 0 to 8 Å every 0.2 Å, 12 neighbours (the original's).
    """
    state, args = checkpoint.get("state_dict"), checkpoint.get("args")
    if not isinstance(state, dict) or args is None or "embedding.weight" not in state:
        raise ValueError("Not an original CGCNN checkpoint: expected 'state_dict' with 'embedding.weight' and 'args' "
                         "(load one with gapkit.data.load_cgcnn_checkpoint).")
    args = args if isinstance(args, dict) else vars(args)
    node_dim, n_conv = int(args["atom_fea_len"]), int(args["n_conv"])
    hidden_dim, n_hidden = int(args["h_fea_len"]), int(args["n_h"])
    table = atom_init_table("atom_init") if atom_vectors is None else atom_vectors
    model = CGCNNModel(table, node_dim=node_dim, n_conv=n_conv, hidden_dim=hidden_dim, n_hidden=n_hidden,
                       use_distance=True, cutoff=8.0, gaussian_step=0.2)
    ours: dict[str, torch.Tensor] = {"embed.weight": state["embedding.weight"], "embed.bias": state["embedding.bias"]}
    for i in range(n_conv):
        w, b = state[f"convs.{i}.fc_full.weight"], state[f"convs.{i}.fc_full.bias"]
        ours[f"convs.{i}.fc_centre.weight"] = w[:, :node_dim]
        ours[f"convs.{i}.fc_centre.bias"] = b
        ours[f"convs.{i}.fc_neighbour.weight"] = w[:, node_dim:2 * node_dim]
        ours[f"convs.{i}.fc_edge.weight"] = w[:, 2 * node_dim:]
        for old, new in (("bn1", "bn_in"), ("bn2", "bn_out")):
            for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
                key = f"convs.{i}.{old}.{name}"
                if key in state:
                    ours[f"convs.{i}.{new}.{name}"] = state[key]
    ours["fcs.0.weight"], ours["fcs.0.bias"] = state["conv_to_fc.weight"], state["conv_to_fc.bias"]
    for j in range(1, n_hidden):
        ours[f"fcs.{j}.weight"], ours[f"fcs.{j}.bias"] = state[f"fcs.{j - 1}.weight"], state[f"fcs.{j - 1}.bias"]
    ours["out.weight"], ours["out.bias"] = state["fc_out.weight"], state["fc_out.bias"]
    missing, unexpected = model.load_state_dict(ours, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked") and k != "atom_vectors"]
    if missing or unexpected:
        raise ValueError(f"Checkpoint does not match CGCNN's layout: missing {missing}, unexpected {unexpected}.")
    return model.eval()
