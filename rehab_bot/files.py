"""Files that hold health data are private to the bot's user: 0600, folders 0700.

The process sets umask 077 at start (``rehab-bot`` main), so anything it
creates is private; these helpers make the modes explicit where the bot
writes data on purpose (the database, backups, exports, invite QR codes),
so they hold in tests, when embedded, and for files that already existed
with wider modes. Plain Python: no telegram imports.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700
UMASK = 0o077


def set_private_umask() -> int:
    """Set umask 077 for the rest of the process; returns the previous one."""
    return os.umask(UMASK)


def kept_unless_forced(paths: Sequence[Path], other: str) -> str | None:
    """Why files written earlier stay (the commands overwrite them only with --force), or None when none exists.

    ``other`` names what to choose instead: "path", "--qr", "--out".
    """
    existing = [str(path) for path in paths if path.exists()]
    if not existing:
        return None
    verb, them = ("exists", "it") if len(existing) == 1 else ("exist", "them")
    return f"{' and '.join(existing)} already {verb}; pass --force to overwrite {them}, or choose another {other}"


def private_dir(path: Path) -> Path:
    """Create a folder (and missing parents) as 0700; an existing folder keeps its mode."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    if current.exists() and not current.is_dir():
        # mkdir would say "File exists" about the file in the way, or "Not a directory" about the path.
        raise NotADirectoryError(errno.ENOTDIR, f"{current} is a file, not a folder", str(path))
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    for created in missing:
        os.chmod(created, DIR_MODE)  # mkdir's parents ignore mode=; the umask may be wider
    return path


def _narrow(path: Path) -> None:
    """chmod 0600; a file owned by another user keeps its mode, with a warning."""
    try:
        if stat.S_IMODE(path.stat().st_mode) != FILE_MODE:
            os.chmod(path, FILE_MODE)
    except PermissionError:
        log.warning("cannot make %s private (0600): it belongs to another user", path.name)


def make_private(path: Path) -> None:
    """chmod 0600 if the file exists."""
    if path.exists():
        _narrow(path)


def touch_private(path: Path) -> None:
    """Create the file empty as 0600 if missing, or narrow an existing one to 0600."""
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
        os.close(fd)
    _narrow(path)


def write_private_bytes(path: Path, data: bytes) -> None:
    """Write a file that only the bot's user can read (0600), replacing its content."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, FILE_MODE)


def write_private_text(path: Path, text: str) -> None:
    """write_private_bytes for UTF-8 text."""
    write_private_bytes(path, text.encode("utf-8"))


@dataclass
class Staged:
    """Files written under hidden temporary names beside their final paths, not yet in place.

    For files that must not exist without a database record: the command line stages them,
    commits the record, and only then ``publish``es them (moves them into place); when the
    commit fails, ``discard`` removes them and the folders made for them. Exports (nothing
    leaves without an audit record) and invite QR codes (no QR for an invitation that does
    not exist) are written this way.
    """

    moves: list[tuple[Path, Path]]  # (temporary, final)
    made: list[Path]  # folders created for the files, deepest first

    def publish(self) -> list[Path]:
        for temporary, final in self.moves:
            os.replace(temporary, final)
        return [final for _, final in self.moves]

    def discard(self) -> None:
        for temporary, _ in self.moves:
            temporary.unlink(missing_ok=True)
        for folder in self.made:
            with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
                folder.rmdir()


def stage(folder: Path, files: dict[str, bytes]) -> Staged:
    """Write files (name -> bytes) into folder (created 0700 if missing) under hidden temporary names, 0600."""
    made = []
    current = folder
    while not current.exists() and current != current.parent:
        made.append(current)
        current = current.parent
    staged = Staged([], made)
    try:
        private_dir(folder)
        for name, data in files.items():
            fd, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
            staged.moves.append((Path(temporary), folder / name))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
    except BaseException:
        staged.discard()
        raise
    return staged
