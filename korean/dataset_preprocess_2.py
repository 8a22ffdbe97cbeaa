"""Step 2 of the AIHub pipeline: step-1 annotations -> cropped images + DTRB ``gt.txt``.

Reads one JSON-lines file written by ``korean/dataset_preprocess.py`` (records
``{"image", "text", "bbox", "source", "image_size"}``, see that module) and the images root
it refers to, and writes:

``<output_dir>/images/NNNN/LLLLLLLLL.png``
    One file per kept text item, named after the record's line number ``L`` in the
    annotation file (``NNNN = L // 10000``, so no folder holds more than 10,000 files).
    A record with a bbox becomes a PNG crop of the box; a record without one (printed and
    handwriting sets) keeps the original image file's bytes and extension.
``<output_dir>/gt.txt``
    UTF-8, one ``images/NNNN/LLLLLLLLL.png<TAB>label`` line per written item, in annotation
    order: what ``create_lmdb_dataset.py --inputPath <output_dir> --gtFile <output_dir>/gt.txt``
    reads. It is written last, through a temporary file and ``os.replace``, so an interrupted
    run never leaves a ``gt.txt`` that looks complete.
``<output_dir>/skipped.tsv``
    ``line<TAB>image<TAB>reason<TAB>source`` for every record that was not written.
``<output_dir>/crop_summary.json``
    The summary returned by ``crop_dataset``.

Cropping: a box ``[x, y, w, h]`` covers the pixels from ``floor(x)`` to ``ceil(x + w)``
(exclusive) and likewise in y, clipped to the image. Boxes with ``w <= 0`` or ``h <= 0``,
and boxes entirely outside the image, are skipped and counted. When the annotation states
the image size and the decoded image only matches it after applying its EXIF orientation
(photos from phones), the orientation is applied before cropping.

Images are looked up as ``image_root/<image>``; when that file does not exist (other folder
layout, or Hangul names stored decomposed by macOS) the file is searched below
``image_root`` by its NFC file name. Labels are NFC-normalised; a label holding a tab or a
line break would corrupt ``gt.txt``, so by default those characters become spaces
(``--label_policy skip`` drops such labels instead).

Work is spread over ``--workers`` processes, one task per source image, so each photo is
decoded once for all its boxes.

Usage from the repository root::

    python korean/dataset_preprocess_2.py --annotation_file data/ann/train.jsonl \\
        --image_root data/Training --output_dir data/crops/train
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import multiprocessing
import os
import signal
import sys
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image, ImageOps
from tqdm import tqdm

if __package__ in (None, ""):
    # Run as `python korean/dataset_preprocess_2.py`: make `korean.*` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from korean.dataset_preprocess import AnnotationFormatError, write_files_atomically  # noqa: E402

logger = logging.getLogger(__name__)

GT_FILE = "gt.txt"
SKIPPED_FILE = "skipped.tsv"
SUMMARY_FILE = "crop_summary.json"
IMAGES_DIR = "images"
FILES_PER_FOLDER = 10_000
DEFAULT_WORKERS = 4
LABEL_POLICIES = ("sanitize", "skip")
# Characters that would split a gt.txt line or field (tab, line and paragraph breaks).
FORBIDDEN_LABEL_CHARS = "\t\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
ORIGINAL_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
PNG_SAFE_MODES = {"1", "L", "LA", "P", "RGB", "RGBA"}
MAX_EXAMPLES = 5

SKIP_REASONS = {
    "missing_image": "image file not found under --image_root",
    "ambiguous_image": "image path not found and its file name matches several files",
    "unreadable_image": "image file exists but cannot be read (permissions?)",
    "corrupt_image": "image file does not decode (corrupt, truncated or not an image)",
    "empty_or_negative_box": "bbox width or height is zero or negative",
    "box_outside_image": "bbox lies entirely outside the image",
    "label_has_tab_or_newline": "label holds a tab or line break (--label_policy skip)",
    "empty_label": "label is empty after removing tabs and line breaks",
}


@dataclass
class Item:
    """One record of the annotation file, with its 1-based line number."""

    line: int
    image: str
    text: str
    bbox: list[float] | None
    source: str = ""
    image_size: tuple[int, int] | None = None


@dataclass
class ImageTask:
    """Everything a worker needs for one source image: where it is and which boxes to cut."""

    path: str
    image_size: tuple[int, int] | None
    boxes: list[tuple[int, list[float] | None]]
    output_dir: str


@dataclass
class ImageResult:
    """What a worker did with one source image: per line, the written path or a skip reason."""

    written: list[tuple[int, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)
    status: str = "read"  # "read", "exif_rotated", "size_mismatch", "corrupt" or "unreadable"
    clipped: int = 0


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC (Hangul syllables composed)."""
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------- reading

def parse_item(path: Path, line_no: int, line: str) -> Item:
    """Parse one annotation line; errors name the file, the line and what was expected."""
    where = f"{path}, line {line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise AnnotationFormatError(f"{where}, column {exc.colno}: invalid JSON: {exc.msg}") from exc
    if not isinstance(record, dict):
        raise AnnotationFormatError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for key in ("image", "text"):
        if key not in record:
            raise AnnotationFormatError(f"{where}: missing key '{key}' (expected a step-1 record)")
    image, text = record["image"], record["text"]
    if not isinstance(image, str) or not image:
        raise AnnotationFormatError(f"{where}: 'image' must be a non-empty relative path")
    image = image.replace("\\", "/")
    if image.startswith("/") or ".." in image.split("/"):
        raise AnnotationFormatError(f"{where}: 'image' {image!r} must stay inside --image_root")
    if not isinstance(text, str):
        raise AnnotationFormatError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    bbox = record.get("bbox")
    if bbox is not None:
        if (not isinstance(bbox, list) or len(bbox) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in bbox)):
            raise AnnotationFormatError(f"{where}: 'bbox' must be null or [x, y, w, h] numbers, got {bbox!r}")
    size = record.get("image_size")
    image_size = None
    if isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        image_size = (size[0], size[1])
    return Item(line_no, image, nfc(text), bbox, str(record.get("source", "")), image_size)


def read_items(path: Path) -> list[Item]:
    """Read every non-blank line of a step-1 JSON-lines file."""
    try:
        handle = open(path, encoding="utf-8-sig")
    except OSError as exc:
        raise FileNotFoundError(f"--annotation_file {path}: cannot open: {exc.strerror or exc}") from exc
    items = []
    with handle:
        try:
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    items.append(parse_item(path, line_no, line))
        except UnicodeDecodeError as exc:
            raise AnnotationFormatError(f"{path}: not UTF-8 text near line {line_no + 1}") from exc
    return items


def clean_label(text: str, policy: str) -> tuple[str | None, str | None, bool]:
    """Return ``(label, skip_reason, was_changed)`` for writing into gt.txt.

    Tabs and line breaks cannot live in a gt.txt label: with ``sanitize`` each becomes a
    space, with ``skip`` the item is dropped. Surrounding whitespace is removed.
    """
    label = nfc(text)
    if any(ch in FORBIDDEN_LABEL_CHARS for ch in label):
        if policy == "skip":
            return None, "label_has_tab_or_newline", False
        label = "".join(" " if ch in FORBIDDEN_LABEL_CHARS else ch for ch in label)
        changed = True
    else:
        changed = False
    label = label.strip()
    if not label:
        return None, "empty_label", changed
    return label, None, changed


# --------------------------------------------------------------------------- finding images

class ImageLocator:
    """Finds an annotation's image below ``root``: first as written, then by NFC file name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._by_name: dict[str, list[Path]] | None = None
        self.found_by_name = 0

    def _index(self) -> dict[str, list[Path]]:
        # Built only when some path is not where the annotation says: one walk of the tree.
        if self._by_name is None:
            logger.info("some images are not at their annotated path; indexing %s by file name", self.root)
            index: dict[str, list[Path]] = defaultdict(list)
            for folder, _, names in os.walk(self.root):
                for name in names:
                    index[nfc(name)].append(Path(folder, name))
            self._by_name = index
        return self._by_name

    def locate(self, image: str) -> tuple[Path | None, str | None]:
        """Return ``(path, None)`` or ``(None, "missing_image" | "ambiguous_image")``."""
        direct = self.root.joinpath(*image.split("/"))
        if direct.is_file():
            return direct, None
        wanted = nfc(image)
        candidates = self._index().get(wanted.rsplit("/", 1)[-1], [])
        exact = [c for c in candidates if nfc(c.relative_to(self.root).as_posix()) == wanted]
        if len(exact) == 1 or len(candidates) == 1:
            self.found_by_name += 1
            return (exact or candidates)[0], None
        return None, "ambiguous_image" if candidates else "missing_image"


# --------------------------------------------------------------------------- the worker

def output_name(line: int, extension: str) -> str:
    """The gt.txt path of the item on annotation line ``line``: ``images/NNNN/LLLLLLLLL.ext``."""
    return f"{IMAGES_DIR}/{line // FILES_PER_FOLDER:04d}/{line:09d}{extension}"


PixelBox = tuple[int, int, int, int]


def pixel_box(bbox: Sequence[float], width: int, height: int) -> tuple[PixelBox | None, str | None, bool]:
    """Turn ``[x, y, w, h]`` into a clipped ``(left, top, right, bottom)`` pixel box.

    Returns ``(box, None, clipped)`` or ``(None, reason, False)`` for a box with no area or
    one entirely outside the image.
    """
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        return None, "empty_or_negative_box", False
    left, top = math.floor(x), math.floor(y)
    right, bottom = math.ceil(x + w), math.ceil(y + h)
    clipped_box = (max(0, left), max(0, top), min(width, right), min(height, bottom))
    if clipped_box[0] >= clipped_box[2] or clipped_box[1] >= clipped_box[3]:
        return None, "box_outside_image", False
    return clipped_box, None, clipped_box != (left, top, right, bottom)


def orient_like_annotation(image: Image.Image, expected: tuple[int, int] | None) -> tuple[Image.Image, str]:
    """Apply the EXIF orientation only when that is what makes the size match the annotation."""
    if expected is None or image.size == expected:
        return image, "read"
    turned = ImageOps.exif_transpose(image)
    if turned.size == expected:
        return turned, "exif_rotated"
    return image, "size_mismatch"


def save_atomically(path: Path, write: Any) -> None:
    """Call ``write(temp_path)`` then move the temp file to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(temp)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def original_extension(path: str, image: Image.Image) -> str:
    """The extension to keep for a copied original: its own, or one from the decoded format."""
    suffix = Path(path).suffix.lower()
    if suffix in ORIGINAL_EXTENSIONS:
        return suffix
    return "." + (image.format or "png").lower().replace("jpeg", "jpg")


def process_image(task: ImageTask) -> ImageResult:
    """Decode one source image once and write every box of it (or a copy of the file).

    Decoding errors are reported as ``corrupt``; errors writing the output (disk full,
    permissions) propagate, because they would make the whole output unusable.
    """
    result = ImageResult()
    try:
        data = Path(task.path).read_bytes()
    except OSError:
        result.status = "unreadable"
        result.skipped = [(line, "unreadable_image") for line, _ in task.boxes]
        return result
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = opened
        if image.width == 0 or image.height == 0:
            raise ValueError("zero-sized image")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        result.status = "corrupt"
        result.skipped = [(line, "corrupt_image") for line, _ in task.boxes]
        return result

    output_dir = Path(task.output_dir)
    if any(bbox is not None for _, bbox in task.boxes):
        oriented, result.status = orient_like_annotation(image, task.image_size)
        if oriented.mode not in PNG_SAFE_MODES:
            oriented = oriented.convert("RGB")
    for line, bbox in task.boxes:
        if bbox is None:
            name = output_name(line, original_extension(task.path, image))
            save_atomically(output_dir / name, lambda temp: temp.write_bytes(data))
            result.written.append((line, name))
            continue
        box, reason, clipped = pixel_box(bbox, oriented.width, oriented.height)
        if box is None:
            result.skipped.append((line, reason))
            continue
        result.clipped += clipped
        name = output_name(line, ".png")
        crop = oriented.crop(box)
        save_atomically(output_dir / name, lambda temp: crop.save(temp, format="PNG"))
        result.written.append((line, name))
    return result


# --------------------------------------------------------------------------- the driver

def group_by_image(items: Iterable[Item]) -> dict[str, list[Item]]:
    """Group items by source image, keeping first-appearance order."""
    groups: dict[str, list[Item]] = {}
    for item in items:
        groups.setdefault(item.image, []).append(item)
    return groups


def run_tasks(tasks: list[ImageTask], workers: int, total_boxes: int,
              show_progress: bool) -> Iterable[tuple[ImageTask, ImageResult]]:
    """Yield ``(task, result)`` for every task, in a process pool when ``workers > 1``."""
    progress = tqdm(total=total_boxes, desc="cropping", unit="box", disable=not show_progress)
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                result = process_image(task)
                progress.update(len(task.boxes))
                yield task, result
            return
        # Results come back in any order; keep the task with each by index.
        indexed = list(enumerate(tasks))
        # spawn, not fork: a forked child can inherit a lock held by a thread of the parent
        # (tqdm runs a monitor thread), and spawn behaves the same on Linux, macOS and Windows.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_ignore_sigint) as pool:
            chunksize = max(1, min(16, len(tasks) // (workers * 8)))
            for index, result in pool.imap_unordered(_process_indexed, indexed, chunksize=chunksize):
                progress.update(len(tasks[index].boxes))
                yield tasks[index], result
    finally:
        progress.close()


def _ignore_sigint() -> None:
    """Pool initializer: Ctrl-C is handled by the parent, which terminates the workers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _process_indexed(indexed: tuple[int, ImageTask]) -> tuple[int, ImageResult]:
    """Pool helper: run ``process_image`` and return the task index with the result."""
    index, task = indexed
    return index, process_image(task)


def decide_labels(items: Iterable[Item], policy: str) -> tuple[dict[int, str], dict[int, str], int]:
    """Clean every label: returns ``(label per line, skip reason per line, number sanitised)``."""
    labels: dict[int, str] = {}
    skipped: dict[int, str] = {}
    sanitised = 0
    for item in items:
        label, reason, changed = clean_label(item.text, policy)
        sanitised += changed
        if reason:
            skipped[item.line] = reason
        else:
            labels[item.line] = label
    return labels, skipped, sanitised


def plan_tasks(items: Iterable[Item], locator: ImageLocator, output_dir: Path,
               skipped: dict[int, str], image_counts: Counter[str]) -> list[ImageTask]:
    """One task per source image that can be found; items of missing images go to ``skipped``."""
    tasks = []
    for image, group in group_by_image(items).items():
        image_counts["total"] += 1
        path, reason = locator.locate(image)
        if path is None:
            image_counts["missing"] += 1
            skipped.update((item.line, reason) for item in group)
            continue
        tasks.append(ImageTask(str(path), group[0].image_size,
                               [(item.line, item.bbox) for item in group], str(output_dir)))
    return tasks


def crop_dataset(annotation_file: str | os.PathLike, image_root: str | os.PathLike,
                 output_dir: str | os.PathLike, *, workers: int = DEFAULT_WORKERS,
                 label_policy: str = "sanitize", overwrite: bool = False,
                 show_progress: bool = True) -> dict[str, Any]:
    """Crop every record of a step-1 annotation file and write ``gt.txt`` for create_lmdb_dataset.

    Returns a summary dict: ``records``, ``written`` (``crops`` + ``copies``), ``skipped``
    (count per reason), ``labels_sanitised``, ``boxes_clipped``, ``images`` (total, read,
    missing, unreadable, corrupt, exif_rotated, size_mismatch, found_by_name),
    ``examples`` (a few image paths per skip reason) and the output paths.
    Raises ``AnnotationFormatError`` for a bad annotation line, ``FileExistsError`` when
    ``gt.txt`` exists and ``overwrite`` is false, ``FileNotFoundError`` for a missing input.
    """
    if label_policy not in LABEL_POLICIES:
        raise ValueError(f"--label_policy {label_policy!r}: expected one of {', '.join(LABEL_POLICIES)}")
    annotation_file, image_root, output_dir = Path(annotation_file), Path(image_root), Path(output_dir)
    if not image_root.is_dir():
        raise FileNotFoundError(f"--image_root {image_root}: no such folder")
    gt_path = output_dir / GT_FILE
    if gt_path.exists() and not overwrite:
        raise FileExistsError(f"{gt_path} already exists; pass --overwrite to replace it")
    items = read_items(annotation_file)
    # The crops about to be written replace old ones under the same names: a previous gt.txt
    # left behind by an interrupted run would pair old labels with new images.
    for stale in (gt_path, output_dir / SKIPPED_FILE, output_dir / SUMMARY_FILE):
        stale.unlink(missing_ok=True)

    labels, skipped, sanitised = decide_labels(items, label_policy)
    locator = ImageLocator(image_root)
    image_counts: Counter[str] = Counter()
    tasks = plan_tasks([i for i in items if i.line in labels], locator, output_dir, skipped, image_counts)

    output_dir.mkdir(parents=True, exist_ok=True)
    written: dict[int, str] = {}
    clipped = 0
    total_boxes = sum(len(t.boxes) for t in tasks)
    for task, result in run_tasks(tasks, workers, total_boxes, show_progress):
        if result.status in ("corrupt", "unreadable"):
            image_counts[result.status] += 1
        else:
            image_counts["read"] += 1
            image_counts[result.status] += result.status != "read"
        written.update(result.written)
        skipped.update(result.skipped)
        clipped += result.clipped
    image_counts["found_by_name"] = locator.found_by_name

    by_line = {item.line: item for item in items}
    gt_lines = [f"{written[line]}\t{labels[line]}\n" for line in sorted(written)]
    skipped_lines = [f"{line}\t{by_line[line].image}\t{reason}\t{by_line[line].source}\n"
                     for line, reason in sorted(skipped.items())]
    summary = build_summary(annotation_file, image_root, output_dir, items, written, skipped,
                            sanitised, clipped, image_counts)
    # gt.txt goes last: it only appears once every crop it names is on disk.
    write_files_atomically({
        output_dir / SKIPPED_FILE: skipped_lines,
        output_dir / SUMMARY_FILE: [json.dumps(summary, ensure_ascii=False, indent=2) + "\n"],
    })
    write_files_atomically({gt_path: gt_lines})
    return summary


def build_summary(annotation_file: Path, image_root: Path, output_dir: Path, items: list[Item],
                  written: dict[int, str], skipped: dict[int, str], sanitised: int, clipped: int,
                  image_counts: Counter[str]) -> dict[str, Any]:
    """Collect the counts of a ``crop_dataset`` run into a JSON-friendly dict."""
    by_line = {item.line: item for item in items}
    examples: dict[str, list[str]] = defaultdict(list)
    for line, reason in sorted(skipped.items()):
        image = by_line[line].image
        if len(examples[reason]) < MAX_EXAMPLES and image not in examples[reason]:
            examples[reason].append(image)
    copies = sum(1 for line in written if by_line[line].bbox is None)
    return {
        "annotation_file": str(annotation_file),
        "image_root": str(image_root),
        "output_dir": str(output_dir),
        "gt_file": str(output_dir / GT_FILE),
        "records": len(items),
        "written": len(written),
        "crops": len(written) - copies,
        "copies": copies,
        "skipped": dict(sorted(Counter(skipped.values()).items())),
        "labels_sanitised": sanitised,
        "boxes_clipped": clipped,
        "images": {key: image_counts.get(key, 0) for key in
                   ("total", "read", "missing", "unreadable", "corrupt", "exif_rotated", "size_mismatch",
                    "found_by_name")},
        "examples": dict(examples),
    }


# --------------------------------------------------------------------------- command line

def format_report(summary: dict[str, Any]) -> str:
    """A plain-text report of a ``crop_dataset`` summary, for the command line."""
    images = summary["images"]
    lines = [
        f"Wrote {summary['written']} of {summary['records']} items to {summary['gt_file']} "
        f"({summary['crops']} crops, {summary['copies']} original files).",
        f"Source images: {images['total']} referenced, {images['read']} read, {images['missing']} "
        f"missing, {images['unreadable']} unreadable, {images['corrupt']} corrupt.",
    ]
    if images["found_by_name"]:
        lines.append(f"  {images['found_by_name']} image(s) were not at their annotated path and were "
                     "found by file name.")
    if images["exif_rotated"]:
        lines.append(f"  {images['exif_rotated']} image(s) were turned by their EXIF orientation to "
                     "match the annotated size.")
    if images["size_mismatch"]:
        lines.append(f"  {images['size_mismatch']} image(s) differ in size from the annotation; their "
                     "boxes may be wrong.")
    if summary["boxes_clipped"]:
        lines.append(f"  {summary['boxes_clipped']} box(es) reached past the image edge and were clipped.")
    if summary["labels_sanitised"]:
        lines.append(f"  {summary['labels_sanitised']} label(s) had tabs or line breaks replaced by spaces.")
    if summary["skipped"]:
        lines.append(f"Skipped {sum(summary['skipped'].values())} item(s) (listed in "
                     f"{Path(summary['output_dir']) / SKIPPED_FILE}):")
        for reason, count in summary["skipped"].items():
            example = ", ".join(summary["examples"].get(reason, [])[:3])
            lines.append(f"  {count:>9}  {SKIP_REASONS.get(reason, reason)}"
                         + (f"  e.g. {example}" if example else ""))
    else:
        lines.append("Skipped nothing.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of this script."""
    parser = argparse.ArgumentParser(
        description="Step 2: crop the text items of a dataset_preprocess.py annotation file and "
                    "write gt.txt for create_lmdb_dataset.py.",
        epilog="Example: python korean/dataset_preprocess_2.py --annotation_file data/ann/train.jsonl "
               "--image_root data/Training --output_dir data/crops/train, then: python "
               "create_lmdb_dataset.py --inputPath data/crops/train --gtFile data/crops/train/gt.txt "
               "--outputPath data/lmdb/train",
    )
    parser.add_argument("--annotation_file", required=True, help="a train/valid/test .jsonl from step 1")
    parser.add_argument("--image_root", required=True, help="the folder the records' image paths start from")
    parser.add_argument("--output_dir", required=True, help="where images/ and gt.txt are written")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help="worker processes (default 4; 0 or 1 runs in this process)")
    parser.add_argument("--label_policy", choices=LABEL_POLICIES, default="sanitize",
                        help="labels with tabs/line breaks: replace those by spaces (default) "
                             "or skip the item")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing gt.txt")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        summary = crop_dataset(args.annotation_file, args.image_root, args.output_dir,
                               workers=args.workers, label_policy=args.label_policy,
                               overwrite=args.overwrite)
    except (AnnotationFormatError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {Path(args.output_dir) / GT_FILE} was not written; run again to finish",
              file=sys.stderr)
        return 130
    print(format_report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
