"""Step 1 of the AIHub pipeline: AIHub Korean OCR annotations -> train/valid/test JSON-lines.

Reads the annotation JSON of one of the AIHub Korean OCR datasets, keeps the text items a
user asked for, and writes a seeded, leak-free split into three JSON-lines files that
``korean/dataset_preprocess_2.py`` turns into crops and a DTRB ``gt.txt``.

Input formats (``--format``):

``wild``
    한국어 글자체 이미지, "Text in the wild": one COCO-like JSON with ``images[]``
    {id, file_name, width, height, type} and ``annotations[]`` {id, image_id, text (null when
    ignored), bbox [x, y, w, h], attributes.class ("word" | "character" | "ignored")}.
``printed`` / ``handwriting``
    Its printed and handwriting subsets: one image per text item, no bbox;
    ``annotations[]`` {id, image_id, text, attributes.type ("글자(음절)" | "단어(어절)" | "문장")},
    printed adds ``attributes.font`` and ``attributes.is_aug``.
``outdoor``
    야외 실제 촬영 한글 이미지: one JSON per photo with ``images[]`` (one {file_name, width,
    height}), ``annotations[]`` {id, bbox [x, y, w, h], text ('xxx' marks illegible text)} and
    ``metadata[]`` {wordorientation ("가로" | "세로"), class, subclass, ...}. Labels live in
    ``[라벨]...`` folders and images in the matching ``[원천]...`` folders.

Output: ``<output_dir>/train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` (UTF-8, one JSON object
a line, one line per text item) and ``preprocess_summary.json``. Each record holds:

``image``
    Path of the source image relative to the images root, with ``/`` separators. For
    ``wild``/``printed``/``handwriting`` it is ``file_name`` as written in the JSON. For
    ``outdoor`` it is the label file's folder relative to ``--label_path`` with every
    ``[라벨]`` turned into ``[원천]`` (and ``라벨링데이터`` into ``원천데이터``), joined with
    ``file_name``; so with ``--label_path Training`` the images root is ``Training`` too.
    Step 2 falls back to a search by file name when the path does not exist as written.
``text``
    The label: NFC-normalised, surrounding whitespace removed.
``bbox``
    ``[x, y, w, h]`` in pixels of the source image, or ``null`` when the whole image is the
    text item (printed/handwriting).
``source``
    ``"<label file relative to --label_path>#<annotation id>"``, to trace a record back.
``image_size``
    ``[width, height]`` as the annotation states it, or ``null`` when it is not given.

Splitting is by source image: every box of one photo lands in the same split, so the test
set never shares a photo with the training set. The images are sorted, shuffled with
``random.Random(seed)`` and cut by the ``--split`` ratios, so the same input and seed always
give the same split whatever order the files are found in.

Usage from the repository root::

    python korean/dataset_preprocess.py --format outdoor --label_path data/Training \\
        --output_dir data/annotations
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from tqdm import tqdm

logger = logging.getLogger(__name__)

FORMATS = ("wild", "printed", "handwriting", "outdoor")
SPLIT_NAMES = ("train", "valid", "test")
DEFAULT_SPLIT = (0.8, 0.1, 0.1)
DEFAULT_SEED = 42
SUMMARY_FILE = "preprocess_summary.json"

WILD_CLASSES = ("word", "character", "ignored")
DEFAULT_WILD_CLASSES = ("word",)

TYPE_SYLLABLE = "글자(음절)"
TYPE_WORD = "단어(어절)"
TYPE_SENTENCE = "문장"
DEFAULT_TYPES = (TYPE_WORD,)
# English and short Korean spellings a user may type for the three printed/handwriting types.
TYPE_ALIASES = {
    TYPE_SYLLABLE: TYPE_SYLLABLE, "글자": TYPE_SYLLABLE, "음절": TYPE_SYLLABLE,
    "syllable": TYPE_SYLLABLE, "character": TYPE_SYLLABLE, "char": TYPE_SYLLABLE,
    TYPE_WORD: TYPE_WORD, "단어": TYPE_WORD, "어절": TYPE_WORD, "word": TYPE_WORD,
    TYPE_SENTENCE: TYPE_SENTENCE, "sentence": TYPE_SENTENCE,
}

ILLEGIBLE_MARK = "xxx"
VERTICAL_ORIENTATION = "세로"
# Outdoor label folders and the image folders they pair with.
LABEL_TO_IMAGE_FOLDER = (("[라벨]", "[원천]"), ("라벨링데이터", "원천데이터"))

# Why a text item was not kept; the first matching reason is the one counted.
DROP_REASONS = {
    "class_not_selected": "class not in --classes",
    "subclass_not_selected": "subclass not in --subclasses",
    "type_not_selected": "type not in --types",
    "augmented": "augmented printed sample (use --keep_aug to keep)",
    "vertical": "vertical text, 세로 (use --keep_vertical to keep)",
    "null_text": "text is null",
    "empty_text": "text is empty or only whitespace",
    "illegible": "illegible text, 'xxx' (use --keep_illegible to keep)",
    "malformed_bbox": "bbox is not 4 finite numbers",
    "unknown_image": "image_id not found in images[]",
}
# How many individual warnings to log per reason before only counting.
MAX_WARNINGS_PER_REASON = 10


class AnnotationFormatError(ValueError):
    """An annotation file cannot be read or is not in the format the user named."""


@dataclass
class Record:
    """One text item: what step 2 needs to crop it, and where it came from."""

    image: str
    text: str
    bbox: list[float] | None
    source: str
    image_size: list[int] | None = None

    def to_json(self) -> str:
        """Serialise as one JSON line (no trailing newline), Hangul kept readable."""
        return json.dumps(
            {"image": self.image, "text": self.text, "bbox": self.bbox,
             "source": self.source, "image_size": self.image_size},
            ensure_ascii=False,
        )


@dataclass
class Filters:
    """What to keep. ``None`` for classes/subclasses means "every value"."""

    classes: frozenset[str] | None
    subclasses: frozenset[str] | None
    types: frozenset[str]
    keep_illegible: bool = False
    keep_vertical: bool = False
    keep_aug: bool = False


class DropCounter:
    """Counts dropped items per reason and logs the first few of each with file and id."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def drop(self, reason: str, where: str | None = None, count: int = 1) -> None:
        """Count ``count`` items dropped for ``reason``; warn for data errors (``where`` given)."""
        self.counts[reason] += count
        if where is not None and self.counts[reason] <= MAX_WARNINGS_PER_REASON:
            logger.warning("%s: dropped (%s)", where, DROP_REASONS[reason])


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC (Hangul syllables composed)."""
    return unicodedata.normalize("NFC", text)


# --------------------------------------------------------------------------- reading files

def load_json(path: Path) -> Any:
    """Parse a JSON file (UTF-8, BOM allowed); errors name the file and the line/column."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AnnotationFormatError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationFormatError(
            f"{path}: not UTF-8 text (bad byte at offset {exc.start}); AIHub labels are UTF-8 JSON"
        ) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationFormatError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from exc


def find_label_files(label_path: Path) -> list[Path]:
    """Return ``label_path`` itself, or every ``*.json`` below it in a stable (NFC-sorted) order."""
    if label_path.is_file():
        return [label_path]
    if not label_path.is_dir():
        raise FileNotFoundError(f"--label_path {label_path}: no such file or folder")
    # rglob with a fixed pattern: folder names like "[라벨]..." must never be read as globs.
    files = [p for p in label_path.rglob("*.json") if p.is_file()]
    if not files:
        raise FileNotFoundError(f"--label_path {label_path}: no .json files found in this folder")
    return sorted(files, key=lambda p: nfc(p.relative_to(label_path).as_posix()))


def guess_format(data: Any) -> str | None:
    """Best guess of which AIHub format ``data`` is in, used only to word error messages."""
    if not isinstance(data, dict):
        return None
    if "metadata" in data and "annotations" in data:
        return "outdoor"
    annotations = data.get("annotations")
    if isinstance(annotations, list) and annotations and isinstance(annotations[0], dict):
        attributes = annotations[0].get("attributes")
        if isinstance(attributes, dict):
            if "class" in attributes:
                return "wild"
            if "font" in attributes or "is_aug" in attributes:
                return "printed"
            if "type" in attributes:
                return "handwriting"
    return None


def format_error(path: Path, fmt: str, data: Any, problem: str) -> AnnotationFormatError:
    """Build the error for a file that is not in format ``fmt``, hinting at the likely one."""
    message = f"{path}: not a '{fmt}' annotation file: {problem}"
    guess = guess_format(data)
    if guess is not None and guess != fmt and {guess, fmt} != {"printed", "handwriting"}:
        message += f" (it looks like the '{guess}' format: try --format {guess})"
    return AnnotationFormatError(message)


def require_list(path: Path, fmt: str, data: Any, key: str) -> list:
    """Return top-level list ``data[key]`` or raise an error naming the file and the key."""
    if not isinstance(data, dict):
        raise format_error(path, fmt, data, f"expected a JSON object at the top, got {type(data).__name__}")
    if key not in data:
        raise format_error(path, fmt, data, f"missing top-level key '{key}'")
    value = data[key]
    if not isinstance(value, list):
        raise format_error(path, fmt, data, f"'{key}' must be a list, got {type(value).__name__}")
    return value


def require_key(path: Path, fmt: str, data: Any, where: str, obj: Any, key: str) -> Any:
    """Return ``obj[key]`` or raise an error naming the file, the entry and the missing key."""
    if not isinstance(obj, dict):
        raise format_error(path, fmt, data, f"{where} must be an object, got {type(obj).__name__}")
    if key not in obj:
        raise format_error(path, fmt, data, f"{where} has no key '{key}'")
    return obj[key]


def parse_bbox(value: Any) -> list[float] | None:
    """Return ``[x, y, w, h]`` when ``value`` is 4 finite numbers, else ``None``."""
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return None
    if not all(math.isfinite(v) for v in value):
        return None
    return [int(v) if float(v).is_integer() else float(v) for v in value]


def parse_image_size(entry: dict) -> list[int] | None:
    """Return ``[width, height]`` from an images[] entry when both are positive integers."""
    width, height = entry.get("width"), entry.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return [width, height]
    return None


def clean_text(value: Any) -> tuple[str | None, str | None]:
    """Return ``(text, None)`` for a usable label or ``(None, drop_reason)``."""
    if value is None:
        return None, "null_text"
    text = nfc(str(value)).strip()
    if not text:
        return None, "empty_text"
    return text, None


def index_images(path: Path, fmt: str, data: Any) -> dict[Any, dict]:
    """Map ``images[].id`` to the entry, checking every entry has ``id`` and ``file_name``."""
    images = require_list(path, fmt, data, "images")
    by_id: dict[Any, dict] = {}
    for i, entry in enumerate(images):
        image_id = require_key(path, fmt, data, f"images[{i}]", entry, "id")
        file_name = require_key(path, fmt, data, f"images[{i}]", entry, "file_name")
        if not isinstance(file_name, str) or not file_name:
            raise format_error(path, fmt, data, f"images[{i}].file_name must be a non-empty string")
        by_id[image_id] = entry
    return by_id


def image_rel_path(file_name: str) -> str:
    """Normalise a JSON ``file_name`` into a ``/``-separated NFC relative path."""
    return nfc(file_name.replace("\\", "/")).lstrip("/")


# --------------------------------------------------------------------------- the formats

def records_from_wild(path: Path, source_name: str, data: Any, filters: Filters,
                      drops: DropCounter, seen: dict[str, Counter]) -> list[Record]:
    """Text-in-the-wild: keep annotations of the selected classes with text and a valid bbox."""
    fmt = "wild"
    images = index_images(path, fmt, data)
    annotations = require_list(path, fmt, data, "annotations")
    records = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        attributes = require_key(path, fmt, data, where, ann, "attributes")
        cls = nfc(str(require_key(path, fmt, data, f"{where}.attributes", attributes, "class")))
        image_id = require_key(path, fmt, data, where, ann, "image_id")
        raw_text = require_key(path, fmt, data, where, ann, "text")
        raw_bbox = require_key(path, fmt, data, where, ann, "bbox")
        seen["classes"][cls] += 1
        ann_id = ann.get("id", i)
        trace = f"{path} annotation id {ann_id}"
        if filters.classes is not None and cls not in filters.classes:
            drops.drop("class_not_selected")
            continue
        text, reason = clean_text(raw_text)
        if reason:
            drops.drop(reason)
            continue
        bbox = parse_bbox(raw_bbox)
        if bbox is None:
            drops.drop("malformed_bbox", f"{trace}: bbox {raw_bbox!r}")
            continue
        entry = images.get(image_id)
        if entry is None:
            drops.drop("unknown_image", f"{trace}: image_id {image_id!r}")
            continue
        records.append(Record(image_rel_path(entry["file_name"]), text, bbox,
                              f"{source_name}#{ann_id}", parse_image_size(entry)))
    return records


def records_from_single_item(path: Path, source_name: str, data: Any, fmt: str, filters: Filters,
                             drops: DropCounter, seen: dict[str, Counter]) -> list[Record]:
    """Printed/handwriting: one text item per image, selected by type, augmented ones dropped."""
    images = index_images(path, fmt, data)
    annotations = require_list(path, fmt, data, "annotations")
    records = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        attributes = require_key(path, fmt, data, where, ann, "attributes")
        item_type = nfc(str(require_key(path, fmt, data, f"{where}.attributes", attributes, "type")))
        image_id = require_key(path, fmt, data, where, ann, "image_id")
        raw_text = require_key(path, fmt, data, where, ann, "text")
        seen["types"][item_type] += 1
        ann_id = ann.get("id", i)
        if item_type not in filters.types:
            drops.drop("type_not_selected")
            continue
        # is_aug may be a bool or, in some releases, the strings "true"/"false".
        if not filters.keep_aug and str(attributes.get("is_aug", False)).lower() == "true":
            drops.drop("augmented")
            continue
        text, reason = clean_text(raw_text)
        if reason:
            drops.drop(reason)
            continue
        entry = images.get(image_id)
        if entry is None:
            drops.drop("unknown_image", f"{path} annotation id {ann_id}: image_id {image_id!r}")
            continue
        records.append(Record(image_rel_path(entry["file_name"]), text, None,
                              f"{source_name}#{ann_id}", parse_image_size(entry)))
    return records


def outdoor_image_folder(label_rel_dir: str) -> str:
    """Map a label folder (relative, ``/``-separated) to its image folder: [라벨] -> [원천]."""
    parts = []
    for part in nfc(label_rel_dir).split("/"):
        for label_word, image_word in LABEL_TO_IMAGE_FOLDER:
            part = part.replace(label_word, image_word)
        parts.append(part)
    return "/".join(p for p in parts if p and p != ".")


def records_from_outdoor(path: Path, source_name: str, data: Any, filters: Filters,
                         drops: DropCounter, seen: dict[str, Counter]) -> list[Record]:
    """Outdoor photos: one JSON per photo; filter by metadata class/subclass and orientation."""
    fmt = "outdoor"
    images = require_list(path, fmt, data, "images")
    annotations = require_list(path, fmt, data, "annotations")
    metadata = require_list(path, fmt, data, "metadata")
    if not images:
        raise format_error(path, fmt, data, "'images' is empty; expected one entry with 'file_name'")
    file_name = require_key(path, fmt, data, "images[0]", images[0], "file_name")
    if not isinstance(file_name, str) or not file_name:
        raise format_error(path, fmt, data, "images[0].file_name must be a non-empty string")
    meta = [m for m in metadata if isinstance(m, dict)]
    classes = {nfc(str(m["class"])) for m in meta if m.get("class") is not None}
    subclasses = {nfc(str(m["subclass"])) for m in meta if m.get("subclass") is not None}
    vertical = any(nfc(str(m.get("wordorientation", ""))).strip() == VERTICAL_ORIENTATION for m in meta)
    for value in classes:
        seen["classes"][value] += len(annotations)
    for value in subclasses:
        seen["subclasses"][value] += len(annotations)

    if filters.classes is not None and not classes & filters.classes:
        drops.drop("class_not_selected", count=len(annotations))
        return []
    if filters.subclasses is not None and not subclasses & filters.subclasses:
        drops.drop("subclass_not_selected", count=len(annotations))
        return []
    if vertical and not filters.keep_vertical:
        drops.drop("vertical", count=len(annotations))
        return []

    folder = outdoor_image_folder(Path(source_name).parent.as_posix())
    image = f"{folder}/{image_rel_path(file_name)}" if folder else image_rel_path(file_name)
    image_size = parse_image_size(images[0]) if isinstance(images[0], dict) else None
    records = []
    for i, ann in enumerate(annotations):
        where = f"annotations[{i}]"
        raw_text = require_key(path, fmt, data, where, ann, "text")
        raw_bbox = require_key(path, fmt, data, where, ann, "bbox")
        ann_id = ann.get("id", i)
        text, reason = clean_text(raw_text)
        if reason:
            drops.drop(reason)
            continue
        # 'xxx' marks unreadable characters; a label holding it would teach the model garbage.
        if ILLEGIBLE_MARK in text.lower() and not filters.keep_illegible:
            drops.drop("illegible")
            continue
        bbox = parse_bbox(raw_bbox)
        if bbox is None:
            drops.drop("malformed_bbox", f"{path} annotation id {ann_id}: bbox {raw_bbox!r}")
            continue
        records.append(Record(image, text, bbox, f"{source_name}#{ann_id}", image_size))
    return records


def read_records(fmt: str, path: Path, source_name: str, filters: Filters,
                 drops: DropCounter, seen: dict[str, Counter]) -> list[Record]:
    """Read one label file of format ``fmt`` and return the text items that pass ``filters``."""
    data = load_json(path)
    if fmt == "wild":
        return records_from_wild(path, source_name, data, filters, drops, seen)
    if fmt in ("printed", "handwriting"):
        return records_from_single_item(path, source_name, data, fmt, filters, drops, seen)
    return records_from_outdoor(path, source_name, data, filters, drops, seen)


# --------------------------------------------------------------------------- options

def parse_list(value: str | Sequence[str] | None) -> list[str] | None:
    """Turn ``"a,b"`` or ``["a", "b"]`` into NFC, stripped, non-empty items; ``None`` stays ``None``."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    return [nfc(str(item)).strip() for item in items if str(item).strip()]


def resolve_types(types: str | Sequence[str] | None) -> frozenset[str]:
    """Map user-typed types (Korean names or aliases like ``word``) to the dataset's names."""
    names = parse_list(types) or list(DEFAULT_TYPES)
    resolved = set()
    for name in names:
        key = name if name in TYPE_ALIASES else name.lower()
        if key not in TYPE_ALIASES:
            accepted = ", ".join(sorted(TYPE_ALIASES))
            raise ValueError(f"--types: unknown type '{name}'; expected one of: {accepted}")
        resolved.add(TYPE_ALIASES[key])
    return frozenset(resolved)


def parse_split(split: str | Sequence[float]) -> tuple[float, float, float]:
    """Parse ``"0.8,0.1,0.1"``: three non-negative ratios for train/valid/test summing to 1."""
    parts = split.split(",") if isinstance(split, str) else list(split)
    try:
        ratios = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"--split {split!r}: expected three numbers like 0.8,0.1,0.1") from None
    if len(ratios) != 3 or any(not math.isfinite(r) or r < 0 for r in ratios):
        raise ValueError(f"--split {split!r}: expected three non-negative numbers for train,valid,test")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise ValueError(f"--split {split!r}: the three ratios must sum to 1 (they sum to {sum(ratios):g})")
    return ratios  # type: ignore[return-value]


def build_filters(fmt: str, classes: str | Sequence[str] | None, subclasses: str | Sequence[str] | None,
                  types: str | Sequence[str] | None, keep_illegible: bool, keep_vertical: bool,
                  keep_aug: bool) -> Filters:
    """Check the filter options fit the format and fill in the per-format defaults."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    class_list = parse_list(classes)
    subclass_list = parse_list(subclasses)
    if fmt in ("printed", "handwriting") and class_list is not None:
        raise ValueError(f"--classes does not apply to --format {fmt}; use --types")
    if fmt != "outdoor" and subclass_list is not None:
        raise ValueError("--subclasses applies only to --format outdoor")
    if fmt not in ("printed", "handwriting") and types is not None:
        raise ValueError("--types applies only to --format printed or handwriting")
    if fmt == "wild":
        class_list = class_list or list(DEFAULT_WILD_CLASSES)
        unknown = [c for c in class_list if c not in WILD_CLASSES]
        if unknown:
            raise ValueError(f"--classes: unknown class {unknown[0]!r} for --format wild; "
                             f"expected some of {', '.join(WILD_CLASSES)}")
    return Filters(
        classes=frozenset(class_list) if class_list else None,
        subclasses=frozenset(subclass_list) if subclass_list else None,
        types=resolve_types(types) if fmt in ("printed", "handwriting") else frozenset(),
        keep_illegible=keep_illegible, keep_vertical=keep_vertical, keep_aug=keep_aug,
    )


# --------------------------------------------------------------------------- split and write

def split_by_image(records: Sequence[Record], ratios: Sequence[float], seed: int) -> dict[str, list[Record]]:
    """Assign whole source images to train/valid/test by ``ratios``, seeded and order-independent."""
    images = sorted({r.image for r in records})
    random.Random(seed).shuffle(images)
    n = len(images)
    first_cut = round(n * ratios[0])
    second_cut = max(first_cut, min(n, round(n * (ratios[0] + ratios[1]))))
    split_of = {}
    for rank, image in enumerate(images):
        split_of[image] = "train" if rank < first_cut else "valid" if rank < second_cut else "test"
    splits: dict[str, list[Record]] = {name: [] for name in SPLIT_NAMES}
    for record in records:
        splits[split_of[record.image]].append(record)
    return splits


def temp_path_for(path: Path) -> Path:
    """A hidden temporary name next to ``path`` (same folder, so os.replace is atomic)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def write_files_atomically(contents: dict[Path, Iterable[str]]) -> None:
    """Write each file's lines to a temp file, then move all of them into place.

    Nothing is replaced until every temp file is complete, so an error or Ctrl-C leaves
    the previous outputs untouched and no half-written file under a final name.
    """
    temps: dict[Path, Path] = {}
    try:
        for path, lines in contents.items():
            temp = temp_path_for(path)
            temps[path] = temp
            with open(temp, "w", encoding="utf-8", newline="\n") as handle:
                for line in lines:
                    handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
        for path, temp in temps.items():
            os.replace(temp, path)
    finally:
        for temp in temps.values():
            if temp.exists():
                temp.unlink()


def check_outputs_free(paths: Iterable[Path], overwrite: bool) -> None:
    """Refuse to replace existing outputs unless ``overwrite`` is set."""
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} already exists; pass --overwrite to replace it")


def preprocess(format: str, label_path: str | os.PathLike, output_dir: str | os.PathLike, *,
               classes: str | Sequence[str] | None = None,
               subclasses: str | Sequence[str] | None = None,
               types: str | Sequence[str] | None = None,
               keep_illegible: bool = False, keep_vertical: bool = False, keep_aug: bool = False,
               seed: int = DEFAULT_SEED, split: str | Sequence[float] = DEFAULT_SPLIT,
               overwrite: bool = False, show_progress: bool = True) -> dict[str, Any]:
    """Read AIHub annotations, filter them, and write seeded train/valid/test JSON-lines files.

    ``classes`` defaults to ``word`` for ``wild`` and to every class for ``outdoor``;
    ``types`` defaults to ``단어(어절)``. Lists may be given as ``"a,b"`` strings.
    Returns a summary dict: ``kept`` and ``images`` (counts per split), ``dropped`` (count
    per reason), ``outputs`` (split -> path), ``label_files`` and ``seen`` (the class,
    subclass or type values found in the data, to check a filter that matched nothing).
    Raises ``AnnotationFormatError`` for unreadable or wrongly formatted JSON,
    ``FileExistsError`` if outputs exist and ``overwrite`` is false, ``ValueError`` for
    bad options.
    """
    filters = build_filters(format, classes, subclasses, types, keep_illegible, keep_vertical, keep_aug)
    ratios = parse_split(split)
    label_path = Path(label_path)
    output_dir = Path(output_dir)
    outputs = {name: output_dir / f"{name}.jsonl" for name in SPLIT_NAMES}
    summary_path = output_dir / SUMMARY_FILE
    check_outputs_free([*outputs.values(), summary_path], overwrite)

    files = find_label_files(label_path)
    root = label_path.parent if label_path.is_file() else label_path
    drops = DropCounter()
    seen: dict[str, Counter] = {"classes": Counter(), "subclasses": Counter(), "types": Counter()}
    records: list[Record] = []
    for path in tqdm(files, desc=f"reading {format} labels", unit="file", disable=not show_progress):
        source_name = nfc(path.relative_to(root).as_posix())
        records.extend(read_records(format, path, source_name, filters, drops, seen))

    warn_unmatched_filters(filters, seen)
    splits = split_by_image(records, ratios, seed)
    summary = {
        "format": format,
        "label_path": str(label_path),
        "label_files": len(files),
        "seed": seed,
        "split": list(ratios),
        "filters": {
            "classes": sorted(filters.classes) if filters.classes else None,
            "subclasses": sorted(filters.subclasses) if filters.subclasses else None,
            "types": sorted(filters.types) or None,
            "keep_illegible": keep_illegible, "keep_vertical": keep_vertical, "keep_aug": keep_aug,
        },
        "kept": {name: len(items) for name, items in splits.items()},
        "images": {name: len({r.image for r in items}) for name, items in splits.items()},
        "dropped": dict(sorted(drops.counts.items())),
        "seen": {key: dict(sorted(counter.items())) for key, counter in seen.items() if counter},
        "outputs": {name: str(path) for name, path in outputs.items()},
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    contents: dict[Path, Iterable[str]] = {
        outputs[name]: (record.to_json() + "\n" for record in splits[name]) for name in SPLIT_NAMES
    }
    contents[summary_path] = [json.dumps(summary, ensure_ascii=False, indent=2) + "\n"]
    write_files_atomically(contents)
    logger.info("kept %s, dropped %s", summary["kept"], summary["dropped"])
    return summary


def warn_unmatched_filters(filters: Filters, seen: dict[str, Counter]) -> None:
    """Warn about a requested class/subclass/type that never occurs (usually a typo)."""
    for key, wanted in (("classes", filters.classes), ("subclasses", filters.subclasses),
                        ("types", filters.types)):
        for value in sorted(wanted or ()):
            if seen[key] and value not in seen[key]:
                found = ", ".join(sorted(seen[key]))
                logger.warning("--%s %r matched nothing; values in the data: %s", key, value, found)


# --------------------------------------------------------------------------- command line

def format_report(summary: dict[str, Any]) -> str:
    """A plain-text report of a ``preprocess`` summary, for the command line."""
    lines = [f"Read {summary['label_files']} label file(s) ({summary['format']}); "
             f"split {'/'.join(f'{r:g}' for r in summary['split'])} with seed {summary['seed']}.",
             f"  {'split':<6} {'images':>8} {'items':>9}  file"]
    for name in SPLIT_NAMES:
        lines.append(f"  {name:<6} {summary['images'][name]:>8} {summary['kept'][name]:>9}  "
                     f"{summary['outputs'][name]}")
    dropped = summary["dropped"]
    if dropped:
        lines.append(f"Dropped {sum(dropped.values())} item(s):")
        for reason, count in dropped.items():
            lines.append(f"  {count:>9}  {DROP_REASONS.get(reason, reason)}")
    else:
        lines.append("Dropped nothing.")
    if sum(summary["kept"].values()) == 0:
        seen = "; ".join(f"{k}: {', '.join(v)}" for k, v in summary["seen"].items())
        lines.append("Nothing was kept: check --format and the filters."
                     + (f" Values in the data: {seen}" if seen else ""))
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of this script."""
    parser = argparse.ArgumentParser(
        description="Step 1: turn AIHub Korean OCR annotations into seeded train/valid/test "
                    "JSON-lines files (one record per text item) for dataset_preprocess_2.py.",
        epilog="Example: python korean/dataset_preprocess.py --format outdoor "
               "--label_path data/Training --output_dir data/ann --subclasses 가로형간판",
    )
    parser.add_argument("--format", required=True, choices=FORMATS,
                        help="wild (Text in the wild), printed, handwriting, or outdoor (야외 실제 촬영)")
    parser.add_argument("--label_path", required=True,
                        help="a label JSON file, or a folder searched recursively for *.json")
    parser.add_argument("--output_dir", required=True, help="where train/valid/test.jsonl are written")
    parser.add_argument("--classes", default=None,
                        help="comma-separated classes to keep: wild attributes.class (default: word; "
                             "also character, ignored) or outdoor metadata class (default: all)")
    parser.add_argument("--subclasses", default=None,
                        help="outdoor only: comma-separated metadata subclasses to keep (default: all)")
    parser.add_argument("--types", default=None,
                        help="printed/handwriting only: comma-separated types, 글자(음절), 단어(어절), 문장 "
                             "or syllable, word, sentence (default: 단어(어절))")
    parser.add_argument("--keep_illegible", action="store_true",
                        help="outdoor: keep texts containing 'xxx' (illegible)")
    parser.add_argument("--keep_vertical", action="store_true",
                        help="outdoor: keep photos whose wordorientation is 세로 (vertical)")
    parser.add_argument("--keep_aug", action="store_true", help="printed: keep augmented samples (is_aug)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the split (default 42)")
    parser.add_argument("--split", default="0.8,0.1,0.1",
                        help="train,valid,test ratios over source images (default 0.8,0.1,0.1)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        summary = preprocess(
            args.format, args.label_path, args.output_dir, classes=args.classes,
            subclasses=args.subclasses, types=args.types, keep_illegible=args.keep_illegible,
            keep_vertical=args.keep_vertical, keep_aug=args.keep_aug, seed=args.seed,
            split=args.split, overwrite=args.overwrite,
        )
    except (AnnotationFormatError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no output file was written or replaced", file=sys.stderr)
        return 130
    print(format_report(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
