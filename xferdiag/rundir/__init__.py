"""The run-directory contract: the only code that knows a file name or a JSON shape (docs/rundir.md).

``_io`` holds the file formats (written through :mod:`xferdiag.atomic`, read without pickle);
``lock`` keeps one writer per directory; ``layout`` says where every file lives (:class:`RunDir`,
:class:`SeedDir`); ``readers`` reads each file back, checked, and writes a finished seed;
``documents`` reads the JSON files the report reads as TypedDicts that ``conform`` makes true;
``schema`` checks a directory made by hand or by another tool before anything reads it; ``status``
says which missing steps its files allow.
"""

from ..atomic import atomic_path, make_dir, write_bytes, write_text
from ._io import read_csv, read_json, read_npz, write_csv, write_json, write_npz
from .conform import conform
from .documents import RunDocuments, read_document
from .layout import SCHEMA_VERSION, STANDARD_ARMS, RunDir, SeedDir
from .lock import holds_lock, locked
from .readers import (
                      Predictions,
                      optional_object,
                      read_data,
                      read_history,
                      read_metrics,
                      read_predictions,
                      write_finished_seed,
                      write_model,
                      write_run_records,
)
from .schema import VERDICTS, validate
from .status import STEPS, RunStatus

__all__ = [
    "SCHEMA_VERSION", "STANDARD_ARMS", "STEPS", "VERDICTS", "Predictions", "RunDir", "RunDocuments", "RunStatus", "SeedDir",
    "optional_object", "read_data",
    "read_history", "read_metrics", "read_predictions", "write_finished_seed", "write_model", "write_run_records",
    "atomic_path", "conform", "holds_lock", "locked", "make_dir",
    "read_csv", "read_document", "read_json", "read_npz", "validate", "write_bytes", "write_csv", "write_json", "write_npz", "write_text",
]
