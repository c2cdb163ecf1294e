"""loopbp's network file format: a NumPy ``.npz`` archive, never a pickle.

A file holds one array per parameter and one JSON document:

=================  ==========================================================
member             content
=================  ==========================================================
``meta.json``      UTF-8 JSON as a ``uint8`` array (see below)
``w0, w1, …``      ``weights[i]``, shape ``(sizes[i+1], sizes[i])``
``b0, b1, …``      ``biases[i]``, shape ``(sizes[i+1],)``
any other          named in ``meta["arrays"]`` (e.g. a checkpoint's optimizer
                   state ``optimizer.<name>`` or ``progress.order``)
=================  ==========================================================

``meta.json`` has ``format`` (always ``"loopbp-network"``), ``version``
(:data:`FORMAT_VERSION`), ``sizes``, ``dtype``, ``activations`` (one name per
layer after the input), ``cost`` and ``init`` (since version 2; a version 1
file holds the derivations' sigmoid network with the quadratic cost and is
read as such), ``kind`` (``"network"`` or
``"checkpoint"``; a checkpoint's training state is described in
:mod:`loopbp.checkpoints`), ``arrays`` (the member names) and ``state``:
``seed`` (an integer >= 0 or ``null``), ``rng`` (the state of the network's
PCG64 generator, as ``numpy.random.PCG64().state`` gives it) and, in a
checkpoint, ``training``.  ``dtype`` is ``"float32"`` or ``"float64"``.

Reading trusts nothing in the file
----------------------------------
:func:`read` opens the archive with :mod:`zipfile`, reads every member in full
(which checks its CRC-32, so flipped bits anywhere in a member are caught),
refuses duplicate, unlisted, encrypted or oversized members, and parses each
array with ``allow_pickle=False``: an object array — the only way an ``.npy``
can carry a pickle — is refused, so a file can never run code.  Anything wrong
raises :class:`NetworkFileError`, a ``ValueError``.

Writes are atomic
-----------------
:func:`write_atomic` writes the archive to a temporary file
``.NAME.XXXX.tmp`` in the target's folder, flushes it to disk, renames it over
the target and flushes the folder.  An exception at any point (including
Ctrl-C) removes the temporary file and leaves the old target untouched; a
process killed outright may leave the temporary file behind, but never a
damaged target.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "loopbp-network"
FORMAT_VERSION = 2
#: The kinds of file this loopbp reads.
KINDS = ("network", "checkpoint")
#: Largest ``meta.json`` accepted, in bytes.
MAX_META_BYTES = 16 * 2**20
#: Dtypes a member array may have (parameters, optimizer state, row orders).
ALLOWED_DTYPES = frozenset(
    np.dtype(t).newbyteorder("<").str for t in (np.float32, np.float64, np.int64, np.uint8))


class NetworkFileError(ValueError):
    """A file is not a valid loopbp network file (corrupt, truncated, foreign, too new)."""


def write_atomic(path: str | os.PathLike, meta: dict[str, Any],
                 arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; return the path written.

    Parameters
    ----------
    path : path
        The target; its folder must exist.
    meta : dict
        JSON-serializable metadata; ``format``, ``version`` and ``arrays`` are
        filled in here.
    arrays : dict of str to ndarray
        The members (numeric arrays; ``meta.json`` is reserved).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    if "meta.json" in arrays:
        raise ValueError("'meta.json' is reserved for the metadata")
    for name, array in arrays.items():
        if np.asarray(array).dtype.hasobject:
            raise TypeError(f"array {name!r} holds Python objects; only numbers can be saved")
    meta = dict(meta, format=FORMAT_NAME, version=FORMAT_VERSION, arrays=sorted(arrays))
    encoded = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{"meta.json": encoded}, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _sync_folder(folder)
    return path


def _sync_folder(folder: Path) -> None:
    """Flush the folder entry of a rename to disk, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a loopbp file; return ``(meta, arrays)``.

    Raises
    ------
    NetworkFileError
        For anything that is not an intact loopbp file of a version and kind
        this loopbp understands.
    FileNotFoundError
        When there is no file.
    """
    path = Path(path)
    where = repr(str(path))
    if path.is_dir():
        raise NetworkFileError(f"{where} is a folder, not a loopbp network file")
    if not path.is_file():
        raise FileNotFoundError(f"no loopbp network file at {where}")
    foreign = (f"{where} is not a loopbp network file (not a zip/npz archive; "
               "truncated, corrupted or another format)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _read_members(archive, where)
    except NetworkFileError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            RuntimeError, NotImplementedError, KeyError, OverflowError, MemoryError) as err:
        raise NetworkFileError(f"{foreign}: {err}") from err
    if "meta.json" not in members:
        raise NetworkFileError(f"{where} is not a loopbp network file (no meta.json member)")
    meta = _parse_meta(members.pop("meta.json"), where)
    _check_network_meta(meta, where)
    expected = meta["arrays"]
    if set(expected) != set(members):
        raise NetworkFileError(
            f"{where} is damaged: its members do not match its table of contents")
    arrays = {name: _parse_array(members[name], name, where) for name in expected}
    return meta, arrays


def _read_members(archive: zipfile.ZipFile, where: str) -> dict[str, bytes]:
    """Every member's bytes, CRC-checked, by array name (``.npy`` suffix removed)."""
    members: dict[str, bytes] = {}
    size = os.fstat(archive.fp.fileno()).st_size if archive.fp is not None else 0
    for info in archive.infolist():
        name = info.filename
        if not name.endswith(".npy") or info.is_dir():
            raise NetworkFileError(
                f"{where} is not a loopbp network file (unexpected member {name!r})")
        if info.flag_bits & 0x1:
            raise NetworkFileError(f"{where} has an encrypted member {name!r}")
        if info.compress_type == zipfile.ZIP_STORED and info.file_size > size:
            raise NetworkFileError(f"{where} is truncated or damaged (member {name!r})")
        key = name[: -len(".npy")]
        if key in members:
            raise NetworkFileError(f"{where} is damaged: member {name!r} appears twice")
        members[key] = archive.read(info)  # checks the CRC-32
        if len(members[key]) != info.file_size:
            raise NetworkFileError(f"{where} is truncated or damaged (member {name!r})")
    return members


def _parse_meta(raw: bytes, where: str) -> dict[str, Any]:
    encoded = _parse_array(raw, "meta.json", where)
    if encoded.dtype != np.uint8 or encoded.ndim != 1 or encoded.size > MAX_META_BYTES:
        raise NetworkFileError(f"{where} has a malformed meta.json member")
    try:
        meta = json.loads(encoded.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as err:
        raise NetworkFileError(f"{where} has an unreadable meta.json: {err}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise NetworkFileError(f"{where} is not a loopbp network file (foreign metadata)")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise NetworkFileError(f"{where} has a damaged format version {version!r}")
    if version > FORMAT_VERSION:
        raise NetworkFileError(
            f"{where} has format version {version}, newer than this loopbp reads "
            f"(version {FORMAT_VERSION}); upgrade loopbp to read it")
    kind = meta.get("kind", "network")
    if kind not in KINDS:
        raise NetworkFileError(f"{where} holds a loopbp {kind!r} file, which this loopbp "
                               f"does not know (it reads {', '.join(KINDS)})")
    expected = meta.get("arrays")
    if (not isinstance(expected, list) or not all(isinstance(n, str) for n in expected)
            or len(set(expected)) != len(expected)):
        raise NetworkFileError(f"{where} is damaged: its table of contents is malformed")
    return meta


#: The dtypes a network file holds, by the names it stores them under.
DTYPE_NAMES = ("float32", "float64")
#: Range of PCG64's 128-bit state and increment.
_PCG64_LIMIT = 2**128


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_network_meta(meta: dict[str, Any], where: str) -> None:
    """Refuse a ``dtype``, ``state.seed`` or ``state.rng`` that is not what a save writes.

    NumPy takes ``dtype: null`` for float64 and raises ``OverflowError`` (not
    a ``ValueError``) for a generator state out of its integer ranges, so
    both are checked here, before anything uses them.
    """
    def damaged(field: str, expected: str, value: Any) -> NetworkFileError:
        return NetworkFileError(f"{where} is damaged: {field} must be {expected}, got {value!r}")

    dtype = meta.get("dtype")
    if dtype not in DTYPE_NAMES:
        raise damaged("dtype", "'float32' or 'float64'", dtype)
    state = meta.get("state")
    if not isinstance(state, dict):
        raise damaged("state", "a mapping with seed and rng", state)
    seed = state.get("seed")
    if seed is not None and not (_is_int(seed) and seed >= 0):
        raise damaged("state.seed", "an integer >= 0 or null", seed)
    rng = state.get("rng")
    if not isinstance(rng, dict) or set(rng) != {"bit_generator", "state", "has_uint32",
                                                  "uinteger"}:
        raise damaged("state.rng", "a PCG64 state with keys bit_generator, state, "
                      "has_uint32 and uinteger", rng)
    if rng["bit_generator"] != "PCG64":
        raise damaged("state.rng.bit_generator", "'PCG64'", rng["bit_generator"])
    inner = rng["state"]
    if not isinstance(inner, dict) or set(inner) != {"state", "inc"}:
        raise damaged("state.rng.state", "a mapping with keys state and inc", inner)
    if not (_is_int(inner["state"]) and 0 <= inner["state"] < _PCG64_LIMIT):
        raise damaged("state.rng.state.state", "an integer in [0, 2**128)", inner["state"])
    # PCG64 always keeps an odd increment; an even one is no state it ever had
    if not (_is_int(inner["inc"]) and 0 < inner["inc"] < _PCG64_LIMIT and inner["inc"] % 2):
        raise damaged("state.rng.state.inc", "an odd integer in [1, 2**128)", inner["inc"])
    if not (_is_int(rng["has_uint32"]) and rng["has_uint32"] in (0, 1)):
        raise damaged("state.rng.has_uint32", "0 or 1", rng["has_uint32"])
    if not (_is_int(rng["uinteger"]) and 0 <= rng["uinteger"] < 2**32):
        raise damaged("state.rng.uinteger", "an integer in [0, 2**32)", rng["uinteger"])


def _parse_array(raw: bytes, name: str, where: str) -> np.ndarray:
    """One ``.npy`` member, refusing pickles, odd dtypes and trailing or missing bytes."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        if dtype.hasobject or dtype.newbyteorder("<").str not in ALLOWED_DTYPES:
            raise NetworkFileError(
                f"{where}: member {name!r} has dtype {dtype} (only float32, float64, int64 "
                "and uint8 are read; objects and pickles never are)")
        count = 1
        for extent in shape:
            count *= int(extent)
        header_end = stream.tell()
        if len(raw) - header_end != count * dtype.itemsize:
            raise ValueError(f"{len(raw) - header_end} data bytes where the header "
                             f"promises {count * dtype.itemsize}")
        array = np.frombuffer(raw, dtype=dtype, count=count, offset=header_end)
        array = array.reshape(shape, order="F" if fortran else "C")
        # a writable copy in native byte order and C layout
        return np.array(array, dtype=dtype.newbyteorder("="), order="C")
    except NetworkFileError:
        raise
    except (ValueError, TypeError, EOFError, OverflowError, SyntaxError, MemoryError) as err:
        raise NetworkFileError(f"{where}: member {name!r} is damaged: {err}") from err
