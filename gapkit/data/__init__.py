"""The data registry: every dataset of the book, found locally, in the cache, or downloaded with a checksum."""

from gapkit.data import splits
from gapkit.data.datasets import (
    DATASETS,
    element_property_tables,
    list_datasets,
    load,
    load_atom2vec,
    load_c2db,
    load_c2db_janus,
    load_castelli_perovskites,
    load_cgcnn_atom_init,
    load_cgcnn_checkpoint,
    load_cgcnn_mp_ids,
    load_element_properties,
    load_li2023_candidates,
    load_li2023_element_properties,
    load_li2023_errata,
    load_li2023_perovskites,
    load_li2023_spinel_cifs,
    load_li2023_spinels,
    load_matbench_castelli,
    load_matbench_mp_gap,
    load_mc2d,
    load_mc2d_campi,
    load_mp_structures,
    load_oqmd_bandgap,
    load_perovskites_175,
)
from gapkit.data.registry import (
    ChecksumError,
    DataError,
    DataFileNotFoundError,
    UnknownDatasetError,
    cache_dir,
    data_dir,
    fetch,
)
from gapkit.data.structures import CIFParseError, UnparsableRowsWarning, structure_from_cif

__all__ = [name for name in dir() if not name.startswith("_")]
