"""Finding the files of a folder source: root/<class>/<file> (classes sorted, as torchvision's
ImageFolder), root/<class>/<video>/<frame> for frame folders, or a list file.

Files come from strangers: every file is ``os.stat``-ed (which follows a symlink) and kept only if
it is a regular, non-empty file, so a FIFO or a device is never opened and a link to one is
refused; listings go exactly two (three for frames) levels deep, so a symlink loop cannot recurse.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass, field

__all__ = ["FRAME_EXTS", "IMAGE_EXTS", "VIDEO_EXTS", "Found", "file_problem", "scan"]

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
FRAME_EXTS = (".jpg", ".jpeg", ".png")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_FILES = 10_000_000  # entries listed in one folder at most


@dataclass
class Found:
    """What a scan found: items (a file, or a video's frame files) with class indices, and the rest."""

    classes: list[str]
    items: list[list[str]] = field(default_factory=list)  # one file, or the frames of one video
    labels: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    seen: int = 0  # candidate files (or frame folders) looked at


def file_problem(path: str) -> str | None:
    """Why ``path`` is not a readable regular file with content, or None if it is."""
    try:
        info = os.stat(path)  # follows a symlink: what it points at must be a regular file
    except OSError as exc:
        return f"cannot stat it ({exc.strerror or exc})"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_size == 0:
        return "zero-length file"
    return None


def _entries(folder: str, want_dirs: bool) -> list[str]:
    names = []
    with os.scandir(folder) as it:
        for count, entry in enumerate(it):
            if count >= MAX_FILES:
                raise ValueError(f"{folder} has more than {MAX_FILES} entries")
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows links; a listing never goes deeper than planned
            except OSError:
                is_dir = False
            if is_dir == want_dirs:
                names.append(entry.name)
    return sorted(names)


def _class_dirs(root: str) -> list[str]:
    if not os.path.isdir(root):
        raise ValueError(f"root {root} is not a folder")
    return _entries(root, want_dirs=True)


def scan(root: str, kind: str, list_file: str | None = None) -> Found:
    """The items of ``root`` for ``kind`` (video-folder, frame-folder, image-folder)."""
    classes = _class_dirs(root)
    if list_file is not None:
        return _from_list(root, list_file, classes)
    found = Found(classes)
    exts = VIDEO_EXTS if kind == "video-folder" else IMAGE_EXTS
    for label, name in enumerate(classes):
        folder = os.path.join(root, name)
        if kind == "frame-folder":
            for video in _entries(folder, want_dirs=True):
                found.seen += 1
                _frames(os.path.join(folder, video), label, found)
            continue
        for file in _entries(folder, want_dirs=False):
            if os.path.splitext(file)[1].lower() in exts:
                found.seen += 1
                _keep(os.path.join(folder, file), label, found)
    return found


def _keep(path: str, label: int, found: Found) -> None:
    why = file_problem(path)
    if why is None:
        found.items.append([path])
        found.labels.append(label)
    else:
        found.skipped.append((path, why))


def _frames(folder: str, label: int, found: Found) -> None:
    names = [n for n in _entries(folder, want_dirs=False) if os.path.splitext(n)[1].lower() in FRAME_EXTS]
    frames = []
    for name in names:  # sorted by name: zero-padded frame numbers give the time order
        path = os.path.join(folder, name)
        why = file_problem(path)
        if why is None:
            frames.append(path)
        else:
            found.skipped.append((path, why))
    if frames:
        found.items.append(frames)
        found.labels.append(label)
    else:
        found.skipped.append((folder, "no usable frames (.jpg, .jpeg or .png)"))


def _from_list(root: str, list_file: str, classes: list[str]) -> Found:
    """CSV lines ``path,label`` (a class name or a 0-based index) or UCF-101 split lines
    ``Class/video.avi [index]`` (the class comes from the path's folder: UCF's index is 1-based).
    Paths are relative to ``root`` and may not leave it."""
    problem = file_problem(list_file)
    if problem:
        raise ValueError(f"list file {list_file}: {problem}")
    found = Found(list(classes))
    index_of: dict[str, int] = {name: i for i, name in enumerate(classes)}
    top = os.path.realpath(root)
    with open(list_file, encoding="utf-8", newline="") as handle:
        text = handle.read(64 * 1024 * 1024)
    comma = "," in text.split("\n", 1)[0]
    rows = csv.reader(text.splitlines()) if comma else (line.split() for line in text.splitlines())
    for number, row in enumerate(rows, 1):
        row = [cell.strip() for cell in row]
        if not row or not row[0] or row[0].startswith("#") or (number == 1 and row[0].lower() == "path"):
            continue
        relative = row[0]
        path = os.path.normpath(os.path.join(root, relative))
        where = f"{list_file}:{number}"
        if not os.path.realpath(path).startswith(top + os.sep):
            found.skipped.append((where, f"{relative} is outside root"))
            continue
        label = _label(row, relative, comma, index_of, found.classes)
        if isinstance(label, str):
            found.skipped.append((where, label))
            continue
        found.seen += 1
        _keep(path, label, found)
    return found


def _label(
    row: list[str], relative: str, comma: bool, index_of: dict[str, int], classes: list[str]
) -> int | str:
    """The class index of a list row, or why there is none."""
    name = row[1] if comma and len(row) > 1 else os.path.dirname(os.path.normpath(relative))
    if comma and name.isdigit():
        return int(name)
    if not name:
        return "no label and no class folder in the path"
    if name not in index_of:  # a class named only in the list: appended in order of appearance
        index_of[name] = len(classes)
        classes.append(name)
    return index_of[name]
