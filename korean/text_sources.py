"""Text for synthetic word images: labels from files and from built-in generators, mixed into
one deterministic stream.

Every label that leaves this module is NFC-normalised, has its whitespace runs collapsed to
single spaces and no leading or trailing space, holds no tab or line break, is at most
``max_length`` characters long, passes the alphabet (when one is given) and is not excluded.

Built-in sources (see :data:`BUILTIN_SOURCES`):

* ``words``      a word from the built-in list ``korean/data/words.txt`` (or a list you give)
* ``captions``   caption / headline / signboard-like strings composed from the vocabulary in
                 ``korean/data/vocab/`` by templates (team + 승리, place + 날씨, [속보] ...)
* ``syllables``  random strings of the alphabet's Hangul syllables, lengths 1..N; the syllables
                 are dealt from a shuffled deck, so each appears equally often
* ``chars``      the same over every non-space character of the alphabet (digits, Latin,
                 punctuation too), so rare classes get samples
* ``digits``     digit strings
* ``numbers``    phone numbers, decimals, percentages, ranks, measurements (3.5%, 3위, 15℃)
* ``dates``      dates and times (2026.11.21, 11월 21일, 2026년 11월 21일(토), 오후 3:20)
* ``scores``     sports scores and game states (3:1, 2-0, 9회말, 3세트, 2승 1패)
* ``prices``     prices, always ending in 원 (12,000원, 3만5천원)
* ``plates``     licence plate numbers (12가3456, 123가4567, 서울12바3456), real plate letters
* ``scorebugs``  score-bug lines: teams, scores, game state (두산 3 : 2 LG 9회말)

Run ``python korean/text_sources.py --help`` to sample a mix, split a word list into disjoint
train/test parts, rebuild ``words.txt`` from the vocabulary files, or write word-like labels
from a large Korean lexicon (wordfreq's) for ``--text_file``, or write that lexicon's words as
a word list for test.py / demo.py ``--lexicon``.
"""
from __future__ import annotations

import argparse
import calendar
import collections
import datetime
import importlib.metadata
import logging
import os
import random
import sys
import unicodedata
import zlib
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

if __package__ in (None, ''):  # run as `python korean/text_sources.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from korean.hangul import is_hangul_syllable  # noqa: E402
from utils import Alphabet, decode_utf8  # noqa: E402

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / 'data'
VOCAB_DIR = DATA_DIR / 'vocab'
WORDS_FILE = DATA_DIR / 'words.txt'

DEFAULT_MAX_LENGTH = 25
DEFAULT_SYLLABLE_MAX_LENGTH = 10
DEFAULT_SOURCES = ('words:4,captions:4,syllables:2,dates:1,scores:1,prices:1,numbers:1,'
                   'digits:0.5,chars:0.5')
TEXT_SPLITS = ('lines', 'words', 'phrases')
EXCLUDE_MODES = ('label', 'token', 'substring')
# a source that yields this many unusable labels in a row is broken for the current settings
MAX_CONSECUTIVE_REJECTS = 1000
# the longest run of words a 'phrases' text file sample joins
MAX_PHRASE_WORDS = 4

WEEKDAYS = '월화수목금토일'  # datetime.weekday() order: Monday is 0


class TextFileError(ValueError):
    """A text file that cannot be used: not UTF-8, or nothing in it survives the filters."""


# ----------------------------------------------------------------------------------------------
# normalisation and files


def normalize_label(text: str) -> str:
    """NFC-normalise ``text``, collapse every whitespace run (tabs and line breaks included)
    to one space and strip the ends: the form every label takes in this module."""
    return ' '.join(unicodedata.normalize('NFC', text).split())


def read_text_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """Read a UTF-8 text file (a BOM is ignored) into ``(line_number, normalised line)``
    pairs, skipping lines that are empty after normalisation.

    Raises :class:`TextFileError` naming the file and line when it is not UTF-8.
    """
    path = Path(path)
    raw = path.read_bytes()
    text = decode_utf8(raw, path, 'text files must be UTF-8', TextFileError)
    lines = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = normalize_label(line)
        if line:
            lines.append((line_no, line))
    return lines


def read_word_list(path: str | os.PathLike) -> list[str]:
    """The distinct non-empty normalised lines of a UTF-8 file, in file order."""
    return list(dict.fromkeys(line for _, line in read_text_lines(path)))


def write_lines_atomically(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """Write one string a line (UTF-8, ``\\n``) through a temporary file and a rename, so a
    reader never sees half a file. A missing parent folder is created, as the generator does
    for its --output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp{os.getpid()}')
    try:
        with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
            for line in lines:
                f.write(line + '\n')
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_vocab(vocab_dir: str | os.PathLike = VOCAB_DIR) -> dict[str, list[str]]:
    """The built-in vocabulary: ``{category: words}``, one category per ``*.txt`` file in
    ``vocab_dir`` (file stem = category), words in file order without duplicates."""
    vocab = {}
    for path in sorted(Path(vocab_dir).glob('*.txt')):
        vocab[path.stem] = read_word_list(path)
    if not vocab:
        raise FileNotFoundError(f'{vocab_dir}: no vocabulary files (*.txt) found')
    return vocab


def build_word_list(vocab: Mapping[str, Sequence[str]]) -> list[str]:
    """The built-in word list: every distinct single-token entry of the vocabulary (entries
    with spaces are phrases and stay out), sorted."""
    return sorted({w for words in vocab.values() for w in words if ' ' not in w})


def builtin_words() -> list[str]:
    """The words of ``korean/data/words.txt``."""
    return read_word_list(WORDS_FILE)


# the Korean list of wordfreq 3.1.1 (its data frozen since 2024): the lexicon's words, and so
# the labels lexicon_words writes for a seed, depend on that version
WORDFREQ_VERSION = '3.1.1'
LEXICON_ENDINGS_FROM = 300   # endings are the one- and two-syllable entries among the most frequent
LEXICON_MIX = (0.4, 0.35)    # single entries, then pairs; the rest are an entry plus an ending
LEXICON_MAX_LENGTH = 10


def wordfreq_korean_words(keep: Callable[[str], bool] | None = None) -> list[str]:
    """The all-Hangul entries of wordfreq's Korean frequency list, most frequent first:
    about 26,000 words and morphemes (wordfreq splits Korean with MeCab, so endings and
    particles such as 에서 are entries of their own). ``keep`` filters them (alphabet,
    exclusion). Raises RuntimeError when wordfreq is not installed."""
    try:
        import wordfreq
    except ImportError:
        raise RuntimeError(f'the Korean lexicon needs wordfreq: pip install wordfreq=={WORDFREQ_VERSION}') from None
    # wordfreq has no __version__: the installed distribution's metadata says which it is
    installed = importlib.metadata.version('wordfreq')
    if installed != WORDFREQ_VERSION:
        logger.warning('wordfreq %s is installed; the lexicon was measured with %s, so the words '
                       'may differ', installed, WORDFREQ_VERSION)
    words = []
    for entry in wordfreq.top_n_list('ko', 200_000):
        word = unicodedata.normalize('NFC', entry)
        if word and all(is_hangul_syllable(ch) for ch in word) and (keep is None or keep(word)):
            words.append(word)
    return words


def compose_lexicon_words(entries: Sequence[str], num: int, seed: int,
                          max_length: int = LEXICON_MAX_LENGTH,
                          exclude: Callable[[str], bool] | None = None) -> list[str]:
    """``num`` distinct word-like labels from a frequency-ordered lexicon, shuffled: 40 %
    single entries of two or more syllables, 35 % two of them run together as Korean
    compounds are (올림픽 + 공원), 25 % one followed by a frequent one- or two-syllable
    entry, mostly particles and endings (학교 + 에서). Entries are drawn uniformly, so rare
    words come as often as common ones. Deterministic for (entries, num, seed)."""
    stems = [w for w in entries if len(w) >= 2]
    endings = [w for w in entries[:LEXICON_ENDINGS_FROM] if len(w) <= 2]
    if not stems or not endings:
        raise ValueError('the lexicon has no entry of two or more syllables, or no short frequent entry')
    rng = random.Random(seed)
    labels: set[str] = set()
    attempts = 0
    while len(labels) < num:
        attempts += 1
        if attempts > 50 * num + 1000:
            raise ValueError(f'the lexicon gives only {len(labels)} distinct labels of at most '
                             f'{max_length} syllables, fewer than the {num} asked for')
        r = rng.random()
        if r < LEXICON_MIX[0]:
            label = rng.choice(stems)
        elif r < LEXICON_MIX[0] + LEXICON_MIX[1]:
            label = rng.choice(stems) + rng.choice(stems)
        else:
            label = rng.choice(stems) + rng.choice(endings)
        if len(label) <= max_length and (exclude is None or not exclude(label)):
            labels.add(label)
    ordered = sorted(labels)
    rng.shuffle(ordered)
    return ordered


def split_words(words: Iterable[str], test_fraction: float = 0.1,
                seed: int = 0) -> tuple[list[str], list[str]]:
    """Split a word list into disjoint ``(train, test)`` lists, deterministically for a seed.

    Words are normalised and de-duplicated first; ``round(n * test_fraction)`` of them (at
    least one when the fraction is positive and there are two or more words) go to test.
    Both lists come back sorted, and together they hold every distinct input word.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f'test_fraction must be in [0, 1), got {test_fraction}')
    distinct = sorted({normalize_label(w) for w in words} - {''})
    n_test = round(len(distinct) * test_fraction)
    if test_fraction > 0 and n_test == 0 and len(distinct) >= 2:
        n_test = 1
    shuffled = list(distinct)
    random.Random(seed).shuffle(shuffled)
    return sorted(shuffled[n_test:]), sorted(shuffled[:n_test])


# ----------------------------------------------------------------------------------------------
# exclusion


class ExcludeRule:
    """Decides whether a label touches a held-out vocabulary.

    Comparison is on normalised, lower-cased text (Hangul has no case; Latin ``KBO`` and
    ``kbo`` count as the same word).

    * ``label``: the whole label equals an excluded entry.
    * ``token``: the whole label, or one of its space-separated words, equals an entry
      (so the caption ``서울 날씨`` is excluded when ``서울`` is held out).
    * ``substring``: an entry occurs anywhere in the label (``서울시청`` too). Strictest;
      a one-syllable entry then removes every label containing that syllable.
    """

    def __init__(self, entries: Iterable[str] = (), mode: str = 'token'):
        if mode not in EXCLUDE_MODES:
            raise ValueError(f'exclude mode must be one of {EXCLUDE_MODES}, got {mode!r}')
        self.mode = mode
        self.entries = frozenset(normalize_label(e).lower() for e in entries) - {''}
        self._lengths = sorted({len(e) for e in self.entries})

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def matches(self, label: str) -> bool:
        """True when ``label`` must not be produced."""
        if not self.entries:
            return False
        text = label.lower()
        if text in self.entries:
            return True
        if self.mode == 'token':
            return any(tok in self.entries for tok in text.split(' '))
        if self.mode == 'substring':
            # checking every substring of each excluded length is far cheaper than scanning
            # for every excluded entry
            for n in self._lengths:
                if n > len(text):
                    break
                if any(text[i:i + n] in self.entries for i in range(len(text) - n + 1)):
                    return True
        return False


def read_exclude_files(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The distinct entries (one per line) of every exclude file."""
    entries: dict[str, None] = {}
    for path in paths:
        for _, line in read_text_lines(path):
            entries.setdefault(line)
    return list(entries)


# ----------------------------------------------------------------------------------------------
# label filter shared by all sources


class LabelFilter:
    """The checks every label passes: length, alphabet and exclusion. ``reason(label)`` names
    the first failed check, or returns None for a usable label.

    Alphabet membership follows upstream's data filter (the lower-cased label must be in the
    alphabet) unless the alphabet is case-sensitive, when the label must be in it as is.
    """

    def __init__(self, alphabet: Alphabet | None, max_length: int, exclude: ExcludeRule):
        if max_length < 1:
            raise ValueError(f'max_length must be at least 1, got {max_length}')
        self.alphabet = alphabet
        self.max_length = max_length
        self.exclude = exclude

    def reason(self, label: str) -> str | None:
        if not label:
            return 'empty'
        if len(label) > self.max_length:
            return 'too long'
        if self.alphabet is not None and not self._in_alphabet(label):
            return 'outside alphabet'
        if self.exclude.matches(label):
            return 'excluded'
        return None

    def _in_alphabet(self, label: str) -> bool:
        if self.alphabet.sensitive:
            return all(ch in self.alphabet for ch in label)
        # upstream's filter: the lower-cased label must be in the alphabet
        return self.alphabet.keeps(label, self.max_length)

    def keeps(self, label: str) -> bool:
        return self.reason(label) is None

    def missing(self, label: str) -> list[str]:
        """The distinct characters of ``label`` that make it fail the alphabet check."""
        if self.alphabet is None:
            return []
        text = label if self.alphabet.sensitive else label.lower()
        return [ch for ch in dict.fromkeys(text) if ch not in self.alphabet]


# ----------------------------------------------------------------------------------------------
# sources


class TextSource:
    """A generator of candidate labels. ``sample(rng)`` returns one (the mixer filters it)."""

    name = 'source'

    def sample(self, rng: random.Random) -> str:
        raise NotImplementedError


class WordListSource(TextSource):
    """Uniformly drawn entries of a word list, pre-filtered so that (almost) nothing drawn is
    rejected later."""

    def __init__(self, words: Sequence[str], name: str, keep: Callable[[str], bool] | None = None):
        self.name = name
        normalised = dict.fromkeys(normalize_label(w) for w in words)
        self.words = [w for w in normalised if w and (keep is None or keep(w))]
        if not self.words:
            raise ValueError(f'source {name!r}: no word of the list passes the alphabet, '
                             'length and exclusion filters')

    def sample(self, rng: random.Random) -> str:
        return rng.choice(self.words)


class FileTextSource(TextSource):
    """Text from a UTF-8 file: crawled headlines, word lists, any text.

    ``split`` decides what one label is:

    * ``lines``: a whole line;
    * ``words``: one whitespace-separated word;
    * ``phrases``: a run of 1..4 consecutive words of a line (no longer than max_length),
      which keeps headlines longer than max_length usable.

    Units that fail the filter are dropped when the file is loaded and counted in
    :attr:`stats` (``too long``, ``outside alphabet`` with the most common missing
    characters, ``excluded``). A file with nothing usable raises :class:`TextFileError`.
    """

    def __init__(self, path: str | os.PathLike, label_filter: LabelFilter, split: str = 'lines'):
        if split not in TEXT_SPLITS:
            raise ValueError(f'text split must be one of {TEXT_SPLITS}, got {split!r}')
        self.path = Path(path)
        self.name = str(path)
        self.split = split
        self.filter = label_filter
        lines = read_text_lines(self.path)
        self.stats: dict[str, object] = {'lines': len(lines), 'split': split}
        rejected: collections.Counter[str] = collections.Counter()
        missing: collections.Counter[str] = collections.Counter()
        if split == 'phrases':
            # runs of consecutive usable words; a phrase never spans an unusable word
            self.segments: list[list[str]] = []
            for _, line in lines:
                run: list[str] = []
                for word in line.split(' '):
                    why = label_filter.reason(word)
                    if why is None:
                        run.append(word)
                        continue
                    self._count_reject(why, word, rejected, missing)
                    if run:
                        self.segments.append(run)
                    run = []
                if run:
                    self.segments.append(run)
            usable = sum(len(s) for s in self.segments)
        else:
            units = (line for _, line in lines) if split == 'lines' else (
                w for _, line in lines for w in line.split(' '))
            kept: dict[str, None] = {}
            for unit in units:
                why = label_filter.reason(unit)
                if why is None:
                    kept.setdefault(unit)
                else:
                    self._count_reject(why, unit, rejected, missing)
            self.texts = list(kept)
            usable = len(self.texts)
        self.stats.update(usable=usable, rejected=dict(rejected),
                          missing_characters=''.join(ch for ch, _ in missing.most_common(20)))
        if usable == 0:
            raise TextFileError(
                f'{self.path}: nothing usable among {len(lines)} non-empty lines with '
                f'--text_split {split} ({self._reject_summary(rejected, missing)})')
        if rejected:
            logger.info('%s: %d usable %s; dropped %s', self.path, usable,
                        'words' if split != 'lines' else 'lines',
                        self._reject_summary(rejected, missing))

    def _count_reject(self, why: str, unit: str, rejected: collections.Counter,
                      missing: collections.Counter) -> None:
        rejected[why] += 1
        if why == 'outside alphabet':
            missing.update(self.filter.missing(unit))

    def _reject_summary(self, rejected: Mapping[str, int], missing: collections.Counter) -> str:
        parts = []
        for why, n in sorted(rejected.items()):
            part = f'{n} {why}'
            if why == 'too long':
                part += f' (> {self.filter.max_length} characters'
                part += '; try --text_split phrases)' if self.split == 'lines' else ')'
            if why == 'outside alphabet' and missing:
                part += ' (e.g. ' + ' '.join(repr(c) for c, _ in missing.most_common(8)) + ')'
            parts.append(part)
        return ', '.join(parts) or 'the file holds no text'

    def sample(self, rng: random.Random) -> str:
        if self.split != 'phrases':
            return rng.choice(self.texts)
        segment = rng.choice(self.segments)
        n_words = rng.randint(1, min(MAX_PHRASE_WORDS, len(segment)))
        start = rng.randint(0, len(segment) - n_words)
        words = segment[start:start + n_words]
        while len(words) > 1 and len(' '.join(words)) > self.filter.max_length:
            words = words[:-1]
        return ' '.join(words)


class DeckSource(TextSource):
    """Random strings over a character set, dealt from a shuffled deck: every character
    appears once before any appears again, so all characters are equally frequent.

    String lengths are uniform in 1..max_string_length.
    """

    def __init__(self, characters: Iterable[str], name: str, max_string_length: int):
        self.name = name
        self.characters = list(dict.fromkeys(characters))
        if not self.characters:
            raise ValueError(f'source {name!r}: the alphabet holds no characters for it')
        if max_string_length < 1:
            raise ValueError(f'source {name!r}: max string length must be at least 1')
        self.max_string_length = max_string_length
        self._deck: list[str] = []

    def _deal(self, rng: random.Random) -> str:
        if not self._deck:
            self._deck = list(self.characters)
            rng.shuffle(self._deck)
        return self._deck.pop()

    def sample(self, rng: random.Random) -> str:
        n = rng.randint(1, self.max_string_length)
        return ''.join(self._deal(rng) for _ in range(n))


class DigitSource(TextSource):
    """Digit strings of 1..max_string_length digits (a leading zero is allowed, as in codes)."""

    name = 'digits'

    def __init__(self, max_string_length: int = 10):
        self.max_string_length = max_string_length

    def sample(self, rng: random.Random) -> str:
        n = rng.randint(1, self.max_string_length)
        return ''.join(rng.choice('0123456789') for _ in range(n))


def _thousands(n: int) -> str:
    return f'{n:,}'


class NumberSource(TextSource):
    """Numbers as printed on signs and screens: phone numbers, decimals, percentages,
    ranks, rounds, measurements with units."""

    name = 'numbers'

    def sample(self, rng: random.Random) -> str:
        kind = rng.randrange(9)
        if kind == 0:  # mobile and landline numbers, customer-service numbers
            pick = rng.randrange(3)
            if pick == 0:
                return f'010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}'
            if pick == 1:
                area = rng.choice(['02', '031', '032', '042', '051', '053', '062', '064'])
                return f'{area}-{rng.randint(100, 9999)}-{rng.randint(1000, 9999)}'
            return f'{rng.choice(["1588", "1577", "1544", "1600", "1644"])}-{rng.randint(1000, 9999)}'
        if kind == 1:
            return f'{rng.randint(0, 999)}.{rng.randint(0, 99)}'
        if kind == 2:
            return f'{rng.choice([rng.randint(1, 100), round(rng.uniform(0, 100), 1)])}%'
        if kind == 3:
            return f'{rng.randint(1, 30)}{rng.choice(["위", "등", "번", "호", "층", "호선", "번째", "차"])}'
        if kind == 4:
            return f'제{rng.randint(1, 120)}{rng.choice(["회", "호", "기", "차", "조"])}'
        if kind == 5:
            temp = rng.randint(-20, 40)
            return f'{temp}℃' if rng.random() < 0.7 else f'{temp}도'
        if kind == 6:
            value = rng.choice([str(rng.randint(1, 999)), f'{rng.randint(0, 99)}.{rng.randint(1, 9)}'])
            return value + rng.choice(['㎞', '㎏', '㎜', 'km', 'kg', 'm', 'cm', 'g', 'ml', 'l'])
        if kind == 7:
            return _thousands(rng.randint(1000, 99_999_999))
        return f'{rng.randint(1, 99)}{rng.choice(["명", "개", "세", "살", "대", "곳", "건", "분", "시간", "일"])}'


class DateSource(TextSource):
    """Dates and times in the forms Korean screens and documents use. Every date is a real
    calendar date, and a weekday shown is that date's weekday."""

    name = 'dates'
    FIRST_YEAR, LAST_YEAR = 1990, 2035

    def _date(self, rng: random.Random) -> datetime.date:
        year = rng.randint(self.FIRST_YEAR, self.LAST_YEAR)
        month = rng.randint(1, 12)
        day = rng.randint(1, calendar.monthrange(year, month)[1])
        return datetime.date(year, month, day)

    @staticmethod
    def _time(rng: random.Random) -> str:
        hour, minute = rng.randint(0, 23), rng.choice([0, 0, 10, 15, 20, 30, 40, 45, 50, rng.randint(0, 59)])
        half = '오전' if hour < 12 else '오후'
        h12 = hour % 12 or 12
        forms = [f'{hour:02d}:{minute:02d}', f'{hour}:{minute:02d}', f'{half} {h12}:{minute:02d}',
                 f'{half} {h12}시', f'{half} {h12}시 {minute}분' if minute else f'{half} {h12}시',
                 f'{h12}시 {minute}분' if minute else f'{h12}시']
        return rng.choice(forms)

    def sample(self, rng: random.Random) -> str:
        d = self._date(rng)
        y, m, dd, wd = d.year, d.month, d.day, WEEKDAYS[d.weekday()]
        forms = [
            f'{y}.{m:02d}.{dd:02d}', f'{y}.{m}.{dd}.', f'{y}-{m:02d}-{dd:02d}', f'{y}/{m:02d}/{dd:02d}',
            f'{y % 100:02d}.{m:02d}.{dd:02d}', f'{m}월 {dd}일', f'{y}년 {m}월 {dd}일',
            f'{y}년 {m}월 {dd}일({wd})', f'{m}월 {dd}일({wd})', f'{m}월 {dd}일 {wd}요일',
            f'{m}.{dd}({wd})', f'{m:02d}/{dd:02d}', f'{y}년 {m}월', f'{y}년', f'{m}월',
        ]
        kind = rng.random()
        if kind < 0.70:
            return rng.choice(forms)
        if kind < 0.85:
            return self._time(rng)
        return f'{m}월 {dd}일 {self._time(rng)}'


class ScoreSource(TextSource):
    """Scores and game states of sports broadcasts."""

    name = 'scores'

    def sample(self, rng: random.Random) -> str:
        a, b = rng.randint(0, 12), rng.randint(0, 12)
        inning = rng.randint(1, 12)
        forms = [
            lambda: f'{a}:{b}', lambda: f'{a}-{b}', lambda: f'{a} : {b}', lambda: f'{a} 대 {b}',
            lambda: f'{inning}회{rng.choice("초말")}', lambda: f'{inning}이닝',
            lambda: f'{rng.randint(1, 5)}세트', lambda: f'{rng.randint(1, 5)}세트 {rng.randint(15, 30)}:{rng.randint(15, 30)}',
            lambda: f'{rng.randint(1, 4)}쿼터', lambda: f'{rng.randint(1, 4)}쿼터 {rng.randint(0, 12)}:{rng.randint(0, 59):02d}',
            lambda: f'{rng.randint(0, 30)}승 {rng.randint(0, 30)}패',
            lambda: f'{rng.randint(0, 30)}승 {rng.randint(0, 5)}무 {rng.randint(0, 30)}패',
            lambda: f'전반 {rng.randint(1, 45)}분', lambda: f'후반 {rng.randint(46, 90)}분',
            lambda: f'{rng.choice(["전반", "후반"])} 45+{rng.randint(1, 7)}분',
            lambda: f'{rng.randint(1, 3)}사 {rng.choice(["1루", "2루", "3루", "1,2루", "1,3루", "2,3루", "만루"])}',
            lambda: f'{rng.choice(["무사", "1사", "2사"])} {rng.choice(["1루", "2루", "3루", "만루"])}',
            lambda: f'{rng.randint(0, 3)}볼 {rng.randint(0, 2)}스트라이크',
            lambda: f'{rng.randint(1, 10)}연승', lambda: f'{rng.randint(1, 10)}연패',
            lambda: f'{rng.randint(1, 30)}호 홈런', lambda: f'시즌 {rng.randint(1, 60)}호',
            lambda: f'{rng.randint(1, 10)}위', lambda: f'승점 {rng.randint(0, 90)}',
            lambda: f'연장 {rng.randint(10, 12)}회', lambda: f'{a}-{b} 승' if a > b else f'{a}-{b} 패',
            lambda: f'승부차기 {rng.randint(0, 5)}:{rng.randint(0, 5)}',
        ]
        return rng.choice(forms)()


class PriceSource(TextSource):
    """Prices as shops, menus and news print them; every one ends with 원."""

    name = 'prices'

    def sample(self, rng: random.Random) -> str:
        kind = rng.randrange(6)
        if kind in (0, 1):  # 1,980원 / 12,000원: round amounts, sometimes ending in 900/500/80
            amount = rng.choice([rng.randint(1, 300) * 100, rng.randint(1, 99) * 1000,
                                 rng.randint(1, 200) * 1000 - 100, rng.randint(1, 50) * 100 - 20,
                                 rng.randint(1, 999) * 10_000])
            return f'{amount:,}원'
        if kind == 2:  # 3만5천원, 2만원, 5천원
            man, cheon = rng.randint(0, 99), rng.randint(0, 9)
            if man == 0 and cheon == 0:
                cheon = rng.randint(1, 9)
            text = (f'{man}만' if man else '') + (f'{cheon}천' if cheon else '')
            return text + '원'
        if kind == 3:  # 1억 2천만원, 3억원, 2,500만원
            eok = rng.randint(1, 99)
            rest = rng.choice(['', f' {rng.randint(1, 9)}천만', f' {rng.randint(1, 9999):,}만'])
            return f'{eok}억{rest}원'
        if kind == 4:
            return f'{rng.randint(1, 9999):,}만원'
        prefix = rng.choice(['정가 ', '판매가 ', '할인가 ', '1인 ', '월 ', '단돈 ', '특가 ', '개당 '])
        return f'{prefix}{rng.randint(1, 500) * 100:,}원'


class PlateSource(TextSource):
    """Korean licence plate numbers: ``12가3456`` (two-digit type, before 2019), ``123가4567``
    (three-digit type, since 2019) and the regional form of older and commercial plates,
    ``서울12가3456``. The Hangul letter is one of those the plate rules assign (see
    :data:`PLATE_LETTERS`); commercial letters come with a region more often, as on the
    yellow plates of buses, taxis and lorries."""

    name = 'plates'
    # private cars; rental cars; commercial (transport) vehicles; delivery vehicles
    PRIVATE_LETTERS = ('가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주')
    RENTAL_LETTERS = '하허호'
    COMMERCIAL_LETTERS = '바사아자'
    DELIVERY_LETTERS = '배'
    REGIONS = ('서울', '부산', '대구', '인천', '광주', '대전', '울산', '세종', '경기', '강원',
               '충북', '충남', '전북', '전남', '경북', '경남', '제주')

    def sample(self, rng: random.Random) -> str:
        kind = rng.random()
        if kind < 0.15:  # yellow commercial plate: region, two digits, 바/사/아/자
            letter = rng.choice(self.COMMERCIAL_LETTERS)
            return f'{rng.choice(self.REGIONS)}{rng.randint(10, 99)}{letter}{rng.randint(1000, 9999)}'
        if kind < 0.25:  # older regional private plate
            letter = rng.choice(self.PRIVATE_LETTERS)
            return f'{rng.choice(self.REGIONS)}{rng.randint(10, 99)}{letter}{rng.randint(1000, 9999)}'
        pool = rng.choices([self.PRIVATE_LETTERS, self.RENTAL_LETTERS, self.DELIVERY_LETTERS,
                            self.COMMERCIAL_LETTERS], [0.8, 0.1, 0.04, 0.06])[0]
        letter = rng.choice(pool)
        digits = rng.randint(100, 699) if rng.random() < 0.5 else rng.randint(10, 99)
        return f'{digits}{letter}{rng.randint(1000, 9999)}'


PLATE_LETTERS = ''.join(dict.fromkeys(PlateSource.PRIVATE_LETTERS + PlateSource.RENTAL_LETTERS +
                                      PlateSource.COMMERCIAL_LETTERS + PlateSource.DELIVERY_LETTERS))


class ScoreBugSource(TextSource):
    """The text of a broadcast score bug: two teams from the vocabulary with their scores and
    often the game state (``두산 3 : 2 LG``, ``KIA 5 - 4 삼성 9회말``, ``울산 1 전반 23분 0 전북``)."""

    name = 'scorebugs'

    def __init__(self, teams: Sequence[str], keep: Callable[[str], bool]):
        # a bug has room for the short name only (두산, not 두산 베어스)
        self.teams = [t for t in dict.fromkeys(teams) if ' ' not in t and keep(t)] or ['홈', '원정']

    def sample(self, rng: random.Random) -> str:
        home, away = rng.sample(self.teams, 2) if len(self.teams) > 1 else (self.teams[0],) * 2
        a, b = rng.randint(0, 12), rng.randint(0, 12)
        state = rng.choice(['', '', f'{rng.randint(1, 9)}회{rng.choice("초말")}',
                            f'전반 {rng.randint(1, 45)}분', f'후반 {rng.randint(46, 90)}분',
                            f'{rng.randint(1, 4)}Q', f'{rng.randint(1, 5)}세트'])
        form = rng.randrange(3)
        if form == 0:
            text = f'{home} {a} : {b} {away}'
        elif form == 1:
            text = f'{home} {a} - {b} {away}'
        else:
            text = f'{home} {a} {away} {b}'
        return f'{text} {state}'.strip()


class CaptionSource(TextSource):
    """Caption, headline and signboard-like strings composed from the vocabulary by
    templates: ``두산 역전승``, ``부산 날씨 23℃``, ``[속보] 금리 인상``, ``김민준 기자``,
    ``행복약국``, ``짜장면 7,000원``, ``강남역 3번 출구`` ...

    Vocabulary entries that fail the label filter (alphabet, exclusion) are removed before
    composing, so a held-out word does not reach a caption through a template slot.
    """

    name = 'captions'
    TITLES = ['대통령', '장관', '의원', '감독', '선수', '교수', '변호사', '아나운서', '해설위원', '시장',
              '도지사', '대표', '위원장', '기자', '특파원', '리포터', '시민', '학생', '회사원', '자영업자',
              '앵커', '코치', '주장', '작가', '배우', '가수', '사장', '원장', '의사', '연구원']
    WIN_WORDS = ['승리', '역전승', '완승', '신승', '대승', '패배', '역전패', '무승부', '우승', '준우승',
                 '결승 진출', '선두 탈환', '가을야구 확정', '연승 행진', '연패 탈출', '4강 진출', '8강 진출']
    DISASTERS = ['폭우', '폭설', '한파', '폭염', '산불', '화재', '지진', '태풍', '강풍', '교통사고',
                 '정전', '침수', '호우경보', '대설경보']

    def __init__(self, vocab: Mapping[str, Sequence[str]], keep: Callable[[str], bool], max_length: int):
        self.max_length = max_length
        self.keep = keep

        def pool(*names: str, extra: Sequence[str] = ()) -> list[str]:
            words = [w for n in names for w in vocab.get(n, ())] + list(extra)
            return [w for w in dict.fromkeys(words) if keep(w)]

        self.places = pool('places')
        self.countries = pool('countries')
        self.teams = pool('teams')
        self.surnames = pool('surnames')
        self.given = pool('given_names')
        self.shops = pool('shop_types')
        self.prefixes = pool('shop_prefixes')
        self.news = pool('news', 'economy')
        self.predicates = pool('headline_predicates')
        self.weather = pool('weather')
        self.sports = pool('sports')
        self.food = pool('food')
        self.nouns = pool('general')
        # attributive forms only (좋은, 맛있는): predicate forms (좋다, 좋아요) do not go before a noun
        self.adjectives = [w for w in pool('adjectives') if not w.endswith(('다', '요'))]
        self.phrases = pool('caption_phrases')
        self.titles = [t for t in self.TITLES if keep(t)]
        self.win_words = [t for t in self.WIN_WORDS if keep(t)]
        self.disasters = [t for t in self.DISASTERS if keep(t)]
        self.fallback = pool(*vocab.keys())
        if not self.fallback:
            raise ValueError('source captions: no vocabulary entry passes the alphabet, length '
                             'and exclusion filters')
        self._scores = ScoreSource()
        self._prices = PriceSource()
        self._templates = [
            (3, self._team_result), (2, self._team_score), (3, self._weather), (4, self._headline),
            (3, self._person), (4, self._shop_sign), (3, self._menu), (2, self._road_sign),
            (2, self._phrase), (2, self._adjective_noun), (2, self._sports_play),
        ]

    def _pick(self, rng: random.Random, words: Sequence[str]) -> str:
        if not words:
            raise LookupError  # this template cannot be used with the current filters
        return rng.choice(words)

    def _name(self, rng: random.Random) -> str:
        return self._pick(rng, self.surnames) + self._pick(rng, self.given)

    def _team_result(self, rng):
        return f'{self._pick(rng, self.teams)} {self._pick(rng, self.win_words)}'

    def _team_score(self, rng):
        a, b = rng.randint(0, 12), rng.randint(0, 12)
        t1, t2 = self._pick(rng, self.teams), self._pick(rng, self.teams)
        return rng.choice([f'{t1} {a}:{b} {t2}', f'{t1} {a}-{b}', f'{t1} vs {t2}', f'{t1} 대 {t2}'])

    def _weather(self, rng):
        place = self._pick(rng, self.places)
        temp = f'{rng.randint(-15, 38)}℃'
        return rng.choice([f'{place} 날씨', f'{place} {self._pick(rng, self.weather)}', f'{place} {temp}',
                           f'{place} {self._pick(rng, self.weather)} {temp}', f'{self._pick(rng, self.weather)}'])

    def _headline(self, rng):
        news, pred = self._pick(rng, self.news), self._pick(rng, self.predicates)
        tag = rng.choice(['속보', '단독', '긴급', '특보'])
        forms = [f'[{tag}] {news} {pred}', f'<{tag}> {news} {pred}', f'{news} {pred}',
                 f'{self._pick(rng, self.places)} {news} {pred}', f'{self._pick(rng, self.countries)} {news}',
                 f'{news}·{self._pick(rng, self.news)}', tag, f'[{tag}] {self._pick(rng, self.places)} {self._pick(rng, self.disasters)}',
                 f'"{news} {pred}"', f'{news} {pred}…']
        return rng.choice(forms)

    def _person(self, rng):
        name, title = self._name(rng), self._pick(rng, self.titles)
        return rng.choice([f'{name} {title}', f'{name} / {title}', f'{name}', f'{name} 기자',
                           f'{self._pick(rng, self.places)} 주민 {name}', f'{name} 씨', f'{name}({rng.randint(20, 80)})'])

    def _shop_sign(self, rng):
        shop, prefix = self._pick(rng, self.shops), self._pick(rng, self.prefixes)
        place = self._pick(rng, self.places)
        return rng.choice([f'{prefix}{shop}', f'{prefix} {shop}', f'{place}{shop}',
                           f'{self._pick(rng, self.surnames)}{shop}', f'{shop} {place}점', f'24시 {shop}',
                           shop, f'{prefix}{shop} {place}점', f'{place} {prefix}{shop}'])

    def _menu(self, rng):
        food = self._pick(rng, self.food)
        return rng.choice([f'{food} {self._prices.sample(rng)}', food, f'원조 {food}', f'{food} 전문',
                           f'{food} 전문점', f'{self._pick(rng, self.prefixes)} {food}', f'수제 {food}'])

    def _road_sign(self, rng):
        place = self._pick(rng, self.places)
        return rng.choice([f'{place}역', f'{place} 방면', f'{place} {rng.randint(1, 350)}㎞',
                           f'{place}역 {rng.randint(1, 12)}번 출구', f'{place} 입구', f'{place} 터널',
                           f'{place} 나들목', f'{place} 교차로', f'{place}행'])

    def _phrase(self, rng):
        phrase = self._pick(rng, self.phrases)
        return rng.choice([phrase, phrase, f'{phrase}!', f'{phrase}!!', f'{phrase}?!', f'"{phrase}"'])

    def _adjective_noun(self, rng):
        return f'{self._pick(rng, self.adjectives)} {self._pick(rng, self.nouns + self.food)}'

    def _sports_play(self, rng):
        word = self._pick(rng, self.sports)
        return rng.choice([f'{self._name(rng)} {word}', f'{self._pick(rng, self.teams)} {word}',
                           f'{self._scores.sample(rng)} {word}', word])

    def sample(self, rng: random.Random) -> str:
        weights = [w for w, _ in self._templates]
        for _ in range(10):
            _, template = rng.choices(self._templates, weights)[0]
            try:
                text = normalize_label(template(rng))
            except LookupError:
                continue
            if len(text) <= self.max_length and self.keep(text):
                return text
        return rng.choice(self.fallback)


BUILTIN_SOURCES = ('words', 'captions', 'syllables', 'chars', 'digits', 'numbers', 'dates',
                   'scores', 'prices', 'plates', 'scorebugs')


# ----------------------------------------------------------------------------------------------
# the mixer


def parse_weighted_list(spec: str, what: str = 'source') -> list[tuple[str, float]]:
    """Parse ``name:weight,name:weight,...`` (a missing weight is 1).

    The weight is whatever follows the last ``:`` when it parses as a number, so file paths
    with colons work (``C:/data/news.txt:2``). Raises ValueError naming the bad item.
    """
    items = []
    seen = set()
    for raw in spec.split(','):
        item = raw.strip()
        if not item:
            continue
        name, sep, weight_text = item.rpartition(':')
        weight = 1.0
        if sep:
            try:
                weight = float(weight_text)
            except ValueError:
                name = item  # the colon belongs to the name
        else:
            name = item
        name = name.strip()
        if not name:
            raise ValueError(f'{what} list {spec!r}: item {item!r} has no name')
        if not weight >= 0 or weight == float('inf'):
            raise ValueError(f'{what} list {spec!r}: weight of {name!r} must be a non-negative number, '
                             f'got {weight_text!r}')
        if name in seen:
            raise ValueError(f'{what} list {spec!r}: {name!r} is listed twice')
        seen.add(name)
        items.append((name, weight))
    if not items or not any(w > 0 for _, w in items):
        raise ValueError(f'{what} list {spec!r}: give at least one {what} with a positive weight')
    return items


def _stable_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003) ^ zlib.crc32(name.encode('utf-8'))


class TextMixer:
    """A deterministic stream of labels drawn from weighted sources.

    ``sources`` maps a built-in source name (:data:`BUILTIN_SOURCES`) or the path of a UTF-8
    text file to its weight; a ``name:weight,...`` string is accepted too. Each label comes
    from a source picked with probability proportional to its weight; a candidate that fails
    the filter (length, alphabet, exclusion) is counted and replaced by another from the same
    source, so the weights hold for what is produced. The same arguments always give the
    same stream.

    ``alphabet`` is an alphabet string or :class:`utils.Alphabet` (None: no alphabet check);
    unless ``sensitive``, a label passes when its lower-cased form is in the alphabet
    (upstream's rule), and keeps its case. ``exclude`` holds labels that must never be
    produced, matched by ``exclude_mode`` (see :class:`ExcludeRule`). ``word_list`` replaces
    the built-in list behind the ``words`` source. ``text_split`` applies to file sources.
    """

    def __init__(self, sources: Mapping[str, float] | Sequence[tuple[str, float]] | str = DEFAULT_SOURCES,
                 seed: int = 0, alphabet: str | Alphabet | None = None,
                 max_length: int = DEFAULT_MAX_LENGTH, exclude: Iterable[str] = (),
                 exclude_mode: str = 'token', text_split: str = 'lines',
                 word_list: Sequence[str] | None = None, sensitive: bool = False,
                 syllable_max_length: int = DEFAULT_SYLLABLE_MAX_LENGTH):
        if isinstance(sources, str):
            sources = parse_weighted_list(sources)
        items = list(sources.items()) if isinstance(sources, Mapping) else list(sources)
        if isinstance(alphabet, str):
            alphabet = Alphabet(alphabet, sensitive)
        self.alphabet = alphabet
        self.seed = seed
        self.max_length = max_length
        self.exclude = ExcludeRule(exclude, exclude_mode)
        self.filter = LabelFilter(alphabet, max_length, self.exclude)
        self._vocab: dict[str, list[str]] | None = None
        self.sources: list[TextSource] = []
        self.weights: list[float] = []
        for name, weight in items:
            if weight <= 0:
                continue
            self.sources.append(self._make_source(name, text_split, word_list,
                                                  min(syllable_max_length, max_length)))
            self.weights.append(float(weight))
        if not self.sources:
            raise ValueError('TextMixer: give at least one source with a positive weight')
        self._rng = random.Random(_stable_seed(seed, '<mixer>'))
        self._source_rngs = [random.Random(_stable_seed(seed, self._seed_name(i, s)))
                             for i, s in enumerate(self.sources)]
        self.produced: collections.Counter[str] = collections.Counter()
        self.rejected: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)

    @staticmethod
    def _seed_name(position: int, source: TextSource) -> str:
        # a file source is seeded by its file name and position, not its folder, so the same
        # files give the same labels wherever they are
        if isinstance(source, FileTextSource):
            return f'file:{position}:{source.path.name}'
        return source.name

    @property
    def vocab(self) -> dict[str, list[str]]:
        if self._vocab is None:
            self._vocab = load_vocab()
        return self._vocab

    def _alphabet_chars(self, predicate: Callable[[str], bool]) -> list[str]:
        if self.alphabet is None:
            raise ValueError('the syllables and chars sources need an alphabet')
        return [ch for ch in self.alphabet.characters if predicate(ch)]

    def _make_source(self, name: str, text_split: str, word_list: Sequence[str] | None,
                     deck_length: int) -> TextSource:
        keep = self.filter.keeps
        if name == 'words':
            return WordListSource(word_list if word_list is not None else builtin_words(), 'words', keep)
        if name == 'captions':
            return CaptionSource(self.vocab, keep, self.max_length)
        if name == 'syllables':
            chars = self._alphabet_chars(is_hangul_syllable) if self.alphabet else None
            if chars is None:
                from korean.hangul import ksx1001_syllables
                chars = list(ksx1001_syllables())
            return DeckSource(chars, 'syllables', deck_length)
        if name == 'chars':
            return DeckSource(self._alphabet_chars(lambda c: not c.isspace()), 'chars', deck_length)
        if name == 'digits':
            return DigitSource(min(10, self.max_length))
        if name == 'scorebugs':
            return ScoreBugSource(self.vocab.get('teams', ()), keep)
        simple = {'numbers': NumberSource, 'dates': DateSource, 'scores': ScoreSource,
                  'prices': PriceSource, 'plates': PlateSource}
        if name in simple:
            return simple[name]()
        if os.path.isfile(name):
            return FileTextSource(name, self.filter, text_split)
        raise ValueError(f'unknown text source {name!r}: not a built-in source '
                         f'({", ".join(BUILTIN_SOURCES)}) and not an existing file')

    def next_labeled(self) -> tuple[str, str]:
        """The next ``(label, source name)``."""
        i = self._rng.choices(range(len(self.sources)), self.weights)[0]
        source, rng = self.sources[i], self._source_rngs[i]
        rejects: collections.Counter[str] = collections.Counter()
        for _ in range(MAX_CONSECUTIVE_REJECTS):
            label = normalize_label(source.sample(rng))
            why = self.filter.reason(label)
            if why is None:
                self.produced[source.name] += 1
                return label, source.name
            rejects[why] += 1
            self.rejected[source.name][why] += 1
        reason, _ = rejects.most_common(1)[0]
        raise RuntimeError(f'text source {source.name!r} produced {MAX_CONSECUTIVE_REJECTS} unusable '
                           f'labels in a row (mostly: {reason}); check --character, --max_length and '
                           'the exclude list, or drop that source')

    def __next__(self) -> str:
        return self.next_labeled()[0]

    def __iter__(self) -> Iterator[str]:
        return self

    def take(self, n: int) -> list[str]:
        """The next ``n`` labels."""
        return [next(self) for _ in range(n)]

    def stats(self) -> dict[str, object]:
        """What was produced and rejected per source, and what each text file held."""
        return {
            'produced': dict(self.produced),
            'rejected': {name: dict(c) for name, c in self.rejected.items() if c},
            'files': {s.name: s.stats for s in self.sources if isinstance(s, FileTextSource)},
        }


# ----------------------------------------------------------------------------------------------
# command line


def _cmd_sample(args: argparse.Namespace) -> None:
    from utils import load_character
    alphabet = load_character(args.character) if args.character else None
    exclude = read_exclude_files(args.exclude_file or [])
    mixer = TextMixer(args.source, seed=args.seed, alphabet=alphabet, max_length=args.max_length,
                      exclude=exclude, exclude_mode=args.exclude_mode, text_split=args.text_split)
    for _ in range(args.num):
        label, source = mixer.next_labeled()
        print(f'{source}\t{label}' if args.show_source else label)


def _cmd_split(args: argparse.Namespace) -> None:
    words = read_word_list(args.input)
    train, test = split_words(words, args.test_fraction, args.seed)
    write_lines_atomically(args.train_out, train)
    write_lines_atomically(args.test_out, test)
    print(f'{len(words)} words from {args.input}: {len(train)} -> {args.train_out}, '
          f'{len(test)} -> {args.test_out} (seed {args.seed})')


def _cmd_build_word_list(args: argparse.Namespace) -> None:
    words = build_word_list(load_vocab(args.vocab_dir))
    write_lines_atomically(args.output, words)
    print(f'{len(words)} words written to {args.output}')


def _cmd_lexicon_words(args: argparse.Namespace) -> None:
    from utils import load_character
    alphabet = load_character(args.character) if args.character else None
    exclude = ExcludeRule(read_exclude_files(args.exclude_file or []), 'label')
    label_filter = LabelFilter(Alphabet(alphabet) if alphabet else None, args.max_length, exclude)
    entries = wordfreq_korean_words(label_filter.keeps)
    labels = compose_lexicon_words(entries, args.num, args.seed, args.max_length, exclude.matches)
    write_lines_atomically(args.output, labels)
    print(f'{len(labels)} labels from {len(entries)} lexicon entries written to {args.output} (seed {args.seed})')


def _cmd_dictionary(args: argparse.Namespace) -> None:
    words = wordfreq_korean_words()
    known = set(words)
    for path in args.word_file or []:
        added = [w for w in read_word_list(path) if w not in known]
        known.update(added)
        words += added
    write_lines_atomically(args.output, words)
    print(f'{len(words)} words written to {args.output}')


def main(argv: Sequence[str] | None = None) -> None:
    default_alphabet = Path(__file__).resolve().parent / 'alphabets' / 'ksx1001_with_space.txt'
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', required=True)

    p = sub.add_parser('sample', help='print labels drawn from a mix of sources')
    p.add_argument('--source', default=DEFAULT_SOURCES,
                   help=f'name:weight,... of built-in sources ({", ".join(BUILTIN_SOURCES)}) or text files')
    p.add_argument('-n', '--num', type=int, default=20, help='how many labels to print')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--character', default=str(default_alphabet),
                   help='alphabet string or file; labels outside it are skipped ("" for none)')
    p.add_argument('--max_length', type=int, default=DEFAULT_MAX_LENGTH)
    p.add_argument('--exclude_file', action='append', help='labels never to produce (repeatable)')
    p.add_argument('--exclude_mode', choices=EXCLUDE_MODES, default='token')
    p.add_argument('--text_split', choices=TEXT_SPLITS, default='lines')
    p.add_argument('--show_source', action='store_true', help='print the source before each label')
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser('split', help='split a word list into disjoint train/test lists')
    p.add_argument('--input', default=str(WORDS_FILE), help='word list, one per line')
    p.add_argument('--test_fraction', type=float, default=0.1)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--train_out', required=True)
    p.add_argument('--test_out', required=True)
    p.set_defaults(func=_cmd_split)

    p = sub.add_parser('build_word_list', help='rewrite words.txt from the vocabulary files')
    p.add_argument('--vocab_dir', default=str(VOCAB_DIR))
    p.add_argument('--output', default=str(WORDS_FILE))
    p.set_defaults(func=_cmd_build_word_list)

    p = sub.add_parser('lexicon_words',
                       help='write word-like labels from a large Korean lexicon (wordfreq), for --text_file')
    p.add_argument('--output', required=True, help='text file to write, one label per line')
    p.add_argument('-n', '--num', type=int, default=400_000, help='how many distinct labels')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--character', default=str(default_alphabet),
                   help='alphabet string or file; entries outside it are dropped ("" for none)')
    p.add_argument('--max_length', type=int, default=LEXICON_MAX_LENGTH, help='longest label, in syllables')
    p.add_argument('--exclude_file', action='append',
                   help='held-out words: no entry equal to one is used and no label equal to one is written (repeatable)')
    p.set_defaults(func=_cmd_lexicon_words)

    p = sub.add_parser('dictionary',
                       help="write wordfreq's Korean words, most frequent first: a word list for "
                            "test.py / demo.py --lexicon")
    p.add_argument('--output', required=True, help='text file to write, one word per line')
    p.add_argument('--word_file', action='append',
                   help='more words to add after them (a list of names, say; repeatable)')
    p.set_defaults(func=_cmd_dictionary)

    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ValueError, OSError, RuntimeError) as e:
        parser.exit(2, f'error: {e}\n')


if __name__ == '__main__':
    main()
