"""Label handling shared by every script: the alphabet, the CTC / Attn label converters,
the loss averager and the command-line options train.py, test.py and demo.py have in common.

torch is imported only where tensors are made, so the data tools that need just the alphabet
(the image generator's worker processes, the crawler) start without loading it.

The alphabet rules live in one place, :class:`Alphabet`; datasets, converters and scripts ask
it instead of re-deriving the rules (upstream rebuilt a regular expression from ``--character``
in several places, which broke on ``- ] \\ ^``).
"""
from __future__ import annotations

import argparse
import logging
import os
import string
import unicodedata
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

DEFAULT_CHARACTER = '0123456789abcdefghijklmnopqrstuvwxyz'
# upstream's --sensitive alphabet: digits, lower case, upper case, punctuation (94 characters)
SENSITIVE_CHARACTER = string.printable[:-6]
ALPHABET_FILE_SUFFIXES = ('.txt', '.alphabet', '.chars')


def nfc(text: str) -> str:
    """NFC-normalise ``text``: Hangul typed on macOS or copied from PDFs often arrives as
    decomposed jamo (NFD), which would otherwise never match the precomposed alphabet."""
    return unicodedata.normalize('NFC', text)


def decode_utf8(raw: bytes, path: str | os.PathLike, expected: str,
                error: type[Exception] = ValueError) -> str:
    """``raw`` decoded as UTF-8 without a leading BOM. Bytes that are not UTF-8 raise ``error``
    with the message ``"{path}, line N: not UTF-8 text (byte B); {expected}"``, so every text file
    the project reads reports a bad encoding the same way."""
    try:
        return raw.decode('utf-8-sig')
    except UnicodeDecodeError as e:
        line_no = raw[:e.start].count(b'\n') + 1
        raise error(f'{os.fspath(path)}, line {line_no}: not UTF-8 text (byte {e.start}); '
                    f'{expected}') from None


class AlphabetFileError(ValueError):
    """An alphabet file that does not follow the one-character-a-line format."""


def read_alphabet_file(path: str | os.PathLike) -> str:
    """Read an alphabet file and return its characters in file order.

    Format: UTF-8 text (a leading BOM is ignored), one character per line, ``\\n`` or ``\\r\\n``
    line ends. Each line is NFC-normalised and must then hold exactly one character; a line
    holding a single space is the space character; empty lines are ignored. A character listed
    twice is an error, because each line is one output class and a silent duplicate would shift
    every later class index.
    """
    path = os.fspath(path)
    with open(path, 'rb') as f:
        raw = f.read()
    text = decode_utf8(raw, path, 'an alphabet file holds one UTF-8 character per line',
                       AlphabetFileError)
    characters: list[str] = []
    first_line: dict[str, int] = {}
    for line_no, line in enumerate(text.split('\n'), start=1):
        line = nfc(line.rstrip('\r'))
        if line == '':
            continue
        if len(line) != 1:
            raise AlphabetFileError(
                f'{path}, line {line_no}: expected one character per line, got {line!r} '
                f'({len(line)} characters)')
        if line in first_line:
            raise AlphabetFileError(
                f'{path}, line {line_no}: {line!r} is already listed on line {first_line[line]}')
        first_line[line] = line_no
        characters.append(line)
    if not characters:
        raise AlphabetFileError(f'{path}: the alphabet file holds no characters')
    return ''.join(characters)


def write_alphabet_file(path: str | os.PathLike, characters: Iterable[str]) -> None:
    """Write ``characters`` in the format :func:`read_alphabet_file` reads, atomically."""
    path = os.fspath(path)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        for ch in characters:
            f.write(ch + '\n')
    os.replace(tmp, path)


def load_character(arg: str) -> str:
    """Resolve a ``--character`` value: the path of an alphabet file, or the alphabet itself.

    A value naming an existing file is read with :func:`read_alphabet_file`. A value that looks
    like a file name (ends in .txt, .alphabet or .chars) but does not exist is an error rather
    than an alphabet made of the letters of a mistyped path. Anything else is the alphabet
    string itself, exactly as given: one class per character, as upstream, so a DTRB
    checkpoint's class count never changes (normalising could merge characters).
    """
    if os.path.isfile(arg):
        return read_alphabet_file(arg)
    if arg.lower().endswith(ALPHABET_FILE_SUFFIXES):
        raise FileNotFoundError(f'--character {arg!r}: no such alphabet file')
    return arg


class Alphabet:
    """Owns every decision about which characters a model reads.

    * ``characters``: the class order, exactly as given (one class per character, as upstream).
    * case: unless ``sensitive``, labels are lower-cased before anything else is decided.
    * unicode: labels are NFC-normalised when read.
    * out-of-alphabet characters: a label holding one is dropped by :meth:`keeps` (upstream's
      data filtering) and stripped by :meth:`clean` (what happens to kept or unfiltered labels).

    Membership is a set lookup, so ``- ] \\ ^`` and Hangul behave like any other character.
    """

    def __init__(self, characters: str, sensitive: bool = False):
        self.characters = characters
        self.sensitive = sensitive
        self._members = frozenset(characters)

    @classmethod
    def from_opt(cls, opt: argparse.Namespace) -> 'Alphabet':
        return cls(opt.character, getattr(opt, 'sensitive', False))

    def __contains__(self, ch: str) -> bool:
        return ch in self._members

    def __len__(self) -> int:
        return len(self.characters)

    def missing(self, label: str) -> list[str]:
        """The distinct characters of the (lower-cased) label that the alphabet lacks, in order."""
        seen: dict[str, None] = {}
        for ch in nfc(label).lower():
            if ch not in self._members:
                seen.setdefault(ch)
        return list(seen)

    def keeps(self, label: str, batch_max_length: int) -> bool:
        """Upstream's data filter: keep a label no longer than ``batch_max_length`` whose
        lower-cased characters are all in the alphabet."""
        label = nfc(label)
        if len(label) > batch_max_length:
            return False
        return all(ch in self._members for ch in label.lower())

    def clean(self, label: str) -> str:
        """What a label becomes when a sample is read: NFC, lower-cased unless sensitive, and
        every character outside the alphabet removed."""
        label = nfc(label)
        if not self.sensitive:
            label = label.lower()
        return ''.join(ch for ch in label if ch in self._members)


def _check_encodable(text: Sequence[str], index: dict[str, int]) -> None:
    for label in text:
        for ch in label:
            if ch not in index:
                raise ValueError(f'label {label!r} holds {ch!r}, which is not in --character; '
                                 'clean labels with Alphabet.clean() first')


class CTCLabelConverter:
    """Text <-> indices for CTC: index 0 is the blank, character k of the alphabet is k + 1."""

    def __init__(self, character: str):
        self.character = ['[CTCblank]'] + list(character)
        # a character listed twice maps to its last index, as upstream's dict did
        self.dict = {ch: i + 1 for i, ch in enumerate(character)}

    def encode(self, text: Sequence[str], batch_max_length: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ([B, batch_max_length] indices padded with 0, [B] lengths)."""
        import torch
        _check_encodable(text, self.dict)
        # a label longer than the tensor (possible with --data_filtering_off) is cut, and its
        # length with it, so CTCLoss never reads past the row
        length = [min(len(s), batch_max_length) for s in text]
        batch_text = torch.zeros(len(text), batch_max_length, dtype=torch.long)
        for i, s in enumerate(text):
            idx = [self.dict[ch] for ch in s][:batch_max_length]
            batch_text[i, :len(idx)] = torch.tensor(idx, dtype=torch.long)
        return batch_text, torch.IntTensor(length)

    def decode(self, text_index: torch.Tensor, length: Sequence[int] | torch.Tensor) -> list[str]:
        """Greedy CTC decode: drop blanks and repeats of the previous index."""
        texts = []
        rows = text_index.view(len(length), -1).tolist() if hasattr(text_index, 'view') else text_index
        for row, n in zip(rows, (int(x) for x in length)):
            chars = []
            prev = None
            for t in row[:n]:
                if t != 0 and t != prev:
                    chars.append(self.character[t])
                prev = t
            texts.append(''.join(chars))
        return texts


class AttnLabelConverter:
    """Text <-> indices for attention: 0 is [GO], 1 is [s] (end), characters from 2."""

    GO, EOS = '[GO]', '[s]'

    def __init__(self, character: str):
        self.character = [self.GO, self.EOS] + list(character)
        self.dict = {ch: i for i, ch in enumerate(self.character)}

    def encode(self, text: Sequence[str], batch_max_length: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ([B, batch_max_length + 2] = [GO] chars [s] padding 0, [B] lengths = len + 1)."""
        import torch
        _check_encodable(text, self.dict)
        length = [min(len(s), batch_max_length) + 1 for s in text]
        batch_text = torch.zeros(len(text), batch_max_length + 2, dtype=torch.long)
        for i, s in enumerate(text):
            idx = [self.dict[ch] for ch in s] + [1]
            idx = idx[:batch_max_length + 1]
            batch_text[i, 1:1 + len(idx)] = torch.tensor(idx, dtype=torch.long)
        return batch_text, torch.IntTensor(length)

    def decode(self, text_index: torch.Tensor, length: Sequence[int] | torch.Tensor) -> list[str]:
        """Map indices to tokens; callers cut at the first [s] (see :func:`cut_at_eos`)."""
        rows = text_index.tolist() if hasattr(text_index, 'tolist') else text_index
        return [''.join(self.character[i] for i in row) for row in rows]


def cut_at_eos(text: str) -> str:
    """Cut an attention prediction or label at its first [s]; keep it whole when there is none
    (upstream's ``text[:text.find('[s]')]`` dropped the last character in that case)."""
    end = text.find(AttnLabelConverter.EOS)
    return text if end == -1 else text[:end]


class Averager:
    """Running mean of torch scalars (the loss reported at each validation)."""

    def __init__(self):
        self.reset()

    def add(self, v: torch.Tensor) -> None:
        count = v.data.numel()
        self.n_count += count
        self.sum += float(v.data.sum())

    def reset(self) -> None:
        self.n_count = 0
        self.sum = 0.0

    def val(self) -> float:
        return self.sum / self.n_count if self.n_count else 0.0


# ----------------------------------------------------------------------------------------------
# command-line options shared by train.py, test.py and demo.py


def add_common_options(parser: argparse.ArgumentParser, saved_model_required: bool) -> None:
    """The data-processing and model-architecture flags the three scripts share, with
    upstream's names and defaults."""
    parser.add_argument('--workers', type=int, default=4, help='number of data loading workers')
    parser.add_argument('--batch_size', type=int, default=192, help='input batch size')
    parser.add_argument('--saved_model', required=saved_model_required, default='',
                        help='path to the model checkpoint (.pth)')
    parser.add_argument('--batch_max_length', type=int, default=25, help='maximum label length')
    parser.add_argument('--imgH', type=int, default=32, help='the height of the input image')
    parser.add_argument('--imgW', type=int, default=100, help='the width of the input image')
    parser.add_argument('--rgb', action='store_true', help='use rgb input')
    parser.add_argument('--character', type=str, default=DEFAULT_CHARACTER,
                        help='the label alphabet, or the path of an alphabet file '
                             '(UTF-8, one character per line)')
    parser.add_argument('--sensitive', action='store_true', help='for sensitive character mode')
    parser.add_argument('--PAD', action='store_true', help='whether to keep ratio then pad for image resize')
    parser.add_argument('--Transformation', type=str, required=True, help='Transformation stage. None|TPS')
    parser.add_argument('--FeatureExtraction', type=str, required=True,
                        help='FeatureExtraction stage. VGG|RCNN|ResNet')
    parser.add_argument('--SequenceModeling', type=str, required=True, help='SequenceModeling stage. None|BiLSTM')
    parser.add_argument('--Prediction', type=str, required=True, help='Prediction stage. CTC|Attn')
    parser.add_argument('--num_fiducial', type=int, default=20, help='number of fiducial points of TPS-STN')
    parser.add_argument('--input_channel', type=int, default=1, help='the number of input channel of Feature extractor')
    parser.add_argument('--output_channel', type=int, default=512,
                        help='the number of output channel of Feature extractor')
    parser.add_argument('--hidden_size', type=int, default=256, help='the size of the LSTM hidden state')


def finish_common_options(opt: argparse.Namespace) -> argparse.Namespace:
    """Apply the rules upstream applies after parsing, plus alphabet files.

    * ``--character`` may name an alphabet file; it is read here.
    * ``--sensitive`` replaces an alphabet *string* by the 94 printable ASCII characters, as
      upstream; an alphabet *file* is kept (so a Korean alphabet with upper-case Latin letters
      can be case-sensitive), only lower-casing is switched off.
    * ``--rgb`` sets input_channel to 3.
    """
    given_file = os.path.isfile(opt.character)
    opt.character = load_character(opt.character)
    if opt.sensitive and not given_file:
        opt.character = SENSITIVE_CHARACTER
    if opt.rgb:
        opt.input_channel = 3
    opt.alphabet = Alphabet(opt.character, opt.sensitive)
    return opt


def make_converter(opt: argparse.Namespace) -> CTCLabelConverter | AttnLabelConverter:
    """The converter for opt.Prediction; also sets ``opt.num_class``."""
    if 'CTC' in opt.Prediction:
        converter = CTCLabelConverter(opt.character)
    else:
        converter = AttnLabelConverter(opt.character)
    opt.num_class = len(converter.character)
    return converter


class InputError(Exception):
    """Marks an error about the user's input whose message says everything (a checkpoint that
    does not fit the options, for example), for errors that are not ValueErrors."""


def run_script(main, argv=None):
    """Run a script's main, turning the errors our code raises for bad input (missing or
    malformed files, datasets, checkpoints, alphabets) into one clear line and exit status 1
    instead of a traceback. Anything else still raises with its traceback."""
    try:
        return main(argv)
    except (FileNotFoundError, NotADirectoryError, ValueError, InputError) as e:
        raise SystemExit(f'error: {e}') from None


def configure_cuda(opt: argparse.Namespace) -> None:
    """Upstream's CUDA settings (cudnn benchmark + deterministic) and ``opt.num_gpu``."""
    import torch
    if torch.cuda.is_available():
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.deterministic = True
    opt.num_gpu = torch.cuda.device_count()


def pick_device() -> torch.device:
    import torch
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
