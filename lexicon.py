"""Reading with a word list: a CTC model's near misses (백 read 벡, 경상북도 read 경상복도) become
the dictionary word the image most likely shows.

A greedy CTC reading keeps, at each character it emits, the other characters the model found
plausible there. For every space-separated word of the reading that is not in the lexicon, the
candidates are the lexicon's words spelt from those alternatives (one character for another, a
beam of the likeliest) and the lexicon's words one jamo from the reading (학매 -> 할매). Each
is scored by the CTC probability of the whole line with it in place, computed exactly over
every alignment, and a word outside the lexicon pays a penalty:

    score(line) = log P_ctc(line | image) - penalty(word)

penalty is 0 for a lexicon entry, ``weight / 2`` for two entries run together (a compound such
as 김포 + 공항, or a word and its particle, 학교 + 에서; the first must have two or more
syllables) and ``weight`` for anything else. The reading with the highest score wins, so a
word the model reads clearly stays as read even when the lexicon lacks it, and a doubtful one
becomes the lexicon word the image supports. Only words of Hangul syllables are rescored;
numbers, Latin and mixed words (plates, scores) are left as read.

Used by inference.decode_predictions when test.py / demo.py get ``--lexicon`` (or
``Recognizer.from_checkpoint(..., lexicon=...)``); CTC models only.
"""
from __future__ import annotations

import functools
import math
import os
from typing import Iterable, Sequence

import torch
import torch.nn.functional as F

from utils import FINALS, FIRST_SYLLABLE, INITIALS, LAST_SYLLABLE, MEDIALS, InputError, decode_utf8, nfc

DEFAULT_WEIGHT = 4.0
ALTERNATIVES = 4       # characters tried at each emitted position (the read one included)
BEAM = 64              # spellings of a word kept while the alternatives are combined
ENTRY, COMPOUND, UNKNOWN = 0, 1, 2
COMPOUND_SHARE = 0.5   # a compound pays this share of the weight


def is_hangul_word(token: str) -> bool:
    # utils' constants rather than korean.hangul's: demo.py imports this module, and korean/
    # stays off its start-up path (tests/test_startup.py)
    return bool(token) and all(FIRST_SYLLABLE <= ord(ch) <= LAST_SYLLABLE for ch in token)


def read_lexicon_file(path: str | os.PathLike) -> list[str]:
    """The words of a UTF-8 word list: one per line, NFC-normalised; blank lines and text after
    a tab (a frequency column) are ignored. A line holding a space is an error naming the line,
    because the lexicon scores space-separated words one at a time."""
    with open(path, 'rb') as f:
        raw = f.read()
    text = decode_utf8(raw, path, 'a UTF-8 word list, one word per line')
    words = []
    for number, line in enumerate(text.splitlines(), 1):
        word = nfc(line.split('\t', 1)[0].strip())
        if not word:
            continue
        if ' ' in word:
            raise InputError(f'{path}, line {number}: {word!r} holds a space; expected one word per line '
                             '(a frequency may follow a tab)')
        words.append(word)
    if not words:
        raise InputError(f'{path}: no word in it; expected a UTF-8 word list, one word per line')
    return words


class Lexicon:
    """A set of words, and how a token relates to it (:meth:`kind`)."""

    def __init__(self, words: Iterable[str]):
        self.words = frozenset(nfc(w) for w in words if w)

    @classmethod
    def from_files(cls, paths: Sequence[str | os.PathLike]) -> 'Lexicon':
        words: list[str] = []
        for path in paths:
            words += read_lexicon_file(path)
        return cls(words)

    def __len__(self) -> int:
        return len(self.words)

    def near(self, token: str) -> set[str]:
        """The entries one jamo from ``token``: one syllable's initial, medial or final replaced,
        or its final added or dropped (학매 -> 할매, 베뉴 -> 메뉴, 배반 -> 백반). Spelt from the
        token, so a lexicon of any size needs no index."""
        found = set()
        for k, ch in enumerate(token):
            code = ord(ch) - FIRST_SYLLABLE
            initial, medial, final = code // (MEDIALS * FINALS), code // FINALS % MEDIALS, code % FINALS
            for other in _one_jamo_apart(initial, medial, final):
                word = token[:k] + chr(FIRST_SYLLABLE + other) + token[k + 1:]
                if word in self.words:
                    found.add(word)
        return found

    def kind(self, token: str) -> int:
        """ENTRY, COMPOUND (two entries run together, the first of two or more characters) or
        UNKNOWN."""
        if token in self.words:
            return ENTRY
        for cut in range(2, len(token)):
            if token[:cut] in self.words and token[cut:] in self.words:
                return COMPOUND
        return UNKNOWN


def add_lexicon_options(parser) -> None:
    """--lexicon and --lexicon_weight, the same reading flags in test.py and demo.py."""
    parser.add_argument('--lexicon', action='append', metavar='FILE',
                        help='a UTF-8 word list, one word per line (repeatable): words of a CTC reading '
                             'that are not in it may become the listed word the image most likely shows '
                             '(korean/text_sources.py dictionary writes a Korean one)')
    parser.add_argument('--lexicon_weight', type=float,
                        help='with --lexicon: how many nats of CTC log-probability a word outside the '
                             f'lexicon must win by to stay as read (default {DEFAULT_WEIGHT:g}; 0 never '
                             'changes a reading)')


def lexicon_for(opt) -> Lexicon | None:
    """The lexicon ``opt.lexicon`` names (None without the flag: train.py, DTRB code), read once
    per process. Raises InputError for --lexicon_weight without --lexicon, a negative weight or
    a model that is not CTC."""
    paths = getattr(opt, 'lexicon', None)
    weight = getattr(opt, 'lexicon_weight', None)
    if not paths:
        if weight is not None:
            raise InputError(f'--lexicon_weight {weight:g} is given without --lexicon; add --lexicon FILE')
        return None
    if weight is not None and weight < 0:
        raise InputError(f'--lexicon_weight {weight:g}: expected 0 or a positive number of nats')
    if 'CTC' not in opt.Prediction:
        raise InputError(f'--lexicon rescores CTC readings; {opt.saved_model} is an {opt.Prediction} model')
    keys = []
    for path in paths:
        if not os.path.isfile(path):
            raise InputError(f'--lexicon {path}: no such file; expected a UTF-8 word list, one word per line')
        stat = os.stat(path)
        keys.append((os.fspath(path), stat.st_mtime_ns, stat.st_size))
    return _load_lexicon(tuple(keys))


def lexicon_weight(opt) -> float:
    weight = getattr(opt, 'lexicon_weight', None)
    return DEFAULT_WEIGHT if weight is None else float(weight)


@functools.lru_cache(maxsize=4)
def _load_lexicon(keys: tuple[tuple[str, int, int], ...]) -> Lexicon:
    """Read once per process and per file version (test.py decodes batch by batch)."""
    return Lexicon.from_files([path for path, _, _ in keys])


def _one_jamo_apart(initial: int, medial: int, final: int) -> Iterable[int]:
    """Syllable codes (offsets from 가) that differ from this one in exactly one jamo."""
    for other in range(INITIALS):
        if other != initial:
            yield (other * MEDIALS + medial) * FINALS + final
    for other in range(MEDIALS):
        if other != medial:
            yield (initial * MEDIALS + other) * FINALS + final
    for other in range(FINALS):  # 0: no final, so a final is added or dropped too
        if other != final:
            yield (initial * MEDIALS + medial) * FINALS + other


def _emissions(log_probs: torch.Tensor, blank: int = 0) -> list[list[tuple[int, float]]]:
    """For each character of the greedy reading, the ALTERNATIVES classes the model gave it,
    likeliest first: (class, log of its best probability over the frames that emitted it)."""
    best = log_probs.argmax(dim=1).tolist()
    runs: list[tuple[int, int]] = []
    prev = blank
    for t, index in enumerate(best):
        if index != blank and index != prev:
            runs.append((t, t + 1))
        elif index != blank and index == prev:
            runs[-1] = (runs[-1][0], t + 1)
        prev = index
    emissions = []
    for start, end in runs:
        peak = log_probs[start:end].max(dim=0).values
        peak[blank] = float('-inf')
        values, indices = peak.topk(ALTERNATIVES)
        emissions.append([(int(i), float(v)) for i, v in zip(indices, values)])
    return emissions


def _spellings(emissions: Sequence[list[tuple[int, float]]], character: Sequence[str]) -> list[str]:
    """Words spelt by one alternative per emitted character, the BEAM likeliest."""
    beam: list[tuple[float, str]] = [(0.0, '')]
    for emission in emissions:
        grown = [(score + value, text + character[index])
                 for score, text in beam for index, value in emission]
        grown.sort(key=lambda item: -item[0])
        beam = grown[:BEAM]
    return [text for _, text in beam]


def line_log_likelihoods(log_probs: torch.Tensor, lines: Sequence[str], index: dict[str, int]) -> list[float]:
    """log P_ctc(line | frames) of each line, over every alignment."""
    used = sorted({index[ch] for line in lines for ch in line})
    columns = [0] + used  # blank first; the log-softmax was taken over every class already
    local = {c: k for k, c in enumerate(columns)}
    frames = log_probs[:, columns]
    targets = [torch.tensor([local[index[ch]] for ch in line], dtype=torch.long) for line in lines]
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.cat(targets) if int(lengths.sum()) else torch.zeros(0, dtype=torch.long)
    batch = frames.unsqueeze(1).expand(-1, len(lines), -1).contiguous()
    steps = torch.full((len(lines),), frames.size(0), dtype=torch.long)
    losses = F.ctc_loss(batch, flat, steps, lengths, blank=0, reduction='none', zero_infinity=False)
    return [-float(x) for x in losses]


def rescore_reading(log_probs: torch.Tensor, text: str, character: Sequence[str], index: dict[str, int],
                    lexicon: Lexicon, weight: float = DEFAULT_WEIGHT) -> tuple[str, float]:
    """The best reading of one line given its frames' log-probabilities [T, num_class] (blank
    at 0) and its greedy reading ``text``; also the log-probability ratio of that reading to
    the greedy one (0 when nothing changed). Words are rescored left to right, each with the
    others as already chosen."""
    emissions = _emissions(log_probs)
    if len(emissions) != len(text):  # the greedy text is not this path's (never for CTCLabelConverter)
        raise RuntimeError(f'{len(emissions)} emitted characters for a reading of {len(text)}')
    penalty = {ENTRY: 0.0, COMPOUND: weight * COMPOUND_SHARE, UNKNOWN: weight}
    chosen = text.split(' ')
    start = 0
    greedy_score = None
    best_score = None
    for k, word in enumerate(chosen):
        span = emissions[start:start + len(word)]
        start += len(word) + 1
        if not is_hangul_word(word) or (kind := lexicon.kind(word)) == ENTRY:
            continue
        kinds = {word: kind}  # the greedy word first, then each candidate once
        for s in _spellings(span, character):
            if s not in kinds and is_hangul_word(s) and (kind := lexicon.kind(s)) != UNKNOWN:
                kinds[s] = kind
        # a lexicon word with a syllable the model cannot emit is no reading of it
        for w in sorted(lexicon.near(word)):
            if w not in kinds and all(ch in index for ch in w):
                kinds[w] = ENTRY
        if len(kinds) == 1:
            continue
        candidates = list(kinds)
        lines = [' '.join(chosen[:k] + [c] + chosen[k + 1:]) for c in candidates]
        likelihoods = line_log_likelihoods(log_probs, lines, index)
        scores = [ll - penalty[kinds[c]] for ll, c in zip(likelihoods, candidates)]
        if greedy_score is None:
            greedy_score = likelihoods[0]
        best = max(range(len(candidates)), key=scores.__getitem__)
        chosen[k] = candidates[best]
        best_score = likelihoods[best]
    if best_score is None or greedy_score is None:
        return text, 0.0
    return ' '.join(chosen), best_score - greedy_score


def read_with_lexicon(log_probs: torch.Tensor, text: str, confidence: float, converter, lexicon: Lexicon,
                      weight: float) -> tuple[str, float]:
    """A greedy CTC prediction (text, confidence) rescored with the lexicon. A changed reading's
    confidence is the greedy one times the CTC probability ratio of the two readings (at most 1),
    so it stays comparable with the confidences of readings left as they were."""
    new_text, log_ratio = rescore_reading(log_probs, text, converter.character, converter.dict, lexicon, weight)
    if new_text == text:
        return text, confidence
    return new_text, min(1.0, confidence * math.exp(log_ratio))
