"""Neural-network potential: symmetry functions -> one small network per element -> summed energy.

The loss is on the total energy (per atom); atomic energies are never labelled. Forces and stress
come from autograd through the torch descriptors, and :class:`PotentialCalculator` wraps the
potential as an ASE calculator so ASE optimizers (BFGS, FIRE, with a cell filter) relax with it.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from torch import nn

from gapkit.search.descriptors import (DescriptorParams, NeighbourGraph, SymmetryFunctionParams,
                                       build_neighbour_graph, descriptor_matrix)

log = logging.getLogger(__name__)

ACTIVATIONS = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU,
               "prelu": nn.PReLU}
# the eight weight-update rules of the paper's optimizer study (its Fig. 7), all from torch.optim
OPTIMIZERS = {"adadelta": torch.optim.Adadelta, "adam": torch.optim.Adam, "adamax": torch.optim.Adamax,
              "asgd": torch.optim.ASGD, "lbfgs": torch.optim.LBFGS, "rmsprop": torch.optim.RMSprop,
              "rprop": torch.optim.Rprop, "sgd": torch.optim.SGD}
DTYPE = torch.float64  # tiny model; float64 keeps finite-difference force checks and relaxations clean


@contextlib.contextmanager
def single_thread():
    """Run torch on one thread inside the block: for a few hundred weights, thread hand-offs cost
    more than the arithmetic (measured ~10x slower training with the default thread pool)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _mlp(n_in: int, hidden: tuple[int, ...], activation: str) -> nn.Sequential:
    """Fully connected net n_in -> hidden... -> 1 with the chosen activation."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}.")
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class NNPotential(nn.Module):
    """Behler–Parrinello potential: per-element networks on standardised descriptors (symmetry functions or Chebyshev)."""

    def __init__(self, species: list[int], params: DescriptorParams | None = None,
                 hidden: tuple[int, ...] = (10, 10), activation: str = "tanh") -> None:
        super().__init__()
        self.species = sorted(int(z) for z in species)
        self.params = params or SymmetryFunctionParams()
        self.activation = activation
        n_feat = self.params.n_features(len(self.species))
        self.nets = nn.ModuleList([_mlp(n_feat, hidden, activation) for _ in self.species])
        # Per-element descriptor standardisation and an energy offset/scale, set from training data.
        self.register_buffer("feat_mean", torch.zeros(len(self.species), n_feat))
        self.register_buffer("feat_std", torch.ones(len(self.species), n_feat))
        self.register_buffer("e_mean", torch.zeros(()))
        self.register_buffer("e_std", torch.ones(()))
        self.to(DTYPE)

    def species_index(self, numbers: np.ndarray) -> torch.Tensor:
        """Map atomic numbers to indices into ``self.species`` (error for unknown elements)."""
        lookup = {z: k for k, z in enumerate(self.species)}
        try:
            return torch.as_tensor([lookup[int(z)] for z in numbers], dtype=torch.long)
        except KeyError as err:
            raise ValueError(f"Element Z={err.args[0]} is not in this potential's species "
                             f"{self.species}.") from None

    def atomic_energies(self, desc: torch.Tensor, sp: torch.Tensor) -> torch.Tensor:
        """Energy of each atom (eV) from its raw descriptor row and species index."""
        x = (desc - self.feat_mean[sp]) / self.feat_std[sp]
        out = desc.new_zeros(desc.shape[0])
        for k, net in enumerate(self.nets):
            mask = sp == k
            if mask.any():
                out = out.index_put((mask.nonzero(as_tuple=True)[0],), net(x[mask]).squeeze(-1))
        return out * self.e_std + self.e_mean

    def energy(self, positions: torch.Tensor, cell: torch.Tensor, graph: NeighbourGraph) -> torch.Tensor:
        """Total energy (eV) of one structure, differentiable in positions and cell."""
        desc = descriptor_matrix(positions, cell, graph, self.species, self.params)
        return self.atomic_energies(desc, self.species_index(graph.numbers)).sum()

    def predict(self, atoms: Atoms) -> float:
        """Total energy (eV) of an ASE ``Atoms`` without gradients."""
        graph = build_neighbour_graph(atoms, self.params.r_cut)
        with torch.no_grad():
            return float(self.energy(torch.as_tensor(atoms.positions, dtype=DTYPE),
                                     torch.as_tensor(np.asarray(atoms.cell), dtype=DTYPE), graph))

    def predict_known(self, atoms: Atoms) -> float:
        """:meth:`predict` (the same number) for a structure whose descriptors are kept (training structures)."""
        desc = cached_descriptors(atoms, self.species, self.params)
        with torch.no_grad():
            return float(self.atomic_energies(desc, self.species_index(atoms.numbers)).sum())

    def energy_forces_stress(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray]:
        """Energy (eV), forces (eV/Å) and stress (eV/Å^3, 3x3) by autograd through a strain."""
        graph = build_neighbour_graph(atoms, self.params.r_cut)
        pos = torch.as_tensor(atoms.positions, dtype=DTYPE).requires_grad_(True)
        cell0 = torch.as_tensor(np.asarray(atoms.cell), dtype=DTYPE)
        strain = torch.zeros(3, 3, dtype=DTYPE, requires_grad=True)
        deform = torch.eye(3, dtype=DTYPE) + strain
        energy = self.energy(pos @ deform, cell0 @ deform, graph)
        d_pos, d_strain = torch.autograd.grad(energy, (pos, strain))
        volume = abs(float(np.linalg.det(atoms.cell)))
        stress = d_strain.detach().numpy() / volume
        return float(energy.detach()), -d_pos.detach().numpy(), 0.5 * (stress + stress.T)


class UnphysicalStructureError(RuntimeError):
    """A relaxation on the potential drove atoms together (the potential extrapolates there)."""


def _identical(a: Atoms, b: Atoms) -> bool:
    """Whether two Atoms have bit-identical arrays, cell and periodicity."""
    return (a.arrays.keys() == b.arrays.keys() and np.array_equal(a.cell.array, b.cell.array)
            and np.array_equal(a.pbc, b.pbc) and all(np.array_equal(v, b.arrays[k]) for k, v in a.arrays.items()))


class PotentialCalculator(Calculator):
    """ASE calculator around an :class:`NNPotential` (energy, forces, stress).

    It refuses structures whose atoms come closer than ``min_distance_factor`` x covalent radii: an
    imperfect potential can pull a cell into collapse, where neighbour lists explode.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, potential: NNPotential, min_distance_factor: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.potential = potential
        self.min_distance_factor = min_distance_factor

    def check_state(self, atoms: Atoms, tol: float = 1e-15) -> list[str]:
        """ASE's change check, answered at once when nothing changed at all."""
        # Why: an ASE optimizer asks for energy, forces and stress several times per step, and ASE's check
        # (np.allclose on every array) took about as long as the potential itself on these small cells.
        # Bit-identical atoms need no tolerance; anything else gets ASE's own comparison.
        if self.atoms is not None and _identical(self.atoms, atoms):
            return []
        return super().check_state(atoms, tol)

    def energy_of(self, atoms: Atoms) -> float | None:
        """The energy (eV) last computed, if it was computed for exactly ``atoms`` (else None)."""
        if self.atoms is None or "energy" not in self.results or not _identical(self.atoms, atoms):
            return None
        return float(self.results["energy"])

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes) -> None:
        """Fill ``self.results`` for the current atoms."""
        from gapkit.search.population import too_close

        super().calculate(atoms, properties, system_changes)
        if too_close(self.atoms, self.min_distance_factor):
            raise UnphysicalStructureError("atoms collapsed together during a potential relaxation")
        with single_thread():
            energy, forces, stress = self.potential.energy_forces_stress(self.atoms)
        voigt = stress[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": voigt}


@dataclass(frozen=True)
class TrainSettings:
    """Settings for fitting the potential (full-batch Adam with early stopping by default)."""

    hidden: tuple[int, ...] = (10, 10)
    activation: str = "tanh"
    lr: float = 1e-2
    optimizer: str = "adam"  # any key of OPTIMIZERS
    # structures per gradient step; None = all training structures (one step per epoch). The paper
    # used 1 (Si, TiO2) and 8 (CaTiO3); full batch is far faster here and the active loop refits often.
    batch_size: int | None = None
    max_epochs: int = 3000
    patience: int = 300
    val_fraction: float = 0.2
    weight_decay: float = 0.0
    params: DescriptorParams = field(default_factory=SymmetryFunctionParams)  # or ChebyshevParams
    # weight of the force term (mean squared force error in units of the training-force spread) beside
    # the energy term; 0 trains on energies alone, as the paper does. Forces come free with every
    # oracle single point (3N numbers besides the one energy).
    force_weight: float = 0.0
    stress_weight: float = 0.0  # the same for the stress (6 numbers per call; carries the cell's information)


@dataclass
class TrainHistory:
    """Per-epoch RMSE (eV/atom) on train and validation, and the best validation RMSE."""

    train_rmse: list[float]
    val_rmse: list[float]
    best_val_rmse: float
    best_epoch: int

    @property
    def min_loss(self) -> float:
        """Training RMSE (eV/atom) of the kept weights: the paper's ``min_loss`` in the ΔE filter."""
        return self.train_rmse[self.best_epoch]


# Descriptors of structures seen before, by content (numbers, positions, cell, species and parameters): the search
# refits on a training set that only grows and predicts its structures every round, so most rows are repeats.
# Bit-identical to computing them again (the same code on the same numbers); bounded by dropping the oldest.
_DESCRIPTOR_CACHE: dict[tuple, torch.Tensor] = {}
_DESCRIPTOR_CACHE_SIZE = 20_000


def _descriptor_key(atoms: Atoms, species: list[int], params: DescriptorParams) -> tuple:
    """What a structure's descriptors depend on, as a hashable key."""
    return (np.asarray(atoms.numbers).tobytes(), np.ascontiguousarray(atoms.positions, dtype=float).tobytes(),
            np.ascontiguousarray(atoms.cell.array, dtype=float).tobytes(), tuple(species), params)


def cached_descriptors(atoms: Atoms, species: list[int], params: DescriptorParams) -> torch.Tensor:
    """The (n_atoms, n_features) descriptors of ``atoms`` without gradients, computed once per structure."""
    key = _descriptor_key(atoms, species, params)
    desc = _DESCRIPTOR_CACHE.get(key)
    if desc is None:
        graph = build_neighbour_graph(atoms, params.r_cut)
        with torch.no_grad():
            desc = descriptor_matrix(torch.as_tensor(atoms.positions, dtype=DTYPE),
                                     torch.as_tensor(np.asarray(atoms.cell), dtype=DTYPE), graph, species, params)
        if len(_DESCRIPTOR_CACHE) >= _DESCRIPTOR_CACHE_SIZE:
            _DESCRIPTOR_CACHE.pop(next(iter(_DESCRIPTOR_CACHE)), None)
        _DESCRIPTOR_CACHE[key] = desc
    return desc


def _stack_descriptors(structures: list[Atoms], potential: NNPotential):
    """Descriptors of all atoms of all structures, with species and owning-structure index."""
    descs, sps, owner = [], [], []
    for k, atoms in enumerate(structures):
        descs.append(cached_descriptors(atoms, potential.species, potential.params))
        sps.append(potential.species_index(atoms.numbers))
        owner.append(torch.full((len(atoms),), k, dtype=torch.long))
    return torch.cat(descs), torch.cat(sps), torch.cat(owner)


def fit_potential(structures: list[Atoms], energies_ev: list[float], species: list[int],
                  settings: TrainSettings | None = None, seed: int = 0,
                  forces: list[np.ndarray | None] | None = None,
                  stresses: list[np.ndarray | None] | None = None) -> tuple[NNPotential, TrainHistory]:
    """Fit a fresh potential to total energies (and forces); return it (best-validation weights) and its history.

    With ``settings.force_weight > 0`` and ``forces`` (one [n_atoms, 3] array or None per structure) the
    loss adds the force error, and with ``settings.stress_weight > 0`` and ``stresses`` (3x3, eV/Å^3, ASE's
    sign) the stress error; the reported validation RMSE stays the energy's (eV/atom).

    A plain torch loop rather than gapkit.train.trainer.fit: the model has a few hundred weights,
    the data are a few hundred structures whose descriptors are computed once and fit in memory,
    and it is refitted every active-learning cycle inside worker processes — Lightning's per-fit
    setup, checkpoint folders and logging would cost more than the training itself.
    """
    settings = settings or TrainSettings()
    if len(structures) != len(energies_ev) or len(structures) < 2:
        raise ValueError(f"Need at least 2 structures with one energy each, got "
                         f"{len(structures)} structures and {len(energies_ev)} energies.")
    for name, values in (("force", forces), ("stress", stresses)):
        if values is not None and len(values) != len(structures):
            raise ValueError(f"Got {len(values)} {name} arrays for {len(structures)} structures.")
    if settings.optimizer not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {settings.optimizer!r}; choose one of {sorted(OPTIMIZERS)}.")
    if settings.batch_size is not None and settings.batch_size < 1:
        raise ValueError(f"batch_size must be a positive number of structures or None, got {settings.batch_size}.")
    if settings.batch_size is not None and (settings.force_weight or settings.stress_weight):
        raise ValueError("Force and stress labels are fitted full-batch; set batch_size=None.")
    with single_thread():
        return _fit(structures, energies_ev, species, settings, seed, forces, stresses)


class _GradientLabels:
    """Predicted forces and stresses of all training structures from dE/d(descriptor).

    The descriptors depend on positions and cell only through the structure, never through the weights,
    so each structure's Jacobians d(desc)/d(positions) and d(desc)/d(strain) are computed once; per epoch
    ``F_j = -sum_if dE/d(desc_if) d(desc_if)/d(r_j)`` and ``sigma = (1/V) sum_if dE/d(desc_if)
    d(desc_if)/d(strain)`` are two contractions (structures padded to the largest one). A label that is
    missing (None) is masked out of the loss.
    """

    def __init__(self, structures: list[Atoms], forces: list | None, stresses: list | None,
                 pot: NNPotential, owner: torch.Tensor) -> None:
        n_s, n_max = len(structures), max(len(a) for a in structures)
        n_feat = pot.params.n_features(len(pot.species))
        forces = forces if forces is not None else [None] * n_s
        stresses = stresses if stresses is not None else [None] * n_s
        self.jac_pos = torch.zeros(n_s, n_max, n_feat, n_max, 3, dtype=DTYPE)
        self.jac_strain = torch.zeros(n_s, n_max, n_feat, 3, 3, dtype=DTYPE)
        self.forces = torch.zeros(n_s, n_max, 3, dtype=DTYPE)
        self.stresses = torch.zeros(n_s, 3, 3, dtype=DTYPE)
        self.has_forces = torch.zeros(n_s, n_max, dtype=torch.bool)
        self.has_stress = torch.zeros(n_s, dtype=torch.bool)
        self.volume = torch.ones(n_s, dtype=DTYPE)
        for k, atoms in enumerate(structures):
            if forces[k] is None and stresses[k] is None:
                continue
            graph = build_neighbour_graph(atoms, pot.params.r_cut)
            pos0 = torch.as_tensor(atoms.positions, dtype=DTYPE)
            cell0 = torch.as_tensor(np.asarray(atoms.cell), dtype=DTYPE)

            def desc_of(pos, strain, graph=graph, pos0=pos0, cell0=cell0):
                deform = torch.eye(3, dtype=DTYPE) + strain
                return descriptor_matrix(pos @ deform, cell0 @ deform, graph, pot.species, pot.params)

            jac_pos, jac_strain = torch.autograd.functional.jacobian(
                desc_of, (pos0, torch.zeros(3, 3, dtype=DTYPE)), vectorize=True)
            n = len(atoms)
            self.jac_pos[k, :n, :, :n] = jac_pos
            self.jac_strain[k, :n] = jac_strain
            self.volume[k] = abs(float(np.linalg.det(atoms.cell)))
            if forces[k] is not None:
                self.forces[k, :n] = torch.as_tensor(np.asarray(forces[k], dtype=np.float64))
                self.has_forces[k, :n] = True
            if stresses[k] is not None:
                self.stresses[k] = torch.as_tensor(np.asarray(stresses[k], dtype=np.float64))
                self.has_stress[k] = True
        self.owner = owner
        self.slot = torch.cat([torch.arange(len(a)) for a in structures])
        self.n_max = n_max

    def predict(self, grad_desc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forces [S, n_max, 3] and stresses [S, 3, 3] from per-atom dE/d(descriptor)."""
        padded = grad_desc.new_zeros(self.jac_pos.shape[0], self.n_max, grad_desc.shape[1])
        padded = padded.index_put((self.owner, self.slot), grad_desc)
        forces = -torch.einsum("sif,sifjc->sjc", padded, self.jac_pos)
        virial = torch.einsum("sif,sifab->sab", padded, self.jac_strain)
        stress = virial / self.volume[:, None, None]
        return forces, 0.5 * (stress + stress.transpose(1, 2))


def make_optimizer(settings: TrainSettings, parameters) -> torch.optim.Optimizer:
    """The torch optimizer named by ``settings.optimizer`` at ``settings.lr``."""
    kwargs = {"lr": settings.lr}
    if settings.weight_decay:
        if settings.optimizer in ("lbfgs", "rprop"):
            raise ValueError(f"{settings.optimizer} takes no weight decay.")
        kwargs["weight_decay"] = settings.weight_decay
    return OPTIMIZERS[settings.optimizer](parameters, **kwargs)


def _minibatch_epoch(pot: NNPotential, opt: torch.optim.Optimizer, desc: torch.Tensor, sp: torch.Tensor,
                     owner: torch.Tensor, n_atoms: torch.Tensor, target: torch.Tensor, train_idx: torch.Tensor,
                     batch_size: int, generator: torch.Generator) -> None:
    """One pass over the training structures in shuffled batches of ``batch_size`` structures."""
    # first atom row of each structure (rows are grouped by structure, in order)
    starts = torch.cat([owner.new_zeros(1), torch.cumsum(n_atoms.long(), 0)])
    order = train_idx[torch.randperm(len(train_idx), generator=generator)]
    for batch in order.split(batch_size):
        rows = torch.cat([torch.arange(int(starts[b]), int(starts[b + 1])) for b in batch])

        def closure(batch=batch, rows=rows):
            opt.zero_grad()
            e_atom = pot.atomic_energies(desc[rows], sp[rows])
            per_atom = desc.new_zeros(len(n_atoms)).index_add(0, owner[rows], e_atom)[batch] / n_atoms[batch]
            loss = ((per_atom - target[batch]) ** 2).mean() / pot.e_std ** 2
            loss.backward()
            return loss

        opt.step(closure)


def _snapshot(pot: NNPotential) -> dict[str, torch.Tensor]:
    """A copy of the potential's weights and buffers (what ``copy.deepcopy(state_dict())`` gave, cheaper)."""
    return {k: v.detach().clone() for k, v in pot.state_dict().items()}


def _masked_mse(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the labelled entries (0 when there are none)."""
    return (err[mask] ** 2).mean() if mask.any() else err.new_zeros(())


def _fit(structures: list[Atoms], energies_ev: list[float], species: list[int],
         settings: TrainSettings, seed: int, forces: list | None = None,
         stresses: list | None = None) -> tuple[NNPotential, TrainHistory]:
    """Body of :func:`fit_potential` (runs single-threaded)."""
    torch.manual_seed(seed)
    pot = NNPotential(species, settings.params, settings.hidden, settings.activation)
    desc, sp, owner = _stack_descriptors(structures, pot)
    w_f = settings.force_weight if forces is not None and any(f is not None for f in forces) else 0.0
    w_s = settings.stress_weight if stresses is not None and any(x is not None for x in stresses) else 0.0
    labels = _GradientLabels(structures, forces if w_f else None, stresses if w_s else None, pot, owner) \
        if (w_f or w_s) else None
    n_atoms = torch.bincount(owner, minlength=len(structures)).to(DTYPE)
    target = torch.as_tensor(np.asarray(energies_ev, dtype=np.float64)) / n_atoms  # eV/atom
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(structures))
    n_val = max(1, int(round(settings.val_fraction * len(structures))))
    val_idx = torch.as_tensor(np.sort(perm[:n_val]))
    train_idx = torch.as_tensor(np.sort(perm[n_val:]))
    train_mask = torch.isin(owner, train_idx)
    for k in range(len(pot.species)):  # per-element standardisation on training atoms only
        rows = desc[train_mask & (sp == k)]
        if len(rows):
            pot.feat_mean[k] = rows.mean(0)
            pot.feat_std[k] = rows.std(0, unbiased=False).clamp_min(1e-6)
    pot.e_mean.fill_(float(target[train_idx].mean()))
    pot.e_std.fill_(float(target[train_idx].std(unbiased=False).clamp_min(1e-3)))
    if labels is not None:
        in_train = torch.zeros(len(structures), dtype=torch.bool)
        in_train[train_idx] = True
        f_mask = {"train": labels.has_forces & in_train[:, None], "val": labels.has_forces & ~in_train[:, None]}
        s_mask = {"train": labels.has_stress & in_train, "val": labels.has_stress & ~in_train}
        # each label type in units of its spread over the training set, so the weights are comparable
        f_scale = float(labels.forces[f_mask["train"]].std().clamp_min(1e-2)) if f_mask["train"].any() else 1.0
        s_scale = float(labels.stresses[s_mask["train"]].std().clamp_min(1e-4)) if s_mask["train"].any() else 1.0
        desc.requires_grad_(True)
    opt = make_optimizer(settings, pot.parameters())
    best, best_epoch, best_state = float("inf"), -1, _snapshot(pot)
    hist_tr, hist_va = [], []
    best_score = float("inf")
    minibatch = settings.batch_size is not None and settings.batch_size < len(train_idx)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(settings.max_epochs):
        if minibatch:
            _minibatch_epoch(pot, opt, desc, sp, owner, n_atoms, target, train_idx, settings.batch_size, generator)
            with torch.no_grad():
                e_atom = pot.atomic_energies(desc, sp)
                err = torch.zeros(len(structures), dtype=DTYPE).index_add(0, owner, e_atom) / n_atoms - target
            val_extra = 0.0
        else:
            seen: dict[str, object] = {}

            def closure():
                # full batch: the errors of this forward (before the step) go into the history; LBFGS
                # calls the closure several times per step and the last call's errors are kept
                opt.zero_grad()
                e_atom = pot.atomic_energies(desc, sp)
                per_atom = torch.zeros(len(structures), dtype=DTYPE).index_add(0, owner, e_atom) / n_atoms
                err = per_atom - target
                loss = (err[train_idx] ** 2).mean() / pot.e_std ** 2
                val_extra = 0.0
                if labels is not None:
                    grad_desc, = torch.autograd.grad(e_atom.sum(), desc, create_graph=True)
                    f_pred, s_pred = labels.predict(grad_desc)
                    f_err, s_err = (f_pred - labels.forces) / f_scale, (s_pred - labels.stresses) / s_scale
                    loss = loss + w_f * _masked_mse(f_err, f_mask["train"]) + w_s * _masked_mse(s_err, s_mask["train"])
                    # a few validation energies alone make a noisy stopping signal: stop on the same mix
                    val_extra = float(w_f * _masked_mse(f_err.detach(), f_mask["val"])
                                      + w_s * _masked_mse(s_err.detach(), s_mask["val"]))
                loss.backward()
                seen.update(err=err.detach(), val_extra=val_extra)
                return loss

            opt.step(closure)
            err, val_extra = seen["err"], seen["val_extra"]
        tr = float(err[train_idx].pow(2).mean().sqrt())
        va = float(err[val_idx].pow(2).mean().sqrt())
        hist_tr.append(tr)
        hist_va.append(va)
        score = va if labels is None else va ** 2 / float(pot.e_std) ** 2 + val_extra
        if score < best_score - 1e-6:
            best_score, best, best_epoch, best_state = score, va, epoch, _snapshot(pot)
        elif epoch - best_epoch >= settings.patience:
            break
    pot.load_state_dict(best_state)
    log.info("potential fit: %d structures, best val RMSE %.4f eV/atom at epoch %d",
             len(structures), best, best_epoch)
    return pot, TrainHistory(hist_tr, hist_va, best, best_epoch)
