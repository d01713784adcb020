"""Zip archives as scan entries: unpack safely into a temporary folder that is removed afterwards.

Python's :mod:`zipfile` is used as is; only the member checks are our own: ``extractall``
would quietly rewrite an unsafe name (``../x``, ``/x``) instead of refusing the archive.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from gohscore.cohort import archive_suffix
from gohscore.errors import GohscoreError


def is_archive(path: str | Path) -> bool:
    """True for a file whose name ends in a supported archive suffix (``.zip``)."""
    return archive_suffix(path) is not None and Path(path).is_file()


@dataclass(frozen=True)
class ArchiveMember:
    """One file inside a zip archive (what a scan read from a zip is hashed from)."""

    archive: Path
    name: str

    def __str__(self) -> str:
        return f"{self.archive}/{self.name}"

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """Open the member for reading bytes."""
        with zipfile.ZipFile(self.archive) as zf, zf.open(self.name) as handle:
            yield handle


def unsafe_member(name: str) -> bool:
    """True for a member name that could land outside the folder it is unpacked into (zip-slip)."""
    parts = re.split(r"[\\/]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


@dataclass
class Unpacked:
    """An unpacked archive: its temporary folder and, per unpacked file, the member it came from."""

    archive: Path
    root: Path
    members: dict[str, str]

    def shown(self, text: str) -> str:
        """``text`` with the temporary folder replaced by the archive's name (for messages)."""
        return text.replace(str(self.root) + "/", f"{self.archive}/").replace(
            str(self.root), str(self.archive)
        )

    def member(self, file: str | Path) -> ArchiveMember:
        """The archive member an unpacked file came from."""
        return ArchiveMember(self.archive, self.members[str(Path(file).resolve())])


@contextlib.contextmanager
def unpack_zip(path: Path) -> Iterator[Unpacked]:
    """Unpack ``path`` into a fresh temporary folder (refusing unsafe members); remove it on exit."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise GohscoreError(
            f"cannot read scan {path} (not a readable zip archive: {err}); copy or re-create the archive"
        ) from None
    with zf, tempfile.TemporaryDirectory(prefix="gohscore-zip-") as tmp:
        root = Path(tmp).resolve()
        infos = zf.infolist()
        for info in infos:
            if unsafe_member(info.filename):
                raise GohscoreError(
                    f"scan {path} holds a member with an unsafe path {info.filename!r} (absolute or with '..'); "
                    "re-create the archive with paths relative to the export folder"
                )
            if info.flag_bits & 0x1:
                raise GohscoreError(
                    f"scan {path} holds an encrypted member {info.filename!r}; unzip it with its password "
                    "and give the folder (or an unencrypted zip)"
                )
        need = sum(info.file_size for info in infos)
        free = shutil.disk_usage(root).free
        if need > free:
            raise GohscoreError(
                f"scan {path} needs {need / 1e9:.1f} GB to unpack but the temporary folder {root.parent} has "
                f"{free / 1e9:.1f} GB free; set TMPDIR to a larger disk or unzip it yourself"
            )
        members: dict[str, str] = {}
        try:
            for info in infos:
                target = root.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 22)
                members[str(target)] = info.filename
        except (zipfile.BadZipFile, EOFError, OSError, zipfile.LargeZipFile) as err:
            raise GohscoreError(
                f"cannot read scan {path} (member {info.filename!r} is damaged: {err}); copy or re-create the archive"
            ) from None
        yield Unpacked(Path(path), root, members)
