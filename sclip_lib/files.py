"""Writing files safely: atomically, with the usual permissions, and into places checked beforehand."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = [
    "write_atomic",
    "check_output_file",
    "check_output_folder",
    "check_name_length",
    "OutputPathError",
    "OutputExistsError",
]


class OutputPathError(ValueError):
    """An output path that cannot be written; the message says why and what to do."""


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read it is to set it; put it back at once
    os.umask(mask)
    return mask


class OutputExistsError(OutputPathError, FileExistsError):
    """An output that another writer created meanwhile (``write_atomic(..., exclusive=True)``)."""


def write_atomic(path: str | os.PathLike, data: str | bytes, *, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader (or a crash, a Ctrl-C) sees the old file or the new one, never half of it. The file gets
    the permissions an ordinary ``open()`` would give (0666 less the umask; ``mkstemp`` makes 0600).
    ``exclusive=True`` never replaces a file: if ``path`` exists (another writer got there first, even
    one that checked at the same moment) it raises :class:`OutputExistsError` and leaves that file alone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the temporary name must fit the file system's name limit too: keep only the start of a long name
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:40]}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        if isinstance(data, str):
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(data)
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        if exclusive:
            _link_new(tmp, path)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _link_new(tmp: str, path: Path) -> None:
    """Give the finished temporary file the name ``path`` only if no file has it: a hard link is created
    atomically and fails if the name exists (``O_EXCL`` semantics for a file written elsewhere first)."""
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here (some network or FUSE file systems): claim the name with O_EXCL
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.replace(tmp, path)
            return
    except FileExistsError:
        raise OutputExistsError(
            f"{path} exists already (another run wrote it meanwhile): choose another name, or pass "
            "--overwrite (overwrite=True) to replace it"
        ) from None
    os.unlink(tmp)


def check_output_folder(folder: str | os.PathLike, what: str = "--out") -> Path:
    """Make sure ``folder`` exists (creating it) and a file can be written in it; before any compute."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{what} {folder} is a file, not a folder: name a folder for the results")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe(folder)
    except OSError as err:
        raise OutputPathError(
            f"{what} {folder} cannot be written ({err.strerror or err}): choose a folder you can write to"
        ) from None
    return folder


def _probe(folder: Path) -> None:
    """Create and remove a file in ``folder`` (``os.access`` says yes to root even on read-only mounts)."""
    fd, probe = tempfile.mkstemp(prefix=".sclip-write-test.", dir=folder)
    os.close(fd)
    os.unlink(probe)


def check_output_file(
    path: str | os.PathLike,
    what: str,
    *,
    suffixes: tuple[str, ...],
    inputs: tuple[str | os.PathLike, ...] = (),
    overwrite: bool = False,
) -> Path:
    """Check an output file before any compute: a supported suffix, not an input, not an existing file
    unless ``overwrite``, and a folder that exists and is writable."""
    text = os.fspath(path)
    if text.endswith(("/", os.sep)):  # Path() drops a trailing slash: "imgs.png/" would become a file
        raise OutputPathError(
            f"{what} {text} ends with '/', which names a folder: give a file name, e.g. {text.rstrip('/' + os.sep)}"
        )
    path = Path(path).expanduser()
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(
            f"{what} {path}: {'a ' + path.suffix if path.suffix else 'no'} extension; it must end in "
            f"{' or '.join(suffixes)}"
        )
    check_name_length(path, what)
    for source in inputs:
        if _same_file(path, Path(source)):
            raise OutputPathError(
                f"{what} {path} is the input image: choose another file name; inputs are never overwritten"
            )
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder: give a file name, e.g. {path / ('mask' + suffixes[0])}")
    if path.exists() and not overwrite:
        raise OutputPathError(f"{what} {path} exists already: choose another name, or pass --overwrite to replace it")
    folder = path.parent
    if not folder.is_dir():
        raise OutputPathError(f"{what} {path}: the folder {folder} does not exist; create it first")
    try:
        _probe(folder)
    except OSError as err:
        raise OutputPathError(
            f"{what} {path}: the folder {folder} is not writable ({err.strerror}); choose another folder"
        ) from None
    return path


def check_name_length(path: Path, what: str) -> None:
    """Refuse a file name longer than the folder's file system allows (``ENAMETOOLONG`` otherwise)."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        limit = os.pathconf(folder if folder.is_dir() else ".", "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):  # no pathconf (Windows) or no answer: the usual limit
        limit = 255
    size = len(os.fsencode(path.name))
    if size > limit:
        raise OutputPathError(
            f"{what} {path.name[:40]}...: the file name is {size} bytes long; this file system allows at most "
            f"{limit}: choose a shorter name"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()
