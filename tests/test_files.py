"""Atomic outputs: complete or absent, with ordinary permissions."""

import stat

import pytest

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
