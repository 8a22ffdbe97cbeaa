"""Label handling shared by every script: the alphabet, the CTC / Attn label converters,
the Korean metrics (CER, jamo 1-NED), the loss averager and the command-line options
train.py, test.py and demo.py have in common.

torch is imported only where tensors are made, so the data tools that need just the alphabet
(the image generator's worker processes, the crawler) start without loading it.

The alphabet rules live in one place, :class:`Alphabet`; datasets, converters and scripts ask
it instead of re-deriving the rules (upstream rebuilt a regular expression from ``--character``
in several places, which broke on ``- ] \\ ^``).
"""
from __future__ import annotations

import argparse
import gc
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
# metrics beyond upstream's accuracy and norm_ED: CER and jamo-level 1-NED

FIRST_SYLLABLE, LAST_SYLLABLE = 0xAC00, 0xD7A3
INITIAL_JAMO, MEDIAL_JAMO, FINAL_JAMO = 0x1100, 0x1161, 0x11A7  # U+11A7 + 0 = no final
INITIALS, MEDIALS, FINALS = 19, 21, 28


def jamo(text: str) -> str:
    """``text`` with every precomposed Hangul syllable (U+AC00..U+D7A3) split into its
    initial, medial and (when present) final conjoining jamo, computed from the Unicode
    arithmetic; everything else is kept as is. Unlike NFD, accented Latin letters stay whole."""
    out = []
    for ch in text:
        code = ord(ch) - FIRST_SYLLABLE
        if 0 <= code <= LAST_SYLLABLE - FIRST_SYLLABLE:
            out.append(chr(INITIAL_JAMO + code // (MEDIALS * FINALS)))
            out.append(chr(MEDIAL_JAMO + code // FINALS % MEDIALS))
            if code % FINALS:
                out.append(chr(FINAL_JAMO + code % FINALS))
        else:
            out.append(ch)
    return ''.join(out)


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance (insertions, deletions and substitutions all cost 1)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


def align(label: str, prediction: str) -> list[tuple[str, str]]:
    """A minimum-edit alignment of the two strings as (label character, predicted character)
    pairs, '' standing for the missing side of an insertion or deletion. Ties go to a
    substitution first, so 현재 -> 현새 aligns 재 with 새 rather than as a deletion and an insertion."""
    n, m = len(label), len(prediction)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                             cost[i - 1][j - 1] + (label[i - 1] != prediction[j - 1]))
    pairs = []
    i, j = n, m
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (label[i - 1] != prediction[j - 1]):
            pairs.append((label[i - 1], prediction[j - 1]))
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((label[i - 1], ''))
            i -= 1
        else:
            pairs.append(('', prediction[j - 1]))
            j -= 1
    return pairs[::-1]


def normalized_similarity(label: Sequence[str], prediction: Sequence[str]) -> float:
    """1 - edit distance / the longer length; 0 when either side is empty (ICDAR 2019's norm_ED
    rule for one sample)."""
    if not label or not prediction:
        return 0.0
    return 1 - edit_distance(label, prediction) / max(len(label), len(prediction))


class RecognitionMetrics:
    """Accumulates the Korean metrics over a set of (label, prediction) pairs.

    * ``cer``: the total character edit distance over the total label characters (0 for an
      empty set; ``inf`` when the labels hold no characters but the predictions do).
    * ``jamo_similarity``: jamo-level 1-NED, the mean over samples of
      :func:`normalized_similarity` of the :func:`jamo` strings, so one wrong jamo in a
      syllable costs a third of a wrong syllable.

    With ``keep_samples`` every :meth:`add` is also kept in ``samples`` as
    (label, prediction, confidence, correct), for error reports.
    """

    def __init__(self, keep_samples: bool = False):
        self.keep_samples = keep_samples
        self.count = 0
        self.char_errors = 0
        self.label_chars = 0
        self.jamo_total = 0.0
        self.samples: list[tuple[str, str, float | None, bool | None]] = []

    def add(self, label: str, prediction: str, confidence: float | None = None,
            correct: bool | None = None) -> None:
        self.count += 1
        self.char_errors += edit_distance(label, prediction)
        self.label_chars += len(label)
        self.jamo_total += normalized_similarity(jamo(label), jamo(prediction))
        if self.keep_samples:
            self.samples.append((label, prediction, confidence, correct))

    @property
    def cer(self) -> float:
        if self.label_chars:
            return self.char_errors / self.label_chars
        return float('inf') if self.char_errors else 0.0

    @property
    def jamo_similarity(self) -> float:
        return self.jamo_total / self.count if self.count else 0.0

    def summary(self) -> str:
        """The line test.py prints and logs after upstream's accuracy."""
        return f'CER {self.cer:0.4f}\t jamo_1-NED {self.jamo_similarity:0.4f}'


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to a temporary file beside ``path``, then rename it over ``path``:
    an interruption leaves the old file or the new one, never half of one."""
    path = os.fspath(path)
    tmp = f'{path}.tmp{os.getpid()}'
    try:
        with open(tmp, 'w', encoding='utf-8', newline='') as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)

# ----------------------------------------------------------------------------------------------
# command-line options shared by train.py, test.py and demo.py

STAGE_FLAGS = ('Transformation', 'FeatureExtraction', 'SequenceModeling', 'Prediction')

# Everything needed to rebuild a model and feed it as training did: the configuration a
# checkpoint carries beside it (model.save_checkpoint). Upstream's defaults; None = required.
MODEL_OPTION_DEFAULTS: dict[str, object] = {
    'Transformation': None, 'FeatureExtraction': None, 'SequenceModeling': None, 'Prediction': None,
    'num_fiducial': 20, 'imgH': 32, 'imgW': 100, 'rgb': False, 'input_channel': 1,
    'output_channel': 512, 'hidden_size': 256, 'PAD': False, 'character': DEFAULT_CHARACTER,
    'sensitive': False, 'batch_max_length': 25,
}
# May differ from the checkpoint's value: the weights and the preprocessing do not depend on it
# (it bounds the labels kept and the Attn decoding steps), and upstream users lower it at test
# time to filter long labels.
OVERRIDABLE_OPTIONS = frozenset({'batch_max_length'})


def add_common_options(parser: argparse.ArgumentParser, saved_model_required: bool) -> None:
    """The data-processing and model-architecture flags the three scripts share, with
    upstream's names and defaults.

    The model flags parse to None when not given, so :func:`finish_common_options` can tell a
    flag the user typed from a default and fill the rest from a checkpoint's configuration. The
    stage flags are required at parse time only where there is no checkpoint to describe the
    model (train.py); test.py and demo.py ask for them only when the checkpoint has no
    configuration beside it."""
    parser.add_argument('--workers', type=int, default=4, help='number of data loading workers')
    parser.add_argument('--batch_size', type=int, default=192, help='input batch size')
    parser.add_argument('--saved_model', required=saved_model_required, default='',
                        help='path to the model checkpoint (.pth)')
    parser.add_argument('--batch_max_length', type=int, help='maximum label length (default 25)')
    parser.add_argument('--imgH', type=int, help='the height of the input image (default 32)')
    parser.add_argument('--imgW', type=int, help='the width of the input image (default 100)')
    parser.add_argument('--rgb', action='store_true', default=None, help='use rgb input')
    parser.add_argument('--character', type=str,
                        help='the label alphabet, or the path of an alphabet file '
                             f'(UTF-8, one character per line); default {DEFAULT_CHARACTER}')
    parser.add_argument('--sensitive', action='store_true', default=None, help='for sensitive character mode')
    parser.add_argument('--PAD', action='store_true', default=None,
                        help='whether to keep ratio then pad for image resize')
    stages_required = not saved_model_required
    described = '' if stages_required else ' (read from the checkpoint\'s configuration when it has one)'
    parser.add_argument('--Transformation', type=str, required=stages_required,
                        help='Transformation stage. None|TPS' + described)
    parser.add_argument('--FeatureExtraction', type=str, required=stages_required,
                        help='FeatureExtraction stage. VGG|RCNN|ResNet' + described)
    parser.add_argument('--SequenceModeling', type=str, required=stages_required,
                        help='SequenceModeling stage. None|BiLSTM' + described)
    parser.add_argument('--Prediction', type=str, required=stages_required,
                        help='Prediction stage. CTC|Attn' + described)
    parser.add_argument('--num_fiducial', type=int, help='number of fiducial points of TPS-STN (default 20)')
    parser.add_argument('--input_channel', type=int,
                        help='the number of input channel of Feature extractor (default 1)')
    parser.add_argument('--output_channel', type=int,
                        help='the number of output channel of Feature extractor (default 512)')
    parser.add_argument('--hidden_size', type=int, help='the size of the LSTM hidden state (default 256)')


def resolve_alphabet(character: str | None, sensitive: bool) -> str:
    """The class characters for a ``--character`` value and ``--sensitive``, as upstream plus
    alphabet files: a file is read (and kept under --sensitive, so a Korean alphabet with
    upper-case Latin letters can be case-sensitive); an alphabet *string* is replaced by the 94
    printable ASCII characters under --sensitive."""
    character = DEFAULT_CHARACTER if character is None else character
    given_file = os.path.isfile(character)
    characters = load_character(character)
    if sensitive and not given_file:
        return SENSITIVE_CHARACTER
    return characters


def _describe_alphabet(characters: str) -> str:
    shown = characters if len(characters) <= 40 else f'{characters[:20]}...{characters[-10:]}'
    return f'{len(characters)} characters {shown!r}'


def _alphabet_difference(given: str, trained: str) -> str:
    missing = [ch for ch in given if ch not in set(trained)]
    extra = [ch for ch in trained if ch not in set(given)]
    if missing or extra:
        return (f'{len(missing)} characters only on the command line ({"".join(missing[:10])!r}), '
                f'{len(extra)} only in the checkpoint ({"".join(extra[:10])!r})')
    first = next(i for i, (a, b) in enumerate(zip(given, trained)) if a != b)
    return f'the same characters in another order (first difference at class {first + 1})'


def _check_against_config(opt: argparse.Namespace, config: dict, source: str) -> None:
    """Stop on any model flag the user gave that contradicts the checkpoint's configuration:
    a silent mismatch would load fine and predict garbage."""
    for flag in MODEL_OPTION_DEFAULTS:
        if flag in ('character', 'sensitive') or flag in OVERRIDABLE_OPTIONS:
            continue
        given = getattr(opt, flag, None)
        if given is not None and flag in config and given != config[flag]:
            raise ValueError(f'--{flag} {given} contradicts the checkpoint\'s configuration '
                             f'({source}: {flag} = {config[flag]}); drop the flag, or use a '
                             'checkpoint trained with it')
    if opt.sensitive is not None and opt.sensitive != config['sensitive']:
        raise ValueError(f'--sensitive contradicts the checkpoint\'s configuration ({source}: '
                         f'sensitive = {config["sensitive"]}); drop the flag')
    if opt.character is not None:
        given = resolve_alphabet(opt.character, config['sensitive'])
        if given != config['character']:
            raise ValueError(
                f'--character {opt.character!r} ({_describe_alphabet(given)}) contradicts the '
                f'checkpoint\'s configuration ({source}: {_describe_alphabet(config["character"])}): '
                f'{_alphabet_difference(given, config["character"])}; drop --character')


def finish_common_options(opt: argparse.Namespace, config: dict | None = None) -> argparse.Namespace:
    """Apply the rules upstream applies after parsing, plus alphabet files and checkpoint
    configurations.

    * ``config`` (``model.read_model_config`` of --saved_model) fills every model flag the user
      did not give; a given flag that contradicts it raises ValueError naming both values
      (``--batch_max_length`` may differ: see :data:`OVERRIDABLE_OPTIONS`).
      ``config['config_file']`` names its file in messages. Without a configuration the flags
      take upstream's defaults and the four stage flags are required.
    * ``--character`` may name an alphabet file; it is read here.
    * ``--sensitive`` replaces an alphabet *string* by the 94 printable ASCII characters, as
      upstream; an alphabet *file* is kept, only lower-casing is switched off.
    * ``--rgb`` sets input_channel to 3.
    """
    if config is not None:
        source = str(config.get('config_file', 'the checkpoint configuration'))
        _check_against_config(opt, config, source)
        for flag in MODEL_OPTION_DEFAULTS:
            if not (flag in OVERRIDABLE_OPTIONS and getattr(opt, flag, None) is not None):
                setattr(opt, flag, config[flag])
    else:
        # a namespace built by hand without stage attributes (data-only use) needs none
        missing = [f'--{flag}' for flag in STAGE_FLAGS
                   if hasattr(opt, flag) and getattr(opt, flag) is None]
        if missing:
            where = f' beside {opt.saved_model}' if getattr(opt, 'saved_model', '') else ''
            raise ValueError(f'the following arguments are required: {", ".join(missing)} (there is '
                             f'no model configuration{where} to read them from)')
        for flag, default in MODEL_OPTION_DEFAULTS.items():
            if getattr(opt, flag, None) is None:
                setattr(opt, flag, default)
        opt.character = resolve_alphabet(opt.character, opt.sensitive)
    if opt.rgb:
        opt.input_channel = 3
    opt.alphabet = Alphabet(opt.character, opt.sensitive)
    return opt


# How a model reads its images. A checkpoint loads under any values of these (the weights have
# the same shapes at any width, padded or stretched), so a run that differs reads images in a
# way the model never learnt and nothing fails: train.py says so when it starts from one.
READING_OPTIONS = ('imgH', 'imgW', 'PAD')


def _reading_flags(settings: dict) -> str:
    return (f"--imgH {settings['imgH']} --imgW {settings['imgW']} "
            + ('--PAD' if settings['PAD'] else 'without --PAD'))


def reading_mismatch(opt: argparse.Namespace, config: dict | None) -> str | None:
    """One line for a run whose image-reading flags (:data:`READING_OPTIONS`) differ from those
    of the checkpoint configuration ``config`` it starts from; None when they agree or there is
    no configuration (a bare DTRB checkpoint)."""
    if config is None or all(bool(getattr(opt, flag)) == bool(config[flag]) if flag == 'PAD'
                             else getattr(opt, flag) == config[flag] for flag in READING_OPTIONS):
        return None
    return (f"note: {config.get('config_file', 'the checkpoint configuration')} says the model read images "
            f"at {_reading_flags(config)}; this run reads them at {_reading_flags(vars(opt))} "
            f"(the weights load either way; give its flags to read images as it learnt to)")


def model_config(opt: argparse.Namespace) -> dict:
    """The configuration a checkpoint carries (see :data:`MODEL_OPTION_DEFAULTS`) from a
    finished option namespace."""
    return {flag: getattr(opt, flag) for flag in MODEL_OPTION_DEFAULTS}


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


AMP_DTYPES = ('float16', 'bfloat16')


def add_amp_options(parser: argparse.ArgumentParser, purpose: str) -> None:
    """--amp and --amp_dtype, the same two flags in train.py, test.py and demo.py; ``purpose``
    ends the --amp help (what mixed precision means for that script)."""
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision: float16 autocast on CUDA, bfloat16 autocast on the CPU; '
                             + purpose)
    parser.add_argument('--amp_dtype', choices=AMP_DTYPES,
                        help='--amp precision (default float16 on CUDA, bfloat16 on the CPU)')


def add_min_aspect_option(parser: argparse.ArgumentParser) -> None:
    """--min_aspect, the same reading flag in test.py and demo.py."""
    parser.add_argument('--min_aspect', type=float, default=0.0,
                        help='with --PAD: read an image narrower than this many times its height as if '
                             'stretched to that width (e.g. 4 for licence-plate crops; default 0, off)')


def reading_min_aspect(opt) -> float:
    """The --min_aspect to read with (0 for options without the flag: train.py, DTRB code).

    Raises InputError for a negative value, or a positive one without --PAD, where every image
    is stretched to imgW x imgH already."""
    min_aspect = float(getattr(opt, 'min_aspect', 0.0) or 0.0)
    if min_aspect < 0:
        raise InputError(f'--min_aspect {min_aspect:g}: expected 0 (off) or a positive width-to-height ratio')
    if min_aspect and not opt.PAD:
        raise InputError(f'--min_aspect {min_aspect:g} needs --PAD: without it every image is stretched '
                         f'to {opt.imgW} x {opt.imgH} already')
    return min_aspect


def add_vertical_option(parser: argparse.ArgumentParser) -> None:
    """--vertical, the same flag in test.py, demo.py and train.py (which lays its training and
    validation images out as the readers do)."""
    parser.add_argument('--vertical', type=float, default=0.0, metavar='RATIO',
                        help='read an image at least RATIO times as tall as wide as vertical text (characters '
                             'stacked top to bottom, as on vertical Korean signs): its characters are laid out '
                             'left to right first (e.g. 1.2; default 0, off)')


def reading_vertical(opt) -> float:
    """The --vertical ratio to lay images out with (0 for options without the flag: DTRB code).

    Raises InputError for a ratio below 1, where a horizontal line would be cut up too."""
    vertical = float(getattr(opt, 'vertical', 0.0) or 0.0)
    if vertical and not vertical >= 1:
        raise InputError(f'--vertical {vertical:g}: expected 0 (off) or a height-to-width ratio of 1 or more, '
                         'e.g. 1.2')
    return vertical


def check_amp_flags(opt) -> None:
    """Raises ValueError for --amp_dtype without --amp (before a script spends time on data)."""
    amp_dtype = getattr(opt, 'amp_dtype', None)
    if amp_dtype and not getattr(opt, 'amp', False):
        raise ValueError(f'--amp_dtype {amp_dtype} is given without --amp; add --amp to run in mixed precision')


def autocast_dtype(opt, device) -> 'torch.dtype | None':
    """The precision --amp asks for on ``device`` (None: float32, upstream's). float16 by default
    on CUDA; bfloat16 on the CPU, where float16 autocast is slow and has no GradScaler worth
    having. Options built without the flags (DTRB code) mean float32.

    Raises ValueError for --amp_dtype without --amp, or float16 without a CUDA device."""
    import torch
    check_amp_flags(opt)
    amp, amp_dtype = getattr(opt, 'amp', False), getattr(opt, 'amp_dtype', None)
    if not amp:
        return None
    if amp_dtype is None:
        return torch.float16 if device.type == 'cuda' else torch.bfloat16
    if amp_dtype == 'float16' and device.type != 'cuda':
        raise ValueError('--amp_dtype float16 needs a CUDA GPU (none is visible); on the CPU '
                         '--amp runs bfloat16 autocast: drop --amp_dtype or give bfloat16')
    return getattr(torch, amp_dtype)


def cpu_computes_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic units (AVX-512 BF16 or AMX), where --amp trains
    and reads faster; elsewhere bfloat16 autocast is emulated and slower than float32. Read from
    torch's CPU capability probes, private in torch 2.x, so a torch without them means no."""
    import torch
    probes = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    return any(probe() for probe in probes if probe is not None)


def usable_cpu_count() -> int:
    """The cores this process may run on: ``taskset`` and container CPU sets restrict them, and
    os.cpu_count() still counts the whole machine (torch's threads collapse when oversubscribed)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------------------------
# distributed training under torchrun

DISTRIBUTED_TIMEOUT_MINUTES = 120  # the other processes wait this long while rank 0 validates


class DistributedContext:
    """Where this process stands in a run: ``rank`` of ``world_size`` processes (1 without
    torchrun), ``local_rank`` on its machine, and the ``device`` it trains on. Only the main
    process (rank 0) validates, logs and saves."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, device=None):
        self.rank, self.world_size, self.local_rank = rank, world_size, local_rank
        self.device = device if device is not None else pick_device()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def all_agree(self, value: bool) -> bool:
        """True when ``value`` is True in every process (one tiny all-reduce per call), so the
        processes take the same branch and none waits forever in a collective."""
        if not self.distributed:
            return bool(value)
        import torch
        import torch.distributed as dist
        flag = torch.tensor([1.0 if value else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item() == 1.0)

    def largest(self, value: float) -> float:
        """The largest ``value`` over the processes (one tiny all-reduce), so decisions taken
        from it, such as a deadline's, are the same in every process."""
        if not self.distributed:
            return float(value)
        import torch
        import torch.distributed as dist
        number = torch.tensor([float(value)], device=self.device, dtype=torch.float64)
        dist.all_reduce(number, op=dist.ReduceOp.MAX)
        return float(number.item())

    def wait_for_all(self) -> None:
        """Returns once every process has called it, so the processes of a run finish together:
        none exits while the main process still validates and saves. (The abort at exit that
        torchrun runs met came from the model outliving the group; close() prevents that.)"""
        self.all_agree(True)

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist
            if dist.is_initialized():
                # a DistributedDataParallel model sits in reference cycles, so without a collection
                # it outlives the group and takes the group's gloo threads into the interpreter's
                # exit, which aborts the process ("terminate called without an active exception")
                gc.collect()
                dist.destroy_process_group()


def init_distributed() -> DistributedContext:
    """The process group torchrun describes in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
    MASTER_ADDR/PORT): NCCL on CUDA GPUs, one GPU per process, and gloo on CPUs. Without
    torchrun (or with one process) a plain single-process context."""
    world_size = int(os.environ.get('WORLD_SIZE', '1'))
    if world_size <= 1:
        return DistributedContext()
    import datetime

    import torch
    import torch.distributed as dist
    rank, local_rank = int(os.environ['RANK']), int(os.environ.get('LOCAL_RANK', '0'))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device, backend = torch.device('cuda', local_rank), 'nccl'
    else:
        device, backend = torch.device('cpu'), 'gloo'
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=DISTRIBUTED_TIMEOUT_MINUTES))
    return DistributedContext(rank, world_size, local_rank, device)
