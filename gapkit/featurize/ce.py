"""Center-environment (CE) features of the A and B sites of AB_nX_m oxides (Li et al., npj Comput. Mater. 2023).

A site is described twice: by its own element (the **center**) and by the atoms around it (the
**environment**). The environment comes from a real or prototype crystal structure: the neighbours of
every site of a role (A, B or X) are found with pymatgen's neighbour list and grouped into two shells,

* the anion shell: the X atoms up to ``anion_shell_tolerance`` x the nearest X distance (spinel A: 4 O,
  spinel B: 6 O, perovskite A: 12 O, perovskite B: 6 O);
* the cation shell: the A/B atoms up to ``cation_shell_tolerance`` x the nearest cation distance
  (spinel A: 12 B + 4 A, spinel B: 6 B + 6 A, perovskite A: 8 B + 6 A, perovskite B: 8 A + 6 B).

Each shell contributes its size, its mean distance and the count-weighted mean of its atoms' element
properties. So one fixed-length vector describes a spinel AB2O4 and a perovskite ABO3 alike, and the
two structure types differ in it (coordination numbers, distances, which partner sits how often in
which shell): a single network can read both, which is what transfer across structures needs.

Element properties are the 37 of the authors' table (``gapkit.data.load_li2023_element_properties``)
plus the Shannon ionic radius of the element in the site's coordination (pymatgen; the mean over the
oxidation states the table lists at that coordination). Missing values raise a specific error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from gapkit.featurize.perovskite_factors import ROMAN, ShannonRadiusError, shannon_entries

ROLES = ("A", "B")


class MissingPropertyError(KeyError):
    """An element lacks a property value that the CE featurizer needs."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Prototype:
    """A structure whose sites carry roles ('A', 'B', 'X'); the elements are filled in per compound."""

    name: str
    structure: object  # pymatgen Structure; its species only serve to build it
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.roles) != len(self.structure):
            raise ValueError(f"{self.name}: {len(self.roles)} roles for {len(self.structure)} sites.")
        if not {"A", "B", "X"} <= set(self.roles):
            raise ValueError(f"{self.name}: a prototype needs A, B and X sites, got roles {sorted(set(self.roles))}.")


def spinel_prototype(a: float = 8.17073, u: float = 0.3875) -> Prototype:
    """Normal spinel AB2O4, Fd-3m (origin choice 1): A tetrahedral on 8a, B octahedral on 16d, O on 32e (u,u,u)."""
    from pymatgen.core import Lattice, Structure

    # a = the authors' template cell; u = 0.3875 (0.2625 in origin choice 2), a typical oxide spinel
    s = Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["Mg", "Al", "O"], [[0, 0, 0], [0.625] * 3, [u] * 3])
    roles = tuple({"Mg": "A", "Al": "B", "O": "X"}[site.specie.symbol] for site in s)
    return Prototype("spinel", s, roles)


def perovskite_prototype(a: float = 3.905) -> Prototype:
    """Cubic perovskite ABO3, Pm-3m: A 12-coordinated at the body centre, B octahedral at the corner."""
    from pymatgen.core import Lattice, Structure

    s = Structure(Lattice.cubic(a), ["Sr", "Ti", "O", "O", "O"],
                  [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]])
    return Prototype("perovskite", s, ("A", "B", "X", "X", "X"))


def prototype_from_structure(structure, a: str, b: str, x: str = "O", name: str = "structure") -> Prototype:
    """Label the sites of a real structure by role: element ``a`` -> A, ``b`` -> B, ``x`` -> X."""
    if a == b:
        raise ValueError("a real structure with A = B has no way to tell the two sites apart; use a prototype.")
    mapping = {a: "A", b: "B", x: "X"}
    roles = []
    for site in structure:
        symbol = site.specie.symbol
        if symbol not in mapping:
            raise ValueError(f"{name}: site of {symbol} is none of A={a}, B={b}, X={x}.")
        roles.append(mapping[symbol])
    return Prototype(name, structure, tuple(roles))


@dataclass(frozen=True)
class Shell:
    """One coordination shell of a role: how many atoms of each role, and their mean distance (Å)."""

    counts: dict[str, float]
    mean_distance: float

    @property
    def size(self) -> float:
        """Number of atoms in the shell (averaged over the sites of the role)."""
        return float(sum(self.counts.values()))


@dataclass(frozen=True)
class CEConfig:
    """What the CE vector holds: element properties, shell tolerances, Shannon radius handling."""

    properties: tuple[str, ...] | None = None  # None: every column of the element table
    shannon_radius: bool = True
    radius_fallback: Literal["raise", "nearest"] = "raise"
    anion_shell_tolerance: float = 1.25
    cation_shell_tolerance: float = 1.2
    cutoff: float = 6.0  # Å; wide enough for both shells of oxides

    def __post_init__(self) -> None:
        if self.radius_fallback not in ("raise", "nearest"):
            raise ValueError(f"radius_fallback must be 'raise' or 'nearest', got {self.radius_fallback!r}.")
        if self.anion_shell_tolerance < 1 or self.cation_shell_tolerance < 1:
            raise ValueError("shell tolerances are factors on the nearest distance and must be >= 1.")


def role_shells(prototype: Prototype, config: CEConfig = CEConfig()) -> dict[str, tuple[Shell, Shell]]:
    """(anion shell, cation shell) of the A and B roles of a prototype, averaged over its sites of that role."""
    s = prototype.structure
    centers, neighbors, _, distances = s.get_neighbor_list(config.cutoff)
    roles = np.array(prototype.roles)
    out = {}
    for role in ROLES:
        sites = np.flatnonzero(roles == role)
        anion, cation = [], []
        for i in sites:
            mask = centers == i
            nb_roles, nb_d = roles[neighbors[mask]], distances[mask]
            is_x = nb_roles == "X"
            if not is_x.any() or is_x.all():
                raise ValueError(f"{prototype.name}: site {i} ({role}) has no anion or no cation within "
                                 f"{config.cutoff} Å; raise CEConfig.cutoff.")
            dx = nb_d[is_x].min() * config.anion_shell_tolerance
            dc = nb_d[~is_x].min() * config.cation_shell_tolerance
            anion.append((nb_roles[is_x & (nb_d <= dx + 1e-6)], nb_d[is_x & (nb_d <= dx + 1e-6)]))
            cation.append((nb_roles[~is_x & (nb_d <= dc + 1e-6)], nb_d[~is_x & (nb_d <= dc + 1e-6)]))
        out[role] = tuple(_average_shell(shell) for shell in (anion, cation))
    return out


def _average_shell(per_site: list[tuple[np.ndarray, np.ndarray]]) -> Shell:
    counts = {r: float(np.mean([(roles == r).sum() for roles, _ in per_site])) for r in ("A", "B", "X")}
    mean_d = float(np.mean(np.concatenate([d for _, d in per_site])))
    return Shell({r: c for r, c in counts.items() if c > 0}, mean_d)


def coordination_number(prototype: Prototype, role: str, config: CEConfig = CEConfig()) -> int:
    """Anion coordination of a role in a prototype (spinel A: 4, B: 6; perovskite A: 12, B: 6)."""
    return int(round(role_shells(prototype, config)[role][0].size))


@lru_cache(maxsize=None)
def site_radius(element: str, coordination: int, fallback: str = "raise") -> float:
    """Mean Shannon ionic radius (Å) of a cation over the oxidation states listed at this coordination."""
    cations = [(ox, ROMAN.get(cn.rstrip("SQPY"), 0), r) for ox, cn, _, r in shannon_entries(element) if ox > 0]
    here = [r for _, cn, r in cations if cn == coordination]
    if here:
        return float(np.mean(here))
    have = sorted({cn for _, cn, _ in cations})
    if fallback == "nearest" and have:
        nearest = min(have, key=lambda cn: (abs(cn - coordination), -cn))
        return float(np.mean([r for _, cn, r in cations if cn == nearest]))
    raise ShannonRadiusError(
        f"No Shannon cation radius for {element} in {coordination}-fold coordination (the table has "
        f"coordinations {have or 'none'}). Use CEConfig(radius_fallback='nearest') to take the nearest listed "
        "coordination, or CEConfig(shannon_radius=False) to leave the radius out.")


def parse_abx(compound: str, x: str = "O") -> tuple[str, str]:
    """(A, B) of a formula written A B_n X_m, e.g. 'MgAl2O4' -> ('Mg', 'Al'), 'SrTiO3' -> ('Sr', 'Ti')."""
    m = re.fullmatch(rf"([A-Z][a-z]?)([A-Z][a-z]?)\d*{x}\d+", compound)
    if m is None:
        raise ValueError(f"{compound!r} is not written as A B_n {x}_m (e.g. MgAl2{x}4, SrTi{x}3).")
    return m.group(1), m.group(2)


class CEFeaturizer:
    """One fixed-length center-environment vector per (A, B, prototype): see the module docstring."""

    def __init__(self, config: CEConfig = CEConfig(), table: pd.DataFrame | None = None, anion: str = "O") -> None:
        if table is None:
            from gapkit.data import load_li2023_element_properties

            table = load_li2023_element_properties()
        props = list(config.properties) if config.properties is not None else list(table.columns)
        unknown = [p for p in props if p not in table.columns]
        if unknown:
            raise KeyError(f"unknown element properties {unknown}; the table has {list(table.columns)}.")
        self.config = config
        self.table = table[props].astype(float)
        self.properties = props
        self.anion = anion
        self._shells: dict[str, dict[str, tuple[Shell, Shell]]] = {}
        self._vectors: dict[tuple[str, int], np.ndarray] = {}

    # ----------------------------------------------------------------- layout
    def _element_names(self) -> list[str]:
        return self.properties + (["r_shannon"] if self.config.shannon_radius else [])

    def feature_names(self) -> list[str]:
        """Names of the vector's entries, e.g. 'A_center_EGP', 'B_cation_shell_n', 'A_anion_shell_d'."""
        names = []
        for role in ROLES:
            names += [f"{role}_center_{p}" for p in self._element_names()]
            for shell in ("anion_shell", "cation_shell"):
                names += [f"{role}_{shell}_n", f"{role}_{shell}_d"]
                names += [f"{role}_{shell}_{p}" for p in self._element_names()]
        return names

    @property
    def n_features(self) -> int:
        """Length of one CE vector."""
        return len(self.feature_names())

    # ----------------------------------------------------------------- values
    def element_vector(self, element: str, coordination: int) -> np.ndarray:
        """An element's properties (and Shannon radius at ``coordination``); raises on a missing value."""
        key = (element, coordination)
        if key not in self._vectors:  # a screen asks for the same few dozen elements thousands of times
            self._vectors[key] = self._element_vector(element, coordination)
        return self._vectors[key]

    def _element_vector(self, element: str, coordination: int) -> np.ndarray:
        if element not in self.table.index:
            raise MissingPropertyError(f"{element!r} is not in the element property table; it has "
                                       f"{len(self.table)} elements.")
        row = self.table.loc[element]
        missing = [p for p, v in row.items() if not np.isfinite(v)]
        if missing:
            raise MissingPropertyError(
                f"{element} has no value for {missing} in the element property table; drop these properties "
                "(CEConfig(properties=...)) or leave the compound out.")
        values = list(row.to_numpy(dtype=float))
        if self.config.shannon_radius:
            if element == self.anion:
                ox_r = [r for ox, cn, _, r in shannon_entries(element) if ox < 0 and cn == _roman_of(coordination)]
                values.append(float(np.mean(ox_r)) if ox_r else _anion_radius(element))
            else:
                values.append(site_radius(element, coordination, self.config.radius_fallback))
        return np.asarray(values, dtype=float)

    def shells(self, prototype: Prototype) -> dict[str, tuple[Shell, Shell]]:
        """The (cached) shells of a prototype's A and B roles."""
        if prototype.name not in self._shells:
            self._shells[prototype.name] = role_shells(prototype, self.config)
        return self._shells[prototype.name]

    def featurize(self, a: str, b: str, prototype: Prototype) -> np.ndarray:
        """The CE vector of compound (A = ``a``, B = ``b``, X = the anion) in ``prototype``."""
        shells = self.shells(prototype)
        cn = {role: int(round(shells[role][0].size)) for role in ROLES}
        x_cn = 6  # the anion's own coordination enters only through its radius; O2- VI = 1.40 Å
        vec_of = {"A": self.element_vector(a, cn["A"]), "B": self.element_vector(b, cn["B"]),
                  "X": self.element_vector(self.anion, x_cn)}
        parts = []
        for role in ROLES:
            parts.append(vec_of[role])
            for shell in shells[role]:
                mean = sum(c * vec_of[r] for r, c in shell.counts.items()) / shell.size
                parts.append(np.array([shell.size, shell.mean_distance]))
                parts.append(mean)
        return np.concatenate(parts)

    def transform(self, compounds, prototype: Prototype) -> np.ndarray:
        """CE matrix [n, n_features] for formulas such as 'MgAl2O4' or 'SrTiO3', all in one prototype."""
        pairs = [parse_abx(c, self.anion) for c in compounds]
        cache: dict[tuple[str, str], np.ndarray] = {}
        rows = []
        for pair in pairs:
            if pair not in cache:
                cache[pair] = self.featurize(pair[0], pair[1], prototype)
            rows.append(cache[pair])
        return np.vstack(rows) if rows else np.zeros((0, self.n_features))

    def frame(self, compounds, prototype: Prototype) -> pd.DataFrame:
        """``transform`` as a DataFrame with feature names, indexed by compound."""
        return pd.DataFrame(self.transform(compounds, prototype), index=list(compounds), columns=self.feature_names())


def _roman_of(n: int) -> str:
    return next(name for name, value in ROMAN.items() if value == n)


def _anion_radius(element: str) -> float:
    radii = [r for ox, _, _, r in shannon_entries(element) if ox < 0]
    if not radii:
        raise ShannonRadiusError(f"The Shannon table lists no anion radius for {element}.")
    return float(np.mean(radii))


def authors_features(df: pd.DataFrame) -> np.ndarray:
    """The authors' 112 descriptors (A1..A56, B1..B56) of a Li 2023 table, as a float matrix."""
    cols = [f"A{i}" for i in range(1, 57)] + [f"B{i}" for i in range(1, 57)]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"columns {missing[:3]}... missing: pass a table from load_li2023_spinels/perovskites.")
    return df[cols].to_numpy(dtype=float)


__all__ = ["CEConfig", "CEFeaturizer", "MissingPropertyError", "Prototype", "Shell", "authors_features",
           "coordination_number", "parse_abx", "perovskite_prototype", "prototype_from_structure", "role_shells",
           "site_radius", "spinel_prototype"]
