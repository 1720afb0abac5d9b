"""zoo.bioimage.files: a path written atomically, and one checksum over a sequence of files."""

import hashlib
import stat

import numpy as np
import pytest

from zoo.bioimage.files import PartsDigest, atomic_path


def test_atomic_path_moves_the_written_file_into_place(tmp_path):
    target = tmp_path / "new" / "state.npz"
    with atomic_path(target, suffix=".npz") as tmp:
        assert tmp.parent == target.parent and tmp.suffix == ".npz"
        np.savez(tmp, a=np.arange(3))
    assert np.load(target)["a"].tolist() == [0, 1, 2]
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["state.npz"]


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash")
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_parts_digest_hashes_each_part_after_its_length_and_names_as_they_are():
    digest = PartsDigest()
    digest.add_text("a/x.tif")
    assert digest.add_bytes(b"12") == b"12"
    digest.add_bytes(b"3")
    expected = hashlib.sha256(b"a/x.tif" + (2).to_bytes(8, "little") + b"12" + (1).to_bytes(8, "little") + b"3")
    assert digest.hexdigest() == expected.hexdigest()
    other = PartsDigest()
    other.add_text("a/x.tif")
    other.add_bytes(b"1")
    other.add_bytes(b"23")
    assert other.hexdigest() != digest.hexdigest()
