"""One place for numba's options and the threading layer.

Every compiled function in loopbp is made with one of the decorators here, so
speed-relevant choices (fastmath flags, caching, the GIL) are made once.

Threading layer
---------------
numba's default ``workqueue`` layer aborts the interpreter when two Python
threads enter parallel code at once, and GNU OpenMP is not safe across
``fork``.  Intel TBB is both thread- and fork-safe, so loopbp asks for it.  The
``tbb`` wheel from PyPI puts ``libtbb.so.12`` in ``<prefix>/lib``, which the
dynamic loader does not search inside a virtual environment; loading it here by
full path (with ``RTLD_GLOBAL``) lets numba's TBB pool find it.  When TBB is
missing, loopbp falls back to any thread-safe layer and, failing that,
serializes its own parallel calls with a lock (see :data:`PARALLEL_LOCK`).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import hashlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

import llvmlite.ir
import numba
import numba.extending
import numpy as np


def _preload_tbb() -> bool:
    """Load ``libtbb.so.12`` from the environment's ``lib`` folder, if present."""
    if not sys.platform.startswith("linux"):
        return False
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        for path in sorted(glob.glob(os.path.join(prefix, "lib", "libtbb.so.12*"))):
            try:
                ctypes.CDLL(path, mode=ctypes.RTLD_GLOBAL)
                return True
            except OSError:
                continue
    return False


def _choose_threading_layer() -> None:
    if os.environ.get("NUMBA_THREADING_LAYER"):
        return  # the user chose explicitly
    numba.config.THREADING_LAYER = "safe" if _preload_tbb() else "threadsafe"


_choose_threading_layer()


def _launch_threads() -> None:
    """Start numba's thread pool now, before any kernel runs.

    A driver loaded from numba's on-disk cache calls the parallel kernels it
    holds without starting the pool first; in a process that has compiled no
    parallel code, the first parallel loop then crashes (segmentation fault).
    Starting the pool at import makes every process safe, whatever its cache.
    """
    try:
        from numba.np.ufunc.parallel import _launch_threads as launch
    except ImportError:  # pragma: no cover - a numba that moved it
        return
    launch()


_launch_threads()

#: Held around parallel kernel launches only when no thread-safe layer could be
#: loaded; with TBB or OpenMP it is never contended (see :func:`parallel_guard`).
PARALLEL_LOCK = threading.RLock()

#: Safe fastmath flags: re-association (lets LLVM vectorize the Σ reductions),
#: fused multiply-add contraction, and ignoring the sign of zero.  Flags that
#: assume no NaN or infinity are left out: divergence must stay detectable.
FASTMATH = {"reassoc", "contract", "nsz"}

def _compiler(fastmath: Any = FASTMATH, **options: Any) -> Any:
    """``numba.njit(**options)`` whose functions save their cache entries one process at a time."""
    jit = numba.njit(fastmath=fastmath, cache=True, nogil=True, error_model="numpy",
                     no_cfunc_wrapper=True, **options)

    def decorate(function: Any) -> Any:
        return _stamp_with_package(_serialize_cache_saves(jit(function)))

    return decorate


#: Parallel kernels: ``prange`` loops run on the thread pool.
kernel = _compiler(parallel=True)

#: Serial compiled code (the drivers that call kernels, short serial loops).
serial = _compiler()

#: Scalar formulas and register tiles, copied into the code that calls them
#: (numba's ``inline="always"``), so they are optimized with the loop around them;
#: also the driver ``backprop``, so that its caller's module is optimized once
#: rather than once more per level of calls.
inline = _compiler(inline="always")

#: Loops over one block of a kernel's work (a tile sweep, an activation pass).
#: Each is compiled once per signature and linked into every kernel that calls it,
#: serial twins included: inlined into each call site instead, its code was
#: copied and typed again for every kernel, which made the first compile slower
#: by several seconds.  Callable from compiled code only (no Python wrapper is built:
#: calling one from Python crashes, so each is private to its module).
helper = _compiler(no_cpython_wrapper=True)

#: Loops whose every operation must round as written, in whatever kernel calls
#: them: no re-association, no fused multiply-add.  A fast-math loop may be
#: vectorized or fused differently in each compiled context (a parallel kernel,
#: its serial twin, a copy loaded from the cache), which moves results by an ulp.
strict = _compiler(fastmath=False, inline="never")


@numba.extending.intrinsic
def float64_from_bits(typingctx: Any, bits: Any) -> Any:
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (a bitcast, no library
    call, so loops that use it still vectorize)."""
    if bits != numba.types.int64:
        return None
    signature = numba.types.float64(numba.types.int64)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        return builder.bitcast(args[0], context.get_value_type(numba.types.float64))

    return signature, codegen


@numba.extending.intrinsic
def float32_from_bits(typingctx: Any, bits: Any) -> Any:
    """The float32 whose IEEE-754 bit pattern is the low 32 bits of the integer ``bits``
    (a bitcast, as :func:`float64_from_bits`)."""
    if not isinstance(bits, numba.types.Integer):
        return None
    signature = numba.types.float32(bits)

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        low = builder.trunc(args[0], llvmlite.ir.IntType(32)) if bits.bitwidth > 32 else args[0]
        return builder.bitcast(low, context.get_value_type(numba.types.float32))

    return signature, codegen


def threading_layer() -> str:
    """The threading layer numba loaded (after the first parallel call)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return "not yet loaded"


def parallel_guard() -> threading.RLock | _NoLock:
    """A context manager around kernel launches: a lock unless the layer is thread-safe."""
    layer = threading_layer()
    if layer in ("tbb", "omp"):
        return _NO_LOCK
    return PARALLEL_LOCK


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


def set_num_threads(n: int) -> None:
    """Set the number of threads loopbp's kernels use (1 … ``numba.config.NUMBA_NUM_THREADS``)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise TypeError(f"n_threads must be an integer, got {type(n).__name__}")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= int(n) <= limit:
        raise ValueError(f"n_threads must be between 1 and {limit}, got {n}")
    numba.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads loopbp's kernels use now."""
    return numba.get_num_threads()


def serial_twins(namespace: dict, names: list[str]) -> types.SimpleNamespace:
    """Serial copies of the parallel functions ``names`` defined in ``namespace``.

    Each copy is compiled from the same source with ``parallel=False`` (so
    ``prange`` runs as ``range``) and resolves the other ``names`` to their
    copies, so a serial driver calls serial kernels all the way down.  For a
    small network a parallel launch costs more than the work it shares out;
    the caller picks the twin by the size of the work, never by the thread
    count, so results stay bitwise identical for any number of threads.
    Each copy has its own qualified name, hence its own on-disk cache entry, and
    is inlined into its callers where its original is.
    """
    twin_globals = dict(namespace)
    twins = {}
    for name in names:
        py_func = namespace[name].py_func
        copy = types.FunctionType(py_func.__code__, twin_globals, name, py_func.__defaults__,
                                  py_func.__closure__)
        copy.__qualname__ = f"{py_func.__qualname__}_serial"
        copy.__module__ = py_func.__module__
        copy.__doc__ = py_func.__doc__
        options = namespace[name].targetoptions
        twins[name] = (inline if options.get("inline") == "always" else serial)(copy)
    twin_globals.update(twins)
    return types.SimpleNamespace(**twins)



# --- compiling in several processes at once ------------------------------------------
#
# numba's on-disk cache picks the data file for a new signature from the index it
# read a moment before.  Two processes saving different signatures of one function
# at the same time can both pick ``NAME.1.nbc``: the index then pairs one
# signature with the other's machine code, and the next process that loads it
# crashes.  Worker pools (scikit-learn's ``n_jobs``, Dask, pytest-xdist) start
# exactly so.  Every loopbp function therefore saves its cache entries under an
# exclusive lock on a file beside the index, so that each save reads the index
# as the previous one left it.


@contextlib.contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created if need be); no lock where there is no fcntl."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _cache_file(dispatcher: Any) -> Any:
    """numba's index-and-data file object of ``dispatcher``'s on-disk cache (None without)."""
    return getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)


def _serialize_cache_saves(dispatcher: Any) -> Any:
    """Make ``dispatcher``'s cache save its entries under a lock file beside its index."""
    cache_file = _cache_file(dispatcher)
    if cache_file is None or not hasattr(cache_file, "_index_path"):
        return dispatcher  # no on-disk cache
    save = cache_file.save

    def locked_save(key: Any, data: Any) -> None:
        with _file_lock(cache_file._index_path + ".lock"):
            save(key, data)

    cache_file.save = locked_save
    return dispatcher


# --- a cache entry follows the whole package ---------------------------------------
#
# numba keeps a function's cache entries while the file that defines it is unchanged.
# loopbp's kernels inline code from other modules (the activations, the tiles), so an
# edit to one of those alone would leave every kernel that inlined the old code in
# the cache.  Each loopbp function's entries are therefore stamped with a digest of
# every source file of the package as well: any edit recompiles them all.


def _package_digest() -> str:
    """SHA-256 of the names and contents of the package's Python source files."""
    digest = hashlib.sha256()
    folder = os.path.dirname(os.path.abspath(__file__))
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as source:
                digest.update(name.encode() + b"\0" + source.read() + b"\0")
    return digest.hexdigest()


#: The digest every loopbp cache entry is stamped with (see :func:`_stamp_with_package`).
PACKAGE_DIGEST = _package_digest()


def _stamp_with_package(dispatcher: Any) -> Any:
    """Make ``dispatcher``'s cache entries valid only for this exact package source.

    numba drops an index whose stamp differs from the one it computes for the
    defining file; pairing that stamp with :data:`PACKAGE_DIGEST` extends the
    comparison to every file of the package.
    """
    cache_file = _cache_file(dispatcher)
    if cache_file is None or not hasattr(cache_file, "_source_stamp"):
        return dispatcher  # no on-disk cache
    cache_file._source_stamp = (cache_file._source_stamp, PACKAGE_DIGEST)
    return dispatcher
