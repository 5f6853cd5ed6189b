"""Reading catalogs and interaction logs, and splitting them for evaluation."""

from anyrec.data.builder import ReadPolicy
from anyrec.data.dataset import Catalog, Dataset, IdMap, Interactions, LoadReport
from anyrec.data.load import DEFAULT_DATASET, FORMATS, NAMED, detect_format, load_dataset
from anyrec.data.table import ColumnMapping, mapping_from_toml

__all__ = [
    "DEFAULT_DATASET", "FORMATS", "NAMED", "Catalog", "ColumnMapping", "Dataset", "IdMap", "Interactions",
    "LoadReport", "ReadPolicy", "detect_format", "load_dataset", "mapping_from_toml",
]
