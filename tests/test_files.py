"""Network files: damaged, foreign and hostile files are refused; saving never loses a file."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import loopbp
from loopbp import files

NetworkFileError = loopbp.NetworkFileError


def _same(a: loopbp.Network, b: loopbp.Network) -> bool:
    return (a.sizes == b.sizes and a.dtype == b.dtype
            and all(np.array_equal(p, q) for p, q in
                    zip(a.weights + a.biases, b.weights + b.biases, strict=True)))


@pytest.fixture
def saved(tmp_path) -> tuple[loopbp.Network, os.PathLike]:
    net = loopbp.Network([3, 4, 2], seed=0)
    path = tmp_path / "net.npz"
    net.save(path)
    return net, path


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _zip(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _members(path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _meta(path) -> dict:
    return json.loads(np.load(io.BytesIO(_members(path)["meta.json.npy"])).tobytes())


def _with_meta(path, meta: dict) -> dict[str, bytes]:
    members = _members(path)
    members["meta.json.npy"] = _npy(np.frombuffer(json.dumps(meta).encode(), np.uint8))
    return members


# --- damaged files -------------------------------------------------------------------


def test_every_truncation_is_refused(saved, tmp_path):
    _, path = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    for length in range(len(data)):
        bad.write_bytes(data[:length])
        with pytest.raises(NetworkFileError):
            loopbp.Network.load(bad)


def test_every_flipped_byte_is_refused_or_harmless(saved, tmp_path):
    """Flip each byte in turn: the load fails cleanly or yields the very same network."""
    net, path = saved
    data = path.read_bytes()
    bad = tmp_path / "bad.npz"
    refused = 0
    for i in range(len(data)):
        bad.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
        try:
            loaded = loopbp.Network.load(bad)
        except NetworkFileError:
            refused += 1
            continue
        assert _same(loaded, net), f"byte {i} flipped: loaded different data"
        assert loaded.rng.bit_generator.state == net.rng.bit_generator.state
    assert refused > len(data) // 2  # the payload is covered by checksums


def test_wrong_versions_are_refused(saved, tmp_path):
    _, path = saved
    meta = _meta(path)
    for version, message in [(3, "newer"), (99, "newer"), (0, "version"), ("1", "version"),
                             (True, "version"), (None, "version")]:
        _zip(tmp_path / "v.npz", _with_meta(path, dict(meta, version=version)))
        with pytest.raises(NetworkFileError, match=message):
            loopbp.Network.load(tmp_path / "v.npz")
    _zip(tmp_path / "k.npz", _with_meta(path, dict(meta, kind="optimizer-v9")))
    with pytest.raises(NetworkFileError, match="optimizer-v9"):
        loopbp.Network.load(tmp_path / "k.npz")


def test_version_1_files_load_as_the_derivations_network(saved, tmp_path):
    """Files written before activations and costs existed hold sigmoid + quadratic networks."""
    net, path = saved
    meta = _meta(path)
    old = {k: v for k, v in meta.items() if k not in ("activations", "cost", "init")}
    _zip(tmp_path / "v1.npz", _with_meta(path, dict(old, version=1)))
    back = loopbp.Network.load(tmp_path / "v1.npz")
    assert back.activations == ["sigmoid"] * (len(back.sizes) - 1)
    assert (back.cost, back.init) == ("quadratic", "normal")
    assert all(np.array_equal(p, q) for p, q in zip(back.weights, net.weights))
    # version 2 needs the keys, and refuses names it does not know
    _zip(tmp_path / "v2.npz", _with_meta(path, dict(old, version=2)))
    with pytest.raises(NetworkFileError, match="metadata"):
        loopbp.Network.load(tmp_path / "v2.npz")
    _zip(tmp_path / "bad.npz", _with_meta(path, dict(meta, cost="hinge")))
    with pytest.raises(NetworkFileError, match="cost"):
        loopbp.Network.load(tmp_path / "bad.npz")


def test_activations_cost_and_init_round_trip(tmp_path):
    net = loopbp.Network([5, 4, 3, 2], activation=["relu", "tanh"], output="softmax",
                         cost="log_likelihood", init="he", seed=1)
    net.save(tmp_path / "n.npz")
    back = loopbp.Network.load(tmp_path / "n.npz")
    assert (back.activations, back.cost, back.init) == (["relu", "tanh", "softmax"],
                                                        "log_likelihood", "he")


def test_inconsistent_contents_are_refused(saved, tmp_path):
    _, path = saved
    meta = _meta(path)
    members = _members(path)
    cases = {
        "extra member": {**members, "x.npy": _npy(np.ones(2))},
        "missing member": {k: v for k, v in members.items() if k != "b1.npy"},
        "wrong shape": {**members, "w0.npy": _npy(np.ones((3, 4)))},
        "wrong dtype": {**members, "w0.npy": _npy(np.ones((4, 3), np.float32))},
        "int8 array": {**members, "w0.npy": _npy(np.ones((4, 3), np.int8))},
        "NaN weight": {**members, "w0.npy": _npy(np.full((4, 3), np.nan))},
        "trailing bytes": {**members, "w0.npy": members["w0.npy"] + b"\0" * 8},
        "short data": {**members, "w0.npy": members["w0.npy"][:-8]},
        "not npy": {**members, "w0.npy": b"hello"},
        "odd member name": {**members, "readme.txt": b"hi"},
        "bad sizes": _with_meta(path, dict(meta, sizes=[3, -4, 2])),
        "bad dtype": _with_meta(path, dict(meta, dtype="complex128")),
        "bad rng": _with_meta(path, dict(meta, state={"rng": {"bit_generator": "Nope"}})),
        "bad toc": _with_meta(path, dict(meta, arrays="w0")),
        "meta not json": {**members, "meta.json.npy": _npy(np.frombuffer(b"{nope", np.uint8))},
        "meta not utf8": {**members, "meta.json.npy": _npy(np.frombuffer(b"\xff\xfe", np.uint8))},
        "meta list": {**members, "meta.json.npy": _npy(np.frombuffer(b"[1]", np.uint8))},
        "meta deep": {**members,
                      "meta.json.npy": _npy(np.frombuffer(b"[" * 100000, np.uint8))},
    }
    for name, content in cases.items():
        _zip(tmp_path / "case.npz", content)
        with pytest.raises(NetworkFileError):
            loopbp.Network.load(tmp_path / "case.npz")
            pytest.fail(name)
    # duplicate member names inside one zip
    with zipfile.ZipFile(tmp_path / "dup.npz", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        with pytest.warns(UserWarning, match="Duplicate"):
            archive.writestr("w0.npy", _npy(np.zeros((4, 3))))
    with pytest.raises(NetworkFileError, match="twice"):
        loopbp.Network.load(tmp_path / "dup.npz")


def _rng_state(meta: dict, **changes) -> dict:
    """``meta`` with entries of its generator state replaced (``state__inc`` = rng.state.inc)."""
    rng = json.loads(json.dumps(meta["state"]["rng"]))
    for key, value in changes.items():
        *outer, last = key.split("__")
        target = rng
        for part in outer:
            target = target[part]
        target[last] = value
    return dict(meta, state=dict(meta["state"], rng=rng))


@pytest.mark.parametrize(("field", "change"), [
    # NumPy raised OverflowError (not a ValueError) for these
    ("state.rng.state.state", {"state__state": -1}),
    ("state.rng.state.state", {"state__state": 2**128}),
    ("state.rng.state.inc", {"state__inc": 2**128 + 1}),
    ("state.rng.uinteger", {"uinteger": -1}),
    ("state.rng.uinteger", {"uinteger": 2**32}),
    # and took these silently, as states PCG64 never has
    ("state.rng.state.inc", {"state__inc": 2}),
    ("state.rng.state.state", {"state__state": 1.5}),
    ("state.rng.has_uint32", {"has_uint32": 2}),
    ("state.rng.has_uint32", {"has_uint32": -1}),
])
def test_generator_state_out_of_range_is_refused(saved, tmp_path, field, change):
    """Every integer of the PCG64 state is range-checked: NetworkFileError, never OverflowError."""
    _, path = saved
    _zip(tmp_path / "rng.npz", _with_meta(path, _rng_state(_meta(path), **change)))
    with pytest.raises(NetworkFileError, match=re.escape(field)):
        loopbp.Network.load(tmp_path / "rng.npz")


def test_cli_reports_a_damaged_generator_state(saved, tmp_path, capsys):
    """``loopbp evaluate`` exits with status 2 and the message instead of an OverflowError."""
    from loopbp import cli

    _, path = saved
    _zip(tmp_path / "rng.npz", _with_meta(path, _rng_state(_meta(path), state__state=-1)))
    assert cli.main(["evaluate", str(tmp_path / "rng.npz")]) == 2
    assert "state.rng.state.state" in capsys.readouterr().err


@pytest.mark.parametrize(("field", "changes"), [
    ("dtype", {"dtype": None}),  # np.dtype(None) is float64: it used to load as such
    ("state.seed", {"seed": "abc"}),  # used to be kept as the network's seed
    ("state.seed", {"seed": -1}),
    ("state.seed", {"seed": True}),
])
def test_metadata_of_the_wrong_type_is_refused(saved, tmp_path, field, changes):
    """``dtype`` must be a dtype name and ``state.seed`` an integer >= 0 or null."""
    _, path = saved
    meta = _meta(path)
    if "seed" in changes:
        meta = dict(meta, state=dict(meta["state"], seed=changes["seed"]))
    else:
        meta = dict(meta, **changes)
    _zip(tmp_path / "m.npz", _with_meta(path, meta))
    with pytest.raises(NetworkFileError, match=re.escape(field)):
        loopbp.Network.load(tmp_path / "m.npz")


# --- foreign and hostile files ----------------------------------------------------------


def test_foreign_files_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "array.npy", np.ones(3))
    (tmp_path / "random.npz").write_bytes(rng.bytes(4096))
    (tmp_path / "empty.npz").write_bytes(b"")
    _zip(tmp_path / "plain.zip", {"hello.txt": b"hello"})
    _zip(tmp_path / "no-meta.npz", {"w0.npy": _npy(np.ones((2, 3)))})
    np.savez(tmp_path / "other-program.npz", weights=np.ones(3), labels=np.arange(3))
    np.savez_compressed(tmp_path / "compressed.npz", data=np.ones(3))
    (tmp_path / "pickle.npz").write_bytes(pickle.dumps({"w0": np.ones(3)}))
    foreign_meta = np.frombuffer(json.dumps({"format": "other"}).encode(), np.uint8)
    np.savez(tmp_path / "other-meta.npz", **{"meta.json": foreign_meta})
    os.mkdir(tmp_path / "folder.npz")
    for path in sorted(tmp_path.iterdir()):
        with pytest.raises(NetworkFileError, match="not a loopbp network file") as info:
            loopbp.Network.load(path)
        assert str(path.name) in str(info.value)


class _Payload:
    """Unpickling this creates a marker folder: proof that code from the file ran."""

    marker = ""

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payloads_never_run(saved, tmp_path):
    _, path = saved
    marker = tmp_path / "code-ran"
    payload = _Payload()
    payload.marker = str(marker)
    evil = np.array([payload, 1], dtype=object)
    members = _members(path)
    hostile = {
        "object-weights.npz": {**members, "w0.npy": _npy(evil)},
        "object-meta.npz": {**members, "meta.json.npy": _npy(evil)},
    }
    for name, content in hostile.items():
        _zip(tmp_path / name, content)
    np.savez(tmp_path / "object-npz.npz", w0=evil)  # pickles, as numpy allows on save
    (tmp_path / "raw-pickle.npz").write_bytes(pickle.dumps(payload))
    (tmp_path / "raw-pickle.npy").write_bytes(pickle.dumps(payload))
    # sanity: unpickling these really would create the marker
    pickle.loads(pickle.dumps(payload))
    assert marker.exists()
    marker.rmdir()
    for name in [*hostile, "object-npz.npz", "raw-pickle.npz", "raw-pickle.npy"]:
        with pytest.raises(NetworkFileError):
            loopbp.Network.load(tmp_path / name)
        with pytest.raises(NetworkFileError):
            loopbp.load_checkpoint(tmp_path / name)
        assert not marker.exists(), name


def test_objects_are_never_written(tmp_path):
    with pytest.raises(TypeError, match="objects"):
        files.write_atomic(tmp_path / "x.npz", {}, {"w0": np.array([object()])})
    assert list(tmp_path.iterdir()) == []


# --- crashes while saving -------------------------------------------------------------------


class _CrashError(Exception):
    pass


def _crash_midway(*args, **kwargs):
    handle = args[0]
    handle.write(b"PK\x03\x04 half an archive")
    raise _CrashError("disk full")


@pytest.mark.parametrize("where", ["savez", "fsync", "replace", "interrupt"])
def test_a_crash_during_save_keeps_the_old_file(saved, tmp_path, monkeypatch, where):
    old, path = saved
    newer = loopbp.Network([3, 4, 2], seed=1)
    if where == "savez":
        monkeypatch.setattr(files.np, "savez", _crash_midway)
    elif where == "fsync":
        monkeypatch.setattr(files.os, "fsync", lambda fd: (_ for _ in ()).throw(_CrashError()))
    elif where == "replace":
        monkeypatch.setattr(files.os, "replace", lambda a, b: (_ for _ in ()).throw(_CrashError()))
    else:  # Ctrl-C in the middle of writing
        def interrupted(*args, **kwargs):
            args[0].write(b"PK")
            raise KeyboardInterrupt

        monkeypatch.setattr(files.np, "savez", interrupted)
    with pytest.raises((_CrashError, KeyboardInterrupt)):
        newer.save(path)
    monkeypatch.undo()
    assert _same(loopbp.Network.load(path), old)
    assert [p.name for p in tmp_path.iterdir()] == ["net.npz"]  # no temporary file
    newer.save(path)  # and a later save works
    assert _same(loopbp.Network.load(path), newer)


@pytest.mark.slow
def test_killing_a_process_while_it_saves_never_damages_the_file(tmp_path):
    """SIGKILL at a random moment of a save loop: the file always loads, old or new."""
    path = tmp_path / "big.npz"
    script = textwrap.dedent(f"""
        import sys
        import loopbp
        net = loopbp.Network([400, 400, 10], seed=0)
        net.save({str(path)!r})
        print("ready", flush=True)
        seed = 1
        while True:
            loopbp.Network([400, 400, 10], seed=seed).save({str(path)!r})
            seed += 1
    """)
    for delay in (0.05, 0.23):
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                   text=True)
        try:
            assert process.stdout.readline().strip() == "ready"
            time.sleep(delay)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        net = loopbp.Network.load(path)  # never half a file
        assert net.sizes == [400, 400, 10]
        # a kill can leave a temporary file, never anything else
        assert all(p.name == "big.npz" or (p.name.startswith(".big.npz.")
                                           and p.name.endswith(".tmp"))
                   for p in tmp_path.iterdir())
