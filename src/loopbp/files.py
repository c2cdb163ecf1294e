"""loopbp's network file format: a NumPy ``.npz`` archive, never a pickle.

A file holds one array per parameter and one JSON document:

=================  ==========================================================
member             content
=================  ==========================================================
``meta.json``      UTF-8 JSON as a ``uint8`` array (see below)
``w0, w1, …``      ``weights[i]``, shape ``(sizes[i+1], sizes[i])``
``b0, b1, …``      ``biases[i]``, shape ``(sizes[i+1],)``
any other          named in ``meta["arrays"]`` (e.g. a checkpoint's optimizer
                   state)
=================  ==========================================================

``meta.json`` has ``format`` (always ``"loopbp-network"``), ``version``
(:data:`FORMAT_VERSION`), ``sizes``, ``dtype``, ``kind`` (``"network"`` or
``"checkpoint"``), ``arrays`` (the member names) and free-form ``state``.
Arrays are read with ``allow_pickle=False``, so a file can never run code.
The zip container checks each member's CRC-32, so flipped bits are caught.

Writes are atomic: the archive goes to a temporary file in the target's
folder, is flushed to disk, then renamed over the target.  A crash at any
point leaves either the old file or the new one, never half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_NAME = "loopbp-network"
FORMAT_VERSION = 1


class NetworkFileError(ValueError):
    """A file is not a valid loopbp network file (corrupt, truncated, foreign, too new)."""


def write_atomic(path: str | os.PathLike, meta: dict[str, Any],
                 arrays: dict[str, np.ndarray]) -> Path:
    """Write ``arrays`` and ``meta`` to ``path`` atomically; return the path written."""
    path = Path(path)
    meta = dict(meta, format=FORMAT_NAME, version=FORMAT_VERSION, arrays=sorted(arrays))
    encoded = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
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
    return path


def read(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and check a loopbp file; return ``(meta, arrays)``.

    Raises :class:`NetworkFileError` for anything that is not an intact loopbp
    file of a version this loopbp understands, and ``FileNotFoundError`` when
    there is no file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no loopbp network file at {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise NetworkFileError(
            f"{str(path)!r} is not a loopbp network file (not a zip/npz archive; "
            "truncated, corrupted or another format)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            names = set(archive.files)
            if "meta.json" not in names:
                raise NetworkFileError(
                    f"{str(path)!r} is not a loopbp network file (no meta.json member)")
            meta = json.loads(archive["meta.json"].tobytes().decode("utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
                raise NetworkFileError(f"{str(path)!r} is not a loopbp network file")
            version = meta.get("version")
            if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
                raise NetworkFileError(
                    f"{str(path)!r} has format version {version!r}; this loopbp reads "
                    f"version {FORMAT_VERSION}")
            expected = meta.get("arrays")
            if not isinstance(expected, list) or set(expected) != names - {"meta.json"}:
                raise NetworkFileError(
                    f"{str(path)!r} is damaged: its members do not match its table of contents")
            arrays = {name: archive[name] for name in expected}
    except NetworkFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError,
            UnicodeDecodeError, json.JSONDecodeError, zipfile.LargeZipFile) as err:
        raise NetworkFileError(
            f"{str(path)!r} is not a readable loopbp network file "
            f"(truncated, corrupted or another format): {err}") from err
    return meta, arrays
