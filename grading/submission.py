"""Bring a submission (a folder or a .zip) into a job folder, safely.

Nothing is trusted: archive members with absolute paths, ``..`` or links are
refused, sizes, counts and compression ratios are capped before anything is
written, and folders are copied without following symlinks. The notebook must
be UTF-8, valid nbformat 4 and within the cell and size limits.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

import nbformat

from grading.errors import SubmissionError

__all__ = ["import_submission", "check_notebook", "submission_hash"]

_SKIP = {".ipynb_checkpoints", "__pycache__", ".git"}


def submission_hash(path: Path) -> str:
    """SHA-256 over the relative paths and bytes of every file, in sorted order."""
    h = hashlib.sha256()
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        rel = p.name if path.is_file() else p.relative_to(path).as_posix()
        h.update(rel.encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


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
    try:
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
    if not path.is_file():
        raise SubmissionError(
            f"{path.name}: the notebook is missing; the submission must contain it at the kit's root"
        )
    size = path.stat().st_size
    if size > max_mb * 1e6:
        raise SubmissionError(
            f"{path.name}: {size / 1e6:.1f} MB; the limit is {max_mb:.0f} MB. Clear outputs and "
            "keep data out of the notebook"
        )
    raw = path.read_bytes()
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
