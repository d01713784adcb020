"""Files between steps: atomic writing (an output appears complete or not at all) and checked table reading."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gohscore.errors import GohscoreError

if TYPE_CHECKING:
    import pandas as pd


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


# errors inside the block that can only be the storage's: no space, no quota, a read-only file system
# (a permission error there may be an input's, so it passes through; the temporary file itself was
# created above, where a permission error is reported as the output's)
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only if the block succeeds.

    The temporary name keeps the final suffix(es) so that writers that infer the format
    from the extension (SimpleITK, pandas) still work. With ``directory=True`` a temporary
    folder is created and renamed as a whole.

    >>> with atomic_path("out/table.parquet") as tmp:  # doctest: +SKIP
    ...     df.to_parquet(tmp)
    """
    final = Path(path)
    suffix = "".join(final.suffixes) if not directory else ""
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
            os.chmod(tmp, 0o777 & ~_umask())
        else:
            fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".tmp" + suffix, dir=final.parent)
            os.close(fd)
            tmp = Path(name)
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
    except OSError as err:
        raise _unwritable(final, err) from err
    try:
        yield tmp
    except BaseException as err:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
            raise _unwritable(final, err) from err
        raise
    try:
        if directory and final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except OSError as err:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise _unwritable(final, err) from err


def _unwritable(final: Path, err: OSError) -> GohscoreError:
    """The user error for an output that cannot be written where it belongs."""
    return GohscoreError(
        f"{final.parent}: cannot write {final.name} ({err.strerror or err}); "
        "make the folder writable (and check the disk is not full) or choose another results folder"
    )


def read_parquet(path: Path, what: str, columns: Sequence[str] = ()) -> pd.DataFrame:
    """A parquet table with ``columns`` present and ``patient`` as string; GohscoreError naming the file."""
    import pandas as pd  # lazily: the phantom and resample jobs never read tables

    path = Path(path)
    if not path.is_file():
        raise GohscoreError(f"{path}: {what} not found; check the path or run the step that writes it")
    try:
        frame = pd.read_parquet(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise GohscoreError(f"{path}: cannot read {what} as parquet ({err}); regenerate it") from err
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise GohscoreError(f"{path}: {what} lacks columns {missing}; regenerate it")
    if "patient" in frame.columns:
        frame["patient"] = frame["patient"].astype(str)
    return frame


def json_object(text: str, source: str, fix: str) -> dict:
    """``text`` parsed as a JSON object; otherwise a user error naming ``source`` and saying ``fix``."""
    import json

    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise GohscoreError(f"{source}: not valid JSON ({err.msg}); {fix}") from None
    if not isinstance(value, dict):
        raise GohscoreError(f"{source}: not a JSON object; {fix}")
    return value
