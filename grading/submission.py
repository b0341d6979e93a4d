"""Bring a submission (a folder or a .zip) into a job folder, safely.

Nothing is trusted: archive members with absolute paths, ``..`` or links are
refused, sizes, counts and compression ratios are capped before anything is
written, and folders are copied without following symlinks. The notebook must
be UTF-8, valid nbformat 4 and within the cell and size limits.

Every read is bounded before it starts: an archive's own size and its
central directory (the member count and the index's size, read from its last
bytes) are checked before :mod:`zipfile` parses the index; the hash reads at
most :data:`MAX_HASHED_BYTES` and never follows a link or opens a FIFO or a
device; the notebook's size is checked on the open file before it is read.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path, PurePosixPath

import nbformat

from grading.errors import SubmissionError

__all__ = ["MAX_HASHED_BYTES", "import_submission", "check_notebook", "submission_hash"]

_SKIP = {".ipynb_checkpoints", "__pycache__", ".git"}
#: The submission hash reads at most this many bytes of content (files past it count by
#: path and size): a submission that large is refused by the import anyway.
MAX_HASHED_BYTES = 1_000_000_000
#: ... and looks at most at this many entries of a folder.
MAX_HASHED_ENTRIES = 100_000
#: An archive's central directory (its index of members) may take this many bytes per
#: member allowed, and at least 1 MB.
CENTRAL_DIRECTORY_BYTES_PER_FILE = 2048


def _entries(path: Path) -> list[tuple[tuple[str, ...], Path]]:
    """(relative parts, path) of every entry under ``path``, links not followed, sorted."""
    out = []
    for root, dirs, files in os.walk(path, followlinks=False):
        for name in files + [d for d in dirs if Path(root, d).is_symlink()]:
            p = Path(root, name)
            out.append((p.relative_to(path).parts, p))
            if len(out) > MAX_HASHED_ENTRIES:
                return sorted(out)
    return sorted(out)


def submission_hash(
    path: Path, max_bytes: int = MAX_HASHED_BYTES, skip: frozenset[str] = frozenset()
) -> str:
    """SHA-256 over the relative paths and bytes of every file, in sorted order.

    Links are hashed as their target's text (never followed), FIFOs and
    devices as their kind; past ``max_bytes`` of content in total, files count
    by their path and size only. Top-level names in ``skip`` are left out
    (nbgrader's ``timestamp.txt``: the same work submitted twice has one hash).
    """
    h = hashlib.sha256()
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        entries = _entries(path)
    else:  # a file; the top-level path is the instructor's, so a link to an archive is followed
        entries = [((path.name,), path.resolve() if path.is_symlink() else path)]
    budget = max_bytes
    entries = [(parts, p) for parts, p in entries if not (len(parts) == 1 and parts[0] in skip)]
    for parts, p in entries[:MAX_HASHED_ENTRIES]:
        h.update("/".join(parts).encode("utf-8", "surrogateescape") + b"\0")
        try:
            st = p.lstat()
        except OSError:
            h.update(b"\0missing\0")
            continue
        if stat.S_ISLNK(st.st_mode):
            h.update(b"\0link\0" + os.fsencode(os.readlink(p)) + b"\0")
            continue
        if not stat.S_ISREG(st.st_mode):
            h.update(b"\0special\0")
            continue
        if st.st_size > budget:
            h.update(f"\0size {st.st_size}\0".encode())
            continue
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            h.update(b"\0unreadable\0")
            continue
        with os.fdopen(fd, "rb") as f:
            while budget > 0 and (chunk := f.read(min(1 << 20, budget))):
                h.update(chunk)
                budget -= len(chunk)
        h.update(b"\0")
    if len(entries) > MAX_HASHED_ENTRIES:
        h.update(b"\0more entries\0")
    return h.hexdigest()


def _check_central_directory(archive: Path, size: int, max_files: int) -> None:
    """Refuse an archive whose index is too large, from its last bytes, before zipfile reads it.

    :mod:`zipfile` reads the whole central directory and makes an object per
    member before any count can be checked; a few MB of index could hold
    millions of members. The end-of-directory record (and its ZIP64 form)
    states the member count and the index's size.
    """
    limit = max(1_000_000, max_files * CENTRAL_DIRECTORY_BYTES_PER_FILE)
    with archive.open("rb") as f:
        f.seek(max(0, size - 65_557))
        tail = f.read()
        at = len(tail) - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
        if at < 0 or len(tail) - at < 22:
            return  # not a zip: zipfile says so
        _, _, _, _, entries, cd_size, cd_offset, _ = struct.unpack("<4s4H2LH", tail[at : at + 22])
        if entries == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
            loc = tail[at - 20 : at] if at >= 20 else b""
            if len(loc) == 20 and loc[:4] == b"PK\x06\x07":
                offset = struct.unpack("<4sLQL", loc)[2]
                f.seek(offset)
                rec = f.read(56)
                if len(rec) == 56 and rec[:4] == b"PK\x06\x06":
                    entries, cd_size = struct.unpack("<4sQ2H2L4Q", rec)[7:9]
    if entries > max_files:
        raise SubmissionError(
            f"{archive.name}: {entries} members; at most {max_files} are accepted"
        )
    if cd_size > limit:
        raise SubmissionError(
            f"{archive.name}: its index of members is {cd_size:,} bytes, above the {limit:,} "
            "allowed (too many members or very long names)"
        )


def _safe_member(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    drive = bool(p.parts) and ":" in p.parts[0]
    if p.is_absolute() or ".." in p.parts or drive:
        raise SubmissionError(
            f"archive member {name!r} points outside the submission (absolute path or '..'); "
            "zip the kit folder's contents with relative paths"
        )
    return p


def _extract_zip(archive: Path, dest: Path, max_bytes: int, max_files: int, max_ratio: float):
    size = archive.stat().st_size
    if size > max_bytes:
        raise SubmissionError(
            f"{archive.name}: the archive is {size / 1e6:.0f} MB; the limit is "
            f"{max_bytes / 1e6:.0f} MB (leave data and outputs out of the archive)"
        )
    try:
        _check_central_directory(archive, size, max_files)
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(f"{archive.name}: not a readable zip archive ({exc})") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_files:
            raise SubmissionError(
                f"{archive.name}: {len(infos)} members; at most {max_files} are accepted"
            )
        total = sum(i.file_size for i in infos)
        packed = max(sum(i.compress_size for i in infos), 1)
        if total > max_bytes:
            raise SubmissionError(
                f"{archive.name}: unpacks to {total / 1e6:.0f} MB; the limit is "
                f"{max_bytes / 1e6:.0f} MB (leave data and outputs out of the archive)"
            )
        if total / packed > max_ratio and total > 1_000_000:
            raise SubmissionError(
                f"{archive.name}: compression ratio {total / packed:.0f}:1 looks like a zip bomb; "
                f"the limit is {max_ratio:.0f}:1"
            )
        for info in infos:
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise SubmissionError(
                    f"archive member {info.filename!r} is a symbolic link; links are not accepted"
                )
            rel = _safe_member(info.filename)
            if any(part in _SKIP for part in rel.parts):
                continue
            target = dest.joinpath(*rel.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with zf.open(info) as src, target.open("wb") as out:
                for chunk in iter(lambda s=src: s.read(1 << 20), b""):
                    written += len(chunk)
                    if written > info.file_size or written > max_bytes:
                        raise SubmissionError(
                            f"archive member {info.filename!r} unpacks past its declared size"
                        )
                    out.write(chunk)


def _copy_tree(src: Path, dest: Path, max_bytes: int, max_files: int):
    count = 0
    total = 0
    for root, dirs, files in os.walk(src, followlinks=False):
        dirs[:] = [d for d in dirs if d not in _SKIP]
        rel_root = Path(root).relative_to(src)
        for d in list(dirs):
            if Path(root, d).is_symlink():
                raise SubmissionError(
                    f"{rel_root / d}: is a symbolic link; submissions may not contain links"
                )
        (dest / rel_root).mkdir(parents=True, exist_ok=True)
        for name in files:
            p = Path(root, name)
            if p.is_symlink():
                raise SubmissionError(
                    f"{rel_root / name}: is a symbolic link; submissions may not contain links"
                )
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode):
                raise SubmissionError(f"{rel_root / name}: not a regular file")
            count += 1
            total += st.st_size
            if count > max_files or total > max_bytes:
                raise SubmissionError(
                    f"{src.name}: more than {max_files} files or {max_bytes / 1e6:.0f} MB; "
                    "leave data and outputs out of the submission"
                )
            shutil.copyfile(p, dest / rel_root / name, follow_symlinks=False)


def import_submission(
    source: Path,
    dest: Path,
    *,
    max_bytes: int = 200_000_000,
    max_files: int = 2000,
    max_ratio: float = 200,
) -> Path:
    """Copy or unpack ``source`` into ``dest`` (which must not exist) and return the kit root.

    A zip whose files all sit in one top folder is unwrapped to that folder.
    """
    source = Path(source)
    if not source.exists():
        raise SubmissionError(f"{source}: no such submission (give a kit folder or a .zip)")
    dest.mkdir(parents=True)
    if source.is_dir():
        if source.is_symlink():
            raise SubmissionError(f"{source}: the submission itself is a symbolic link")
        _copy_tree(source, dest, max_bytes, max_files)
    elif source.suffix.lower() == ".zip":
        _extract_zip(source, dest, max_bytes, max_files, max_ratio)
    else:
        raise SubmissionError(f"{source}: a submission is a folder or a .zip, not {source.suffix}")
    entries = [p for p in dest.iterdir()]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return dest


def check_notebook(path: Path, max_cells: int, max_mb: float):
    """Read and check the notebook; return it, or raise :class:`SubmissionError` saying why."""
    from grading.harness import OutputError, read_bounded

    if not path.is_file() or path.is_symlink():
        raise SubmissionError(
            f"{path.name}: the notebook is missing; the submission must contain it at the kit's root"
        )
    try:
        raw = read_bounded(path, int(max_mb * 1e6))
    except OutputError as exc:
        raise SubmissionError(
            f"{path.name}: {exc}; the limit is {max_mb:.0f} MB. Clear outputs and keep data out "
            "of the notebook"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{path.name}: not UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 4]!r}); "
            "save the notebook from Jupyter again"
        ) from None
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise SubmissionError(f"{path.name}: not a valid Jupyter notebook: {first}") from None
    cells = len(nb.cells)
    if cells > max_cells:
        raise SubmissionError(f"{path.name}: {cells} cells; at most {max_cells} are run")
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        raise SubmissionError(
            f"{path.name}: no cell tagged 'parameters'; keep the kit's parameters cell"
        )
    return nb
