"""Atomic outputs: complete or absent, with ordinary permissions."""

import stat

import pytest

from gohscore.errors import GohscoreError
from gohscore.files import atomic_path


def test_success_moves_file_into_place(tmp_path):
    out = tmp_path / "sub" / "table.parquet"
    with atomic_path(out) as tmp:
        assert tmp.name.endswith(".parquet")
        tmp.write_text("x", encoding="utf-8")
    assert out.read_text(encoding="utf-8") == "x"
    assert stat.S_IMODE(out.stat().st_mode) & 0o044  # group/others can read (umask permitting)
    assert [p.name for p in out.parent.iterdir()] == ["table.parquet"]


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "vol.npy"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_directory_replaced_as_a_whole(tmp_path):
    out = tmp_path / "slices"
    out.mkdir()
    (out / "old.npy").write_text("old", encoding="utf-8")
    with atomic_path(out, directory=True) as tmp:
        (tmp / "new.npy").write_text("new", encoding="utf-8")
    assert sorted(p.name for p in out.iterdir()) == ["new.npy"]


def test_an_output_that_cannot_be_written_is_a_user_error(tmp_path) -> None:
    """A file where the output's folder should be: one GohscoreError naming the folder, nothing left."""
    blocker = tmp_path / "results"
    blocker.write_text("not a folder", encoding="utf-8")
    with pytest.raises(GohscoreError, match=r"results/tiny: cannot write table.parquet"):
        with atomic_path(blocker / "tiny" / "table.parquet") as tmp:
            tmp.write_text("x", encoding="utf-8")
    with pytest.raises(GohscoreError, match="cannot write slices"):
        with atomic_path(blocker / "slices", directory=True):
            pass
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_a_full_disk_while_writing_is_a_user_error_and_leaves_nothing(tmp_path) -> None:
    import errno

    with pytest.raises(GohscoreError, match=r"cannot write volume.npy \(No space left on device\)"):
        with atomic_path(tmp_path / "out" / "volume.npy") as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(ValueError):  # other errors pass through unchanged
        with atomic_path(tmp_path / "out" / "x.txt"):
            raise ValueError("bad data")
