"""Build an LMDB dataset from a folder of images and a gt.txt file.

    python create_lmdb_dataset.py --inputPath data/ --gtFile data/gt.txt --outputPath result/

gt.txt holds one sample a line, ``relative/image/path<TAB>label``; paths are relative to
--inputPath. The LMDB holds upstream's keys: ``image-%09d`` (the image file's bytes, not
re-encoded), ``label-%09d`` (the NFC-normalised label, UTF-8) and ``num-samples``, numbered
from 1 over the samples actually written.

Beyond upstream: lines without a tab are reported and skipped, CRLF line ends and a UTF-8 BOM
are accepted, ``--encoding cp949`` reads gt files saved on Korean Windows, Windows-style
``images\\a.jpg`` paths work, and the dataset is built in a hidden sibling folder that replaces
--outputPath only once it is complete, so an interrupted run leaves an earlier dataset intact.
:class:`LmdbWriter` is the same writer for programs that produce images themselves.
"""
from __future__ import annotations

import codecs
import io
import logging
import os
import secrets
import shutil
import sys
import unicodedata
from dataclasses import dataclass, field
from types import TracebackType

import fire
import lmdb
from PIL import Image
from tqdm import tqdm

logger = logging.getLogger(__name__)

INITIAL_MAP_SIZE = 64 * 1024 ** 2
COMMIT_EVERY = 1000
COMMIT_BYTES = 256 * 1024 ** 2
# files an earlier LMDB dataset folder may hold (error_image_log.txt is written by upstream)
LMDB_FOLDER_FILES = frozenset({'data.mdb', 'lock.mdb', 'error_image_log.txt'})


class LmdbWriter:
    """Write (image bytes, label) samples into a new LMDB dataset at ``output_path``.

        with LmdbWriter('result/train') as writer:
            writer.add(png_bytes, '가나다')

    Samples are numbered from 1 (``image-%09d`` / ``label-%09d``); labels are NFC-normalised;
    ``count`` is the number added so far. Writes are committed every ``commit_every`` samples
    (or 256 MiB); the map starts at ``map_size`` bytes and doubles whenever it is full.

    The dataset is built in a hidden sibling folder. On a clean exit ``num-samples`` is written
    last and the folder is moved to ``output_path``, replacing an earlier LMDB dataset there.
    On an exception (KeyboardInterrupt included) the partial folder is deleted and whatever was
    at ``output_path`` is left untouched. ``open()``, ``finish()`` and ``abort()`` do the same
    without a ``with`` block.

    Raises FileExistsError at construction when ``output_path`` is a file or a folder holding
    anything other than an LMDB dataset (so no unrelated file is ever replaced).
    """

    def __init__(self, output_path: str | os.PathLike, commit_every: int = COMMIT_EVERY,
                 map_size: int = INITIAL_MAP_SIZE):
        self.output_path = os.fspath(output_path)
        if commit_every < 1:
            raise ValueError(f'commit_every must be at least 1, got {commit_every}')
        self.commit_every = commit_every
        self.map_size = int(map_size)
        self.target = os.path.realpath(os.path.abspath(self.output_path))
        check_replaceable(self.target, self.output_path)
        self.count = 0
        self.temp_path: str | None = None
        self._env: lmdb.Environment | None = None
        self._pending: list[tuple[bytes, bytes]] = []
        self._pending_bytes = 0

    # -- life cycle -----------------------------------------------------------------------------

    def open(self) -> 'LmdbWriter':
        """Create the hidden temporary folder and its LMDB environment."""
        if self._env is not None:
            raise RuntimeError(f'LmdbWriter for {self.output_path} is already open')
        parent, name = os.path.split(self.target)
        os.makedirs(parent, exist_ok=True)
        self.temp_path = os.path.join(parent, f'.{name}.partial-{os.getpid()}-{secrets.token_hex(4)}')
        os.mkdir(self.temp_path)
        self._env = lmdb.open(self.temp_path, map_size=self.map_size, subdir=True)
        return self

    def __enter__(self) -> 'LmdbWriter':
        return self.open()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    def finish(self) -> str:
        """Commit what is pending, write num-samples, and move the dataset into place.
        Returns the final folder path. On failure the temporary folder is deleted."""
        env = self._require_open()
        try:
            self._commit()
            self._pending = [(b'num-samples', str(self.count).encode('ascii'))]
            self._commit()
            env.sync(True)
            env.close()
            self._env = None
            move_into_place(self.temp_path, self.target)
        except BaseException:
            self.abort()
            raise
        self.temp_path = None
        return self.target

    def abort(self) -> None:
        """Discard everything written: close the environment and delete the temporary folder."""
        if self._env is not None:
            self._env.close()
            self._env = None
        if self.temp_path is not None:
            shutil.rmtree(self.temp_path, ignore_errors=True)
            self.temp_path = None
        self._pending = []
        self._pending_bytes = 0

    # -- writing --------------------------------------------------------------------------------

    def add(self, image_bytes: bytes, label: str) -> int:
        """Add one sample; returns its 1-based index."""
        self._require_open()
        if not isinstance(image_bytes, (bytes, bytearray, memoryview)):
            raise TypeError(f'image_bytes must be bytes (the encoded image file), got {type(image_bytes).__name__}')
        if not isinstance(label, str):
            raise TypeError(f'label must be str, got {type(label).__name__}')
        self.count += 1
        image_value = bytes(image_bytes)
        label_value = unicodedata.normalize('NFC', label).encode('utf-8')
        self._pending.append((b'image-%09d' % self.count, image_value))
        self._pending.append((b'label-%09d' % self.count, label_value))
        self._pending_bytes += len(image_value) + len(label_value)
        if len(self._pending) >= 2 * self.commit_every or self._pending_bytes >= COMMIT_BYTES:
            self._commit()
        return self.count

    def _require_open(self) -> lmdb.Environment:
        if self._env is None:
            raise RuntimeError(f'LmdbWriter for {self.output_path} is not open; '
                               'use "with LmdbWriter(path) as writer:" or call open()')
        return self._env

    def _commit(self) -> None:
        """Write the pending items in one transaction, doubling the map while it is full."""
        env = self._require_open()
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in self._pending:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                self.map_size *= 2
                env.set_mapsize(self.map_size)
                logger.debug('%s: LMDB map grown to %d bytes', self.temp_path, self.map_size)
        self._pending = []
        self._pending_bytes = 0


def check_replaceable(target: str, shown_path: str) -> None:
    """Raise FileExistsError unless ``target`` is absent, an empty folder, or an LMDB dataset
    folder (only data.mdb, lock.mdb and upstream's error_image_log.txt)."""
    if not os.path.lexists(target):
        return
    if not os.path.isdir(target):
        raise FileExistsError(f'{shown_path}: exists and is not a folder; choose another --outputPath')
    foreign = sorted(set(os.listdir(target)) - LMDB_FOLDER_FILES)
    if foreign:
        listed = ', '.join(foreign[:5]) + (', ...' if len(foreign) > 5 else '')
        raise FileExistsError(
            f'{shown_path}: already holds files that are not part of an LMDB dataset ({listed}); '
            'an earlier dataset (data.mdb) or an empty folder is replaced, anything else is '
            'left alone: choose another --outputPath')


def move_into_place(temp_path: str, target: str) -> None:
    """Rename the finished folder ``temp_path`` to ``target``. An earlier folder at ``target``
    is renamed aside first and deleted only once the new one is in place."""
    if not os.path.lexists(target):
        os.rename(temp_path, target)
        return
    parent, name = os.path.split(target)
    old = os.path.join(parent, f'.{name}.old-{os.getpid()}-{secrets.token_hex(4)}')
    os.rename(target, old)
    try:
        os.rename(temp_path, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# gt.txt -> LMDB


@dataclass
class GtLine:
    """One sample line of a gt file."""
    line_no: int
    path: str
    label: str


@dataclass
class CreateReport:
    """What a createDataset run did; ``problems`` holds one message per skipped line."""
    output_path: str
    written: int = 0
    missing: int = 0
    invalid: int = 0
    malformed: int = 0
    problems: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f'written {self.written}, missing images {self.missing}, invalid images '
                f'{self.invalid}, malformed lines {self.malformed}')


def read_gt_text(gt_file: str, encoding: str = 'utf-8') -> str:
    """The text of a gt file, decoded with ``encoding`` (a UTF-8 BOM is dropped).

    A decode error raises ValueError naming the file and line and suggesting --encoding cp949.
    """
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise ValueError(f'--encoding {encoding!r}: unknown text encoding (try utf-8 or cp949)') from None
    with open(gt_file, 'rb') as f:
        raw = f.read()
    codec = 'utf-8-sig' if codecs.lookup(encoding).name == 'utf-8' else encoding
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as e:
        line_no = raw[:e.start].count(b'\n') + 1
        hint = ('; if it was saved on Korean Windows, try --encoding cp949'
                if codec == 'utf-8-sig' else '; check --encoding')
        raise ValueError(f'{gt_file}, line {line_no}: not valid {encoding} text '
                         f'(byte {raw[e.start:e.start + 1]!r}){hint}') from None
    return text[1:] if text.startswith('\ufeff') else text


def parse_gt_lines(text: str, gt_file: str) -> tuple[list[GtLine], list[str]]:
    """Split gt text into samples at the first tab of each line.

    Returns (samples, problems): blank lines are skipped silently; a line without a tab or with
    an empty path gives a message naming the file and line. CRLF line ends are accepted;
    labels are NFC-normalised and otherwise kept as written (spaces included).
    """
    samples: list[GtLine] = []
    problems: list[str] = []
    for line_no, line in enumerate(text.split('\n'), start=1):
        if line.endswith('\r'):
            line = line[:-1]
        if line.strip() == '':
            continue
        path, tab, label = line.partition('\t')
        if not tab:
            problems.append(f'{gt_file}, line {line_no}: no tab between image path and label: {line[:80]!r}')
            continue
        if path.strip() == '':
            problems.append(f'{gt_file}, line {line_no}: empty image path')
            continue
        samples.append(GtLine(line_no, path, unicodedata.normalize('NFC', label)))
    return samples, problems


def resolve_image_path(input_path: str, relative: str) -> str | None:
    """The existing file ``relative`` names under ``input_path``, or None.

    Tries the path as written, with backslashes as folder separators, and in NFC and NFD
    (Hangul file names made on macOS are stored decomposed)."""
    candidates = [relative]
    if '\\' in relative:
        candidates.append(relative.replace('\\', '/'))
    for candidate in list(candidates):
        for form in ('NFC', 'NFD'):
            variant = unicodedata.normalize(form, candidate)
            if variant not in candidates:
                candidates.append(variant)
    for candidate in candidates:
        full = os.path.join(input_path, candidate)
        if os.path.isfile(full):
            return full
    return None


def image_is_valid(image_bytes: bytes) -> bool:
    """True when the bytes decode (fully) as an image with non-zero width and height."""
    try:
        with Image.open(io.BytesIO(image_bytes)) as image:
            image.load()
            width, height = image.size
    except Exception:  # PIL signals malformed data with many exception types; all mean "invalid"
        return False
    return width > 0 and height > 0


def _as_bool(value: object) -> bool:
    # fire turns "False" into False but leaves "false" / "0" / "no" as strings
    if isinstance(value, str):
        return value.strip().lower() not in ('', '0', 'false', 'no', 'off')
    return bool(value)


def create_dataset(inputPath: str, gtFile: str, outputPath: str, checkValid: bool = True,
                   encoding: str = 'utf-8', show_progress: bool = True) -> CreateReport:
    """Build the LMDB dataset and return a :class:`CreateReport` (see :func:`createDataset`).

    Raises ValueError, leaving ``outputPath`` untouched, when the gt file cannot be decoded or
    no sample could be written.
    """
    input_path, gt_file, output_path = str(inputPath), str(gtFile), str(outputPath)
    check_valid = _as_bool(checkValid)
    if not os.path.isdir(input_path):
        raise NotADirectoryError(f'--inputPath {input_path}: no such folder')
    samples, problems = parse_gt_lines(read_gt_text(gt_file, str(encoding)), gt_file)
    report = CreateReport(output_path=output_path, malformed=len(problems), problems=list(problems))
    for message in problems:
        print(message)

    def skip(message: str) -> None:
        report.problems.append(message)
        tqdm.write(message)

    with LmdbWriter(output_path) as writer:
        for sample in tqdm(samples, desc=f'writing {output_path}', unit='img', disable=not show_progress):
            where = f'{gt_file}, line {sample.line_no}'
            image_path = resolve_image_path(input_path, sample.path)
            if image_path is None:
                report.missing += 1
                skip(f'{where}: {os.path.join(input_path, sample.path)} does not exist')
                continue
            with open(image_path, 'rb') as f:
                image_bytes = f.read()
            if check_valid and not image_is_valid(image_bytes):
                report.invalid += 1
                skip(f'{where}: {image_path} is not a valid image')
                continue
            writer.add(image_bytes, sample.label)
        report.written = writer.count
        if writer.count == 0:
            raise ValueError(f'{gt_file}: no sample could be written ({report.summary()}); '
                             f'{output_path} was left unchanged')
    return report


def createDataset(inputPath: str, gtFile: str, outputPath: str, checkValid: bool = True,
                  encoding: str = 'utf-8') -> None:
    """Create an LMDB dataset for training and evaluation.

    Args:
        inputPath: folder the image paths in gtFile are relative to
        gtFile: text file of ``image_path<TAB>label`` lines
        outputPath: LMDB folder to create (an earlier LMDB dataset there is replaced once the
            new one is complete)
        checkValid: skip images that do not decode or have zero width or height
        encoding: text encoding of gtFile (utf-8; cp949 for files saved on Korean Windows)
    """
    report = create_dataset(inputPath, gtFile, outputPath, checkValid, encoding)
    print(f'Created dataset with {report.written} samples')
    print(f'{report.output_path}: {report.summary()}')
    if report.problems:
        print(f'{len(report.problems)} line(s) of {gtFile} were skipped; the messages above name them')


def main() -> None:
    try:
        fire.Fire(createDataset)
    except KeyboardInterrupt:
        print('\ninterrupted: no dataset was written; an earlier dataset at --outputPath is unchanged',
              file=sys.stderr)
        sys.exit(130)
    except (ValueError, OSError) as e:  # bad input: the message names the file and what is wrong
        print(f'error: {e}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
