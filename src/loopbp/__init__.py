"""loopbp: backpropagation as explicit index loops, compiled with numba."""

from . import (
    activations,
    costs,
    datasets,
    equations,
    files,
    init,
    kernels,
    optimizers,
    precompile,
    reference,
    schedules,
)
from ._jit import get_num_threads, set_num_threads, threading_layer
from .files import NetworkFileError
from .history import EpochRecord, History
from .network import Network
from .training import TrainingDiverged, load_checkpoint, resume, sgd

__version__ = "0.1.0"

__all__ = [
    "EpochRecord",
    "History",
    "Network",
    "NetworkFileError",
    "TrainingDiverged",
    "__version__",
    "activations",
    "costs",
    "datasets",
    "equations",
    "files",
    "get_num_threads",
    "init",
    "kernels",
    "load_checkpoint",
    "optimizers",
    "precompile",
    "reference",
    "resume",
    "schedules",
    "set_num_threads",
    "sgd",
    "threading_layer",
]
