"""One loader per shared dataset, each returning a pandas DataFrame.

Units are in column names where they matter (``gap_ev``, ``formation_energy_ev_per_atom``).
Structures are pymatgen ``Structure`` objects, parsed once and cached on disk (see
``gapkit.data.structures``).
"""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from gapkit.data.registry import UnknownDatasetError, fetch, known_datasets, list_files
from gapkit.data.structures import ErrorPolicy, attach_structures

OQMD = "oqmd_bandgap_crabnet"
MP = "mp_structures_kdmsit"
MATBENCH = "matbench_composition"
PEROVSKITES = "perovskite_cgcrabnet"
LI2023 = "spinel_perovskite_ce_li2023"
C2DB = "c2db_table_samiraoliveiraa"
MC2D = "mc2d_2d_materials"
CASTELLI = "castelli_perovskites_cdvae"
ELEMENTS = "element_properties_crabnet"
ATOM2VEC = "atom2vec_idocx"
CGCNN = "cgcnn_pretrained"

Split = Literal["train", "val", "test", "all"]


# --------------------------------------------------------------------------- compositions
def load_oqmd_bandgap(split: Split = "all", nonzero: bool = False) -> pd.DataFrame:
    """OQMD PBE band gaps by formula (CrabNet's split): columns formula, gap_ev, split."""
    splits = ["train", "val", "test"] if split == "all" else [split]
    for s in splits:
        if s not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val', 'test' or 'all', got {split!r}.")
    frames = [_read_oqmd_split(s).assign(split=s) for s in splits]
    df = pd.concat(frames, ignore_index=True)
    if nonzero:
        df = df[df["gap_ev"] > 0].reset_index(drop=True)
    return df


@lru_cache(maxsize=3)
def _read_oqmd_split(split: str) -> pd.DataFrame:
    df = pd.read_csv(fetch(OQMD, f"{split}.csv"))
    return df.rename(columns={"target": "gap_ev"})


def load_matbench_mp_gap() -> pd.DataFrame:
    """Matbench mp_gap as formula, gap_ev (one row per MP structure: formulas repeat)."""
    return pd.read_csv(fetch(MATBENCH, "mp_gap.csv")).rename(columns={"target": "gap_ev"})


def load_matbench_castelli() -> pd.DataFrame:
    """Castelli perovskite formation energies by formula (NOT band gaps)."""
    df = pd.read_csv(fetch(MATBENCH, "castelli.csv"))
    return df.rename(columns={"target": "formation_energy_ev_per_atom"})


# --------------------------------------------------------------------------- MP crystals
_FORMULA_SUM = re.compile(r"^_chemical_formula_sum\s+'?([^'\n]+)'?\s*$", re.MULTILINE)


def _read_tagged(dataset: str, names: list[str], **read_csv_kwargs) -> pd.DataFrame:
    """Concatenate CSV files of a dataset, tagging each row with its file (the structure cache is per file)."""
    frames = [pd.read_csv(fetch(dataset, name), **read_csv_kwargs).assign(_source_file=name) for name in names]
    return pd.concat(frames, ignore_index=True)


@lru_cache(maxsize=1)
def _read_mp_table() -> pd.DataFrame:
    shards = sorted(f for f in list_files(MP) if f.startswith("mp_structures_shard"))
    df = _read_tagged(MP, shards, dtype={"mp_id": str}).rename(
        columns={
            "band_gap": "gap_ev",
            "formation_energy_per_atom": "formation_energy_ev_per_atom",
            "efermi": "efermi_ev",
            "volume": "volume_a3",
            "total_magnetization": "total_magnetization_mub",
        }
    )
    # The CIF header carries the composition: reading it is ~1000x cheaper than parsing the CIF.
    sums = df["cif"].str.extract(_FORMULA_SUM, expand=False)
    df["formula"] = sums.str.replace(" ", "", regex=False)
    df["nsites"] = sums.map(_count_sites)
    return df


def _count_sites(formula_sum: str | float) -> float:
    if not isinstance(formula_sum, str):
        return float("nan")
    return float(sum(float(n or 1) for _, n in re.findall(r"([A-Z][a-z]?)([0-9.]*)", formula_sum)))


def load_mp_structures(
    nonzero: bool = False,
    structures: bool = True,
    n: int | None = None,
    seed: int = 0,
    errors: ErrorPolicy = "warn",
    progress: bool = True,
) -> pd.DataFrame:
    """Materials Project crystals with PBE gaps; ``n`` draws a seeded subset before parsing (or reading) its CIFs."""
    df = _read_mp_table()
    if nonzero:
        df = df[df["gap_ev"] > 0]
    if n is not None and n < len(df):
        df = df.sample(n=n, random_state=seed).sort_values("id")
    df = df.reset_index(drop=True)
    if structures:
        df = attach_structures(df, MP, errors=errors, progress=progress, source_col="_source_file")
    cols = [c for c in df.columns if c not in ("cif", "git_blob_sha1", "_source_file")]
    return df[cols]


# --------------------------------------------------------------------------- perovskites
def load_perovskites_175() -> pd.DataFrame:
    """The 175 cubic ABX3 perovskites of CGCrabNet: mp_id, formula, gap_ev, atomic numbers, 12-NN topology."""
    targets = pd.read_csv(fetch(PEROVSKITES, "targets.csv")).rename(
        columns={"name": "mp_id", "Band_gap": "gap_ev"}
    )
    # The npz holds pickled torch tensors; the file's sha256 was verified by fetch() before loading.
    with np.load(fetch(PEROVSKITES, "graph_data.npz"), allow_pickle=True) as npz:
        graphs = npz["graph_dict.npy"].item()
    targets["atomic_numbers"] = [
        [int(z) + 1 for z in graphs[m][0]] for m in targets["mp_id"]
    ]
    targets["neighbor_index"] = [np.asarray(graphs[m][1], dtype=np.int64) for m in targets["mp_id"]]
    return targets


def load_castelli_perovskites(structures: bool = True, errors: ErrorPolicy = "warn",
                              progress: bool = True) -> pd.DataFrame:
    """Castelli ABX3 perovskites with relaxed 5-atom cells (CDVAE val+test), GLLB-SC gaps."""
    df = _read_tagged(CASTELLI, ["val.csv", "test.csv"], index_col=0).rename(
        columns={
            "material_id": "id",
            "heat_all": "heat_all_ev_per_atom",
            "heat_ref": "heat_ref_ev_per_atom",
            "dir_gap": "dir_gap_ev",
            "ind_gap": "gap_ev",
        }
    )
    if structures:
        df = attach_structures(df, CASTELLI, errors=errors, progress=progress, source_col="_source_file")
    return df.drop(columns=["cif", "_source_file"])


# --------------------------------------------------------------------------- Li 2023 (formation energies)
def load_li2023_spinels() -> pd.DataFrame:
    """5,174 spinel AB2O4 formation energies with the authors' 112 A/B-site features."""
    df = pd.read_csv(fetch(LI2023, "spinel_AB2O4_formation_energy_ABfeatures.csv"))
    targets = pd.read_csv(fetch(LI2023, "spinel_AB2O4_targets_fe_lc_energy.csv"))
    df = df.rename(columns={"FormationEnergy/atom": "formation_energy_ev_per_atom"})
    targets = targets.rename(
        columns={"LatticeConstant": "lattice_constant_a", "Energy/atom": "energy_ev_per_atom"}
    )[["compound", "lattice_constant_a", "energy_ev_per_atom"]]
    return df.merge(targets, on="compound", how="left", validate="one_to_one")


def load_li2023_perovskites() -> pd.DataFrame:
    """855 perovskite ABO3 DFT formation energies with the same 112 A/B-site features."""
    df = pd.read_csv(fetch(LI2023, "perovskite_ABO3_formation_energy_ABfeatures.csv"))
    return df.rename(columns={"formation_energy_per_atom": "formation_energy_ev_per_atom"})


def load_li2023_candidates() -> pd.DataFrame:
    """5,329 hypothetical ABO3 perovskites screened in Li 2023 (formation energy is a model prediction)."""
    df = pd.read_csv(fetch(LI2023, "all_perovskite_candidates_5329.csv"))
    return df.rename(columns={"perovskites": "compound",
                              "formation_energy": "predicted_formation_energy_ev_per_atom",
                              "Data Category": "category"})


LI2023_ERRATA = Path(__file__).resolve().parents[2] / "data" / "li2023" / "element_property_errata.csv"


def load_li2023_errata() -> pd.DataFrame:
    """The corrections gapkit applies to the Li 2023 element table: element, property, published and used value, why."""
    return pd.read_csv(LI2023_ERRATA)


def load_li2023_element_properties(errata: bool = True) -> pd.DataFrame:
    """Li 2023 element property table: one row per element, one column per property abbreviation.

    With ``errata`` (default) the four decimal-point / unit slips listed in
    ``data/li2023/element_property_errata.csv`` are corrected; ``errata=False`` gives the table as published.
    """
    raw = pd.read_csv(fetch(LI2023, "element_properties_table.csv"))
    table = raw.drop(columns=[c for c in raw.columns[:4] if c != "Property"]).set_index("Property").T
    table.index.name = "element"
    table = table.apply(pd.to_numeric, errors="coerce")
    if errata:
        for row in load_li2023_errata().itertuples():
            published = table.at[row.element, row.property]
            if not np.isclose(published, row.table_value):
                # a different table version: refuse rather than "correct" a value that is not the slip
                raise ValueError(f"errata expect {row.element} {row.property} = {row.table_value}, the table has "
                                 f"{published}; check data/li2023/element_property_errata.csv against the data.")
            table.at[row.element, row.property] = row.corrected_value
    return table


def load_li2023_spinel_cifs(structures: bool = True, errors: ErrorPolicy = "warn",
                            progress: bool = True) -> pd.DataFrame:
    """5,173 unrelaxed spinel CIFs on one 56-site template (only the species differ)."""
    df = pd.read_csv(fetch(LI2023, "spinel_cifs_conventional_unrelaxed.csv.gz"))
    df["id"] = df["compound"]
    df["_source_file"] = "spinel_cifs_conventional_unrelaxed.csv.gz"
    if structures:
        df = attach_structures(df, LI2023, errors=errors, progress=progress, source_col="_source_file")
    return df.drop(columns=["cif", "_source_file", "git_blob_sha1"])


# --------------------------------------------------------------------------- 2D materials
def _clean_c2db(df: pd.DataFrame) -> pd.DataFrame:
    df = df.rename(columns=lambda c: c.replace("\u2715", "").strip())
    df = df.replace({"-": np.nan, "": np.nan})
    text_cols = {"Formula", "Unique identifier", "Crystal type", "Space group", "Magnetic state",
                 "Phonon dynamic stability (low/high)", "Stiffness dynamic stability (low/high)",
                 "Dir. band gap", "Direct band gap (HSE06)", "Age"}
    for col in df.columns:
        if col not in text_cols:
            # pd.to_numeric segfaults on one C2DB column (pandas 2.3); a plain float() loop is safe.
            converted = pd.Series([_to_float(v) for v in df[col]], index=df.index, dtype=float)
            # keep genuinely textual columns as they are
            if converted.notna().sum() >= df[col].notna().sum() * 0.9:
                df[col] = converted
    return df.rename(columns={"Formula": "formula", "Band gap": "gap_ev",
                              "Band gap (HSE06)": "gap_hse_ev", "Band gap (G₀W₀)": "gap_gw_ev"})


def _to_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def load_c2db() -> pd.DataFrame:
    """The C2DB monolayer table (4,034 rows, no positions), headers cleaned, '-' as NaN."""
    return _clean_c2db(pd.read_csv(fetch(C2DB, "C2DB_full.csv"), dtype=str, keep_default_na=False))


def load_c2db_janus() -> pd.DataFrame:
    """The 216 Janus MXY monolayers of C2DB (prototypes ABC-156-ac and ABC-156-abc)."""
    df = pd.read_csv(fetch(C2DB, "derived_janus_MXY_subset.csv"), dtype=str, keep_default_na=False)
    return _clean_c2db(df)


def load_mc2d(structures: bool = True) -> pd.DataFrame:
    """258 exfoliable MC2D monolayers with structures (Mounet 2018) and PBE gaps."""
    with open(fetch(MC2D, "mounet_v4_structures.json")) as fh:
        rows = json.load(fh)
    df = pd.DataFrame(rows).rename(columns={"band_gap": "gap_ev", "number_of_atoms": "nsites"})
    if structures:
        df["structure"] = [_mc2d_structure(r) for r in rows]
    return df.drop(columns=["cell", "atomic_positions"])


def _mc2d_structure(row: dict):
    from pymatgen.core import Lattice, Structure

    lattice = Lattice([vec[1:4] for vec in row["cell"]])
    species = [site[0] for site in row["atomic_positions"]]
    coords = [site[1:4] for site in row["atomic_positions"]]
    return Structure(lattice, species, coords, coords_are_cartesian=True)


def load_mc2d_campi() -> pd.DataFrame:
    """2,936 MC2D monolayers of Campi 2023: formula, space group, PBE gap (no positions)."""
    with open(fetch(MC2D, "campi_v2_structure_2d.json")) as fh:
        rows = json.load(fh)
    df = pd.DataFrame(rows)
    df["gap_ev"] = [b.get("value") if isinstance(b, dict) else np.nan for b in df["band_gap"]]
    df["gap_ev"] = pd.to_numeric(df["gap_ev"], errors="coerce")
    return df.drop(columns=["band_gap"])


# --------------------------------------------------------------------------- element tables
_ELEMENT_TABLES = {
    "magpie": "magpie.csv", "mat2vec": "mat2vec.csv", "oliynyk": "oliynyk.csv",
    "jarvis": "jarvis.csv", "onehot": "onehot.csv", "random_200": "random_200.csv",
    "ptable": "ptable.csv", "ptable_ismayc": "ptable_ismayc.csv",
    "cgcnn": "elmd_element_props/cgcnn.csv", "elemnet": "elmd_element_props/elemnet.csv",
    "matscholar": "elmd_element_props/matscholar.csv", "megnet16": "elmd_element_props/megnet16.csv",
}


def element_property_tables() -> list[str]:
    """Names accepted by ``load_element_properties``."""
    return sorted(_ELEMENT_TABLES)


@lru_cache(maxsize=None)
def load_element_properties(name: str) -> pd.DataFrame:
    """A CrabNet element table (magpie, mat2vec, onehot, ...) indexed by element symbol."""
    if name not in _ELEMENT_TABLES:
        raise UnknownDatasetError(
            f"Unknown element table {name!r}. Known: {', '.join(element_property_tables())}."
        )
    df = pd.read_csv(fetch(ELEMENTS, _ELEMENT_TABLES[name]))
    key = "symbol" if name.startswith("ptable") else df.columns[0]
    df = df.set_index(key)
    df.index.name = "element"
    if name == "onehot":  # header repeats after column 19: positional columns are the truth
        df.columns = [str(i) for i in range(df.shape[1])]
    return df


@lru_cache(maxsize=1)
def load_atom2vec() -> pd.DataFrame:
    """Atom2Vec 20-d element vectors (87 elements) indexed by element symbol."""
    from pymatgen.core import Element

    index = np.loadtxt(fetch(ATOM2VEC, "atoms_index.txt"), dtype=int)
    vectors = np.loadtxt(fetch(ATOM2VEC, "atoms_vec.txt"))
    symbols = [Element.from_Z(int(i) + 1).symbol for i in index]  # the file stores Z - 1
    df = pd.DataFrame(vectors, index=pd.Index(symbols, name="element"))
    df.columns = [str(c) for c in df.columns]
    return df


# --------------------------------------------------------------------------- CGCNN
CGCNN_MODELS = ("band-gap", "formation-energy-per-atom", "semi-metal-classification")


def load_cgcnn_checkpoint(name: str = "band-gap") -> dict:
    """A pretrained CGCNN checkpoint (state_dict, normalizer, args) from the original repository."""
    import torch

    if name not in CGCNN_MODELS:
        raise UnknownDatasetError(f"Unknown CGCNN model {name!r}. Known: {', '.join(CGCNN_MODELS)}.")
    path = fetch(CGCNN, f"{name}.pth.tar")
    # The classification checkpoint pickles numpy scalars; the sha256 was verified, so full load is safe.
    return torch.load(path, map_location="cpu", weights_only=False)


def load_cgcnn_atom_init() -> pd.DataFrame:
    """CGCNN's 92-d one-hot-binned atom features, indexed by atomic number."""
    with open(fetch(CGCNN, "atom_init.json")) as fh:
        raw = json.load(fh)
    df = pd.DataFrame.from_dict({int(k): v for k, v in raw.items()}, orient="index").sort_index()
    df.index.name = "Z"
    return df


def load_cgcnn_mp_ids() -> pd.DataFrame:
    """The MP id lists of the CGCNN paper: columns mp_id, list (file size tag)."""
    frames = []
    for tag in ("46744", "27430", "3402"):
        ids = pd.read_csv(fetch(CGCNN, f"material-data/mp-ids-{tag}.csv"), header=None, names=["mp_id"])
        frames.append(ids.assign(list=tag))
    return pd.concat(frames, ignore_index=True)


# --------------------------------------------------------------------------- the catalogue
DATASETS: dict[str, tuple[str, Callable[..., pd.DataFrame], str, str]] = {
    # name: (shared folder, loader, what it is, where the book uses it)
    "oqmd_bandgap": (OQMD, load_oqmd_bandgap, "OQMD PBE band gaps by formula (341,608; ~6.7% > 0)",
                     "embeddings (Atom_DL pretraining), composition models"),
    "mp_structures": (MP, load_mp_structures, "Materials Project crystals with PBE gaps (36,737 CIFs)",
                      "CGCNN / CGCrabNet, uncertainty"),
    "matbench_mp_gap": (MATBENCH, load_matbench_mp_gap, "Matbench mp_gap by formula (106,113)",
                        "composition baselines"),
    "matbench_castelli": (MATBENCH, load_matbench_castelli, "Castelli perovskite formation energies (18,928)",
                          "composition baselines"),
    "perovskites_175": (PEROVSKITES, load_perovskites_175, "175 cubic ABX3 perovskites, MP PBE gaps",
                        "transfer learning (fine-tuning target)"),
    "castelli_perovskites": (CASTELLI, load_castelli_perovskites,
                             "7,572 Castelli perovskite structures, GLLB-SC gaps", "transfer learning"),
    "li2023_spinels": (LI2023, load_li2023_spinels, "5,174 spinel AB2O4 formation energies",
                       "center-environment transfer (source)"),
    "li2023_perovskites": (LI2023, load_li2023_perovskites, "855 perovskite ABO3 formation energies",
                           "center-environment transfer (target)"),
    "li2023_candidates": (LI2023, load_li2023_candidates, "5,329 screened ABO3 candidates",
                          "center-environment transfer (screening)"),
    "li2023_spinel_cifs": (LI2023, load_li2023_spinel_cifs, "5,173 spinel CIFs on one template",
                           "center-environment transfer"),
    "li2023_element_properties": (LI2023, load_li2023_element_properties,
                                  "37 element properties of Li 2023", "center-environment features"),
    "c2db": (C2DB, load_c2db, "C2DB monolayer table (4,034)", "Janus monolayers (context)"),
    "c2db_janus": (C2DB, load_c2db_janus, "216 Janus MXY monolayers of C2DB", "Janus monolayers"),
    "mc2d": (MC2D, load_mc2d, "258 MC2D monolayers with structures", "Janus monolayers (2D structures)"),
    "mc2d_campi": (MC2D, load_mc2d_campi, "2,936 MC2D monolayers, no positions", "Janus monolayers"),
    "element_properties": (ELEMENTS, load_element_properties, "CrabNet element tables",
                           "embeddings, composition models"),
    "atom2vec": (ATOM2VEC, load_atom2vec, "Atom2Vec 20-d element vectors", "embeddings"),
    "cgcnn_pretrained": (CGCNN, load_cgcnn_checkpoint, "CGCNN pretrained models (band gap, E_form, metal)",
                         "CGCNN baseline"),
    "cgcnn_atom_init": (CGCNN, load_cgcnn_atom_init, "CGCNN 92-d atom features", "CGCNN"),
    "cgcnn_mp_ids": (CGCNN, load_cgcnn_mp_ids, "MP id lists of the CGCNN paper", "CGCNN"),
}


def list_datasets() -> pd.DataFrame:
    """Every dataset gapkit can load: name, shared folder, loader, description, use in the book."""
    rows = [
        {"name": name, "folder": folder, "loader": f"gapkit.data.{loader.__name__}",
         "description": desc, "used_in": use}
        for name, (folder, loader, desc, use) in DATASETS.items()
    ]
    df = pd.DataFrame(rows)
    missing = set(known_datasets()) - set(df["folder"])
    assert not missing, f"registered folders without a loader: {missing}"
    return df


def load(name: str, **kwargs) -> pd.DataFrame:
    """Load a dataset by its catalogue name (see ``list_datasets``)."""
    if name not in DATASETS:
        raise UnknownDatasetError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}.")
    return DATASETS[name][1](**kwargs)
