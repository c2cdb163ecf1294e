"""loopbp: backpropagation as explicit index loops, compiled with numba."""

from . import datasets, equations, files, kernels, reference
from ._jit import get_num_threads, set_num_threads, threading_layer
from .files import NetworkFileError
from .network import Network
from .training import EpochRecord, History, TrainingDiverged, load_checkpoint, resume, sgd

__version__ = "0.1.0"

__all__ = [
    "EpochRecord",
    "History",
    "Network",
    "NetworkFileError",
    "TrainingDiverged",
    "__version__",
    "datasets",
    "equations",
    "files",
    "get_num_threads",
    "kernels",
    "load_checkpoint",
    "reference",
    "resume",
    "set_num_threads",
    "sgd",
    "threading_layer",
]
