"""Reading with a pattern: when every image holds text of one known form (licence plates, serial
numbers, dates), a CTC model's reading is forced into that form, so 구6호구191 becomes 76호7191
and 30우 574구 becomes 30우5747.

The pattern is a small regular expression, matched against the whole reading:

    literal characters     가 1 -            \\ escapes one: \\( \\[ \\. \\\\
    [...]  a class          [0-9] [가나다] [^ ]  (ranges; ^ first negates)
    .      any character of the model's alphabet
    \\d     a digit 0-9      \\s  a space
    ( | )  groups and alternatives
    ? * + {m} {m,} {m,n}   repetition

and ``plate`` names the Korean licence plate form (:data:`NAMED_PATTERNS`).

A greedy reading that matches stays as read. Otherwise the reading becomes the likeliest CTC path
(Viterbi over the frames, the best alignment as the greedy reading is) whose text matches: a
dynamic programme over (pattern state, character being emitted), where each frame may emit one of
the :data:`CANDIDATES` characters the model found likeliest there, repeat the one it is on, or be
blank; the :data:`BEAM` likeliest states are kept each frame. The reading's confidence is that
path's probability, which for the greedy path is exactly DTRB's confidence (the product of the
frame maxima), so both stay comparable. When no path of that kind matches, the greedy reading
is kept.

Used by inference.decode_predictions when test.py / demo.py get ``--pattern`` (or
``Recognizer.from_checkpoint(..., pattern=...)``); CTC models only.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch

from utils import InputError, nfc

CANDIDATES = 8   # characters a frame may start emitting: the model's likeliest there
BEAM = 128       # (pattern state, character) pairs kept after each frame
MAX_REPEAT = 100  # the largest m or n in {m,n}

PLATE_REGIONS = ('서울', '부산', '대구', '인천', '광주', '대전', '울산', '세종', '경기', '강원',
                 '충북', '충남', '전북', '전남', '경북', '경남', '제주')
# the Hangul letters the plate rules assign: private cars, rental cars (하허호), commercial
# vehicles (바사아자) and delivery vehicles (배)
PLATE_LETTERS = '가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주하허호바사아자배'
NAMED_PATTERNS = {
    # 12가3456 (before 2019), 123가4567 (since 2019), 서울12가3456 (regional and commercial)
    'plate': f'({"|".join(PLATE_REGIONS)})?[0-9]{{2,3}}[{PLATE_LETTERS}][0-9]{{4}}',
}


# --- parsing: pattern text -> syntax tree -------------------------------------------------------

@dataclass(frozen=True)
class CharSet:
    chars: frozenset[str]
    negated: bool = False  # every alphabet character except ``chars`` ('.' excepts none)


@dataclass(frozen=True)
class Concat:
    parts: tuple


@dataclass(frozen=True)
class Alternation:
    options: tuple


@dataclass(frozen=True)
class Repeat:
    node: object
    low: int
    high: int | None  # None: no upper bound


DIGITS = frozenset('0123456789')
ESCAPED_CLASSES = {'d': CharSet(DIGITS), 's': CharSet(frozenset(' '))}


class _Parser:
    def __init__(self, text: str, shown: str):
        self.text, self.shown, self.pos = text, shown, 0

    def fail(self, expected: str):
        found = repr(self.text[self.pos]) if self.pos < len(self.text) else 'the end'
        raise InputError(f'--pattern {self.shown!r}: at character {self.pos + 1}, {found}: expected {expected}')

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def parse(self):
        node = self.alternation()
        if self.pos != len(self.text):
            self.fail('an opening ( for this ) or more pattern' if self.peek() == ')' else 'more pattern')
        return node

    def alternation(self):
        options = [self.concatenation()]
        while self.peek() == '|':
            self.pos += 1
            options.append(self.concatenation())
        return options[0] if len(options) == 1 else Alternation(tuple(options))

    def concatenation(self):
        parts = []
        while self.peek() is not None and self.peek() not in '|)':
            parts.append(self.repetition())
        return parts[0] if len(parts) == 1 else Concat(tuple(parts))

    def repetition(self):
        if self.peek() in ('?', '*', '+', '{'):
            self.fail('a character, class or group before the repetition')
        node = self.atom()
        while self.peek() in ('?', '*', '+', '{'):
            symbol = self.peek()
            self.pos += 1
            if symbol == '?':
                node = Repeat(node, 0, 1)
            elif symbol == '*':
                node = Repeat(node, 0, None)
            elif symbol == '+':
                node = Repeat(node, 1, None)
            else:
                node = Repeat(node, *self.bounds(self.pos - 1))
        return node

    def bounds(self, opening: int) -> tuple[int, int | None]:
        low = self.number()
        high: int | None = low
        if self.peek() == ',':
            self.pos += 1
            high = self.number() if self.peek() != '}' else None
        if self.peek() != '}':
            self.fail('} closing the repetition {m,n}')
        self.pos += 1
        if high is not None and high < low:
            self.pos = opening
            self.fail(f'{{m,n}} with m <= n, not {low} > {high}')
        return low, high

    def number(self) -> int:
        start = self.pos
        while self.peek() is not None and self.peek().isdigit():
            self.pos += 1
        if start == self.pos:
            self.fail('a number in {m,n}')
        value = int(self.text[start:self.pos])
        if value > MAX_REPEAT:
            self.pos = start
            self.fail(f'a repetition count of at most {MAX_REPEAT}')
        return value

    def atom(self):
        ch = self.peek()
        if ch == '(':
            self.pos += 1
            node = self.alternation()
            if self.peek() != ')':
                self.fail(') closing the group')
            self.pos += 1
            return node
        if ch == '[':
            return self.char_class()
        if ch == '.':
            self.pos += 1
            return CharSet(frozenset(), negated=True)
        if ch == '\\':
            return self.escape()
        self.pos += 1
        return CharSet(frozenset(ch))

    def escape(self) -> CharSet:
        self.pos += 1
        ch = self.peek()
        if ch is None:
            self.fail('a character after \\')
        self.pos += 1
        return ESCAPED_CLASSES.get(ch, CharSet(frozenset(ch)))

    def char_class(self) -> CharSet:
        self.pos += 1
        negated = self.peek() == '^'
        if negated:
            self.pos += 1
        chars: set[str] = set()
        first = True
        while self.peek() != ']' or first:
            if self.peek() is None:
                self.fail('] closing the class')
            first = False
            if self.peek() == '\\':
                escaped = self.escape()
                chars |= escaped.chars
                continue
            low = self.peek()
            self.pos += 1
            if self.peek() == '-' and self.pos + 1 < len(self.text) and self.text[self.pos + 1] != ']':
                high = self.text[self.pos + 1]
                if ord(high) < ord(low):
                    self.fail(f'a range low-high, not {low}-{high}')
                chars |= {chr(c) for c in range(ord(low), ord(high) + 1)}
                self.pos += 2
            else:
                chars.add(low)
        self.pos += 1
        return CharSet(frozenset(chars), negated=negated)


# --- compiling: syntax tree -> automaton over the model's classes -------------------------------

@dataclass
class Automaton:
    """A nondeterministic automaton whose moves read model classes. ``moves[q]`` maps a class to
    the states reached from q (epsilon closures folded in); ``accepting[q]`` says whether the
    text may end in q."""
    start: int
    moves: list[dict[int, tuple[int, ...]]] = field(default_factory=list)
    accepting: list[bool] = field(default_factory=list)

    def matches(self, classes: Sequence[int]) -> bool:
        states = {self.start}
        for c in classes:
            states = {r for q in states for r in self.moves[q].get(c, ())}
            if not states:
                return False
        return any(self.accepting[q] for q in states)


class _Builder:
    def __init__(self, alphabet: dict[str, int], sensitive: bool):
        self.alphabet, self.sensitive = alphabet, sensitive
        self.missing: set[str] = set()  # characters the pattern names that the alphabet lacks
        self.epsilon: list[list[int]] = []
        self.edges: list[list[tuple[frozenset[int], int]]] = []

    def state(self) -> int:
        self.epsilon.append([])
        self.edges.append([])
        return len(self.epsilon) - 1

    def classes(self, node: CharSet) -> frozenset[int]:
        if node.negated:
            excluded = {self.fold(ch) for ch in node.chars}
            return frozenset(i for ch, i in self.alphabet.items() if ch not in excluded)
        self.missing.update(c for c in map(self.fold, node.chars) if c not in self.alphabet)
        return frozenset(self.alphabet[c] for c in map(self.fold, node.chars) if c in self.alphabet)

    def fold(self, ch: str) -> str:
        return ch if self.sensitive else ch.lower()

    def build(self, node) -> tuple[int, int]:
        if isinstance(node, CharSet):
            start, end = self.state(), self.state()
            self.edges[start].append((self.classes(node), end))
            return start, end
        if isinstance(node, Concat):
            if not node.parts:  # an empty group or alternative
                state = self.state()
                return state, state
            pieces = [self.build(part) for part in node.parts]
            for (_, end), (start, _) in zip(pieces, pieces[1:]):
                self.epsilon[end].append(start)
            return pieces[0][0], pieces[-1][1]
        if isinstance(node, Alternation):
            start, end = self.state(), self.state()
            for option in node.options:
                s, e = self.build(option)
                self.epsilon[start].append(s)
                self.epsilon[e].append(end)
            return start, end
        if isinstance(node, Repeat):
            start = end = self.state()
            for _ in range(node.low):
                s, e = self.build(node.node)
                self.epsilon[end].append(s)
                end = e
            if node.high is None:  # a loop: any further number of copies
                s, e = self.build(node.node)
                self.epsilon[end].append(s)
                self.epsilon[e].append(end)
            else:
                final = self.state()
                self.epsilon[end].append(final)
                for _ in range(node.high - node.low):
                    s, e = self.build(node.node)
                    self.epsilon[end].append(s)
                    self.epsilon[e].append(final)
                    end = e
                end = final
            return start, end
        raise TypeError(node)

    def closure(self, state: int) -> set[int]:
        seen, todo = {state}, [state]
        while todo:
            for nxt in self.epsilon[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen


def compile_pattern(text: str, alphabet: dict[str, int], sensitive: bool = True) -> Automaton:
    """The automaton of ``text`` (a pattern or a name in NAMED_PATTERNS) over the model's classes
    (``alphabet``: character -> class index, the converter's dict). InputError for a pattern that
    does not parse, or that no text of the alphabet's characters matches."""
    shown = text
    text = nfc(NAMED_PATTERNS.get(text, text))
    if not text:
        raise InputError('--pattern is empty; expected a regular expression or a name: ' + ', '.join(NAMED_PATTERNS))
    builder = _Builder(alphabet, sensitive)
    start, end = builder.build(_Parser(text, shown).parse())
    closures = [builder.closure(q) for q in range(len(builder.epsilon))]
    moves: list[dict[int, tuple[int, ...]]] = []
    for q in range(len(builder.epsilon)):
        reached: dict[int, set[int]] = {}
        for p in closures[q]:
            for classes, target in builder.edges[p]:
                for c in classes:
                    reached.setdefault(c, set()).update(closures[target])
        moves.append({c: tuple(sorted(states)) for c, states in reached.items()})
    automaton = Automaton(start, moves, [end in closures[q] for q in range(len(closures))])
    if not _can_accept(automaton):
        lacking = ''.join(sorted(builder.missing))[:20]
        why = (f'the model\'s alphabet lacks {lacking!r}' if lacking else 'it matches only the empty reading')
        raise InputError(f'--pattern {shown!r}: no reading of this model can match it; {why}')
    return automaton


def _can_accept(automaton: Automaton) -> bool:
    """Whether some non-empty text of alphabet classes reaches an accepting state."""
    seen: set[int] = set()
    todo = [r for targets in automaton.moves[automaton.start].values() for r in targets]
    while todo:
        q = todo.pop()
        if q in seen:
            continue
        seen.add(q)
        if automaton.accepting[q]:
            return True
        todo += [r for targets in automaton.moves[q].values() for r in targets]
    return False


# --- decoding ------------------------------------------------------------------------------------

BLANK = 0


def constrained_path(log_probs: torch.Tensor, automaton: Automaton) -> tuple[list[int], float] | None:
    """The likeliest CTC path over frames ``log_probs`` [T, num_class] (blank at 0) whose collapsed
    text the automaton accepts: (its classes, the path's log-probability), or None."""
    frames = log_probs.float().cpu()
    values = frames.tolist()
    top = frames[:, 1:].topk(min(CANDIDATES, frames.size(1) - 1), dim=1).indices.add(1).tolist()
    # state: (automaton state, class being emitted or BLANK after a blank); score, back-pointer
    beam: dict[tuple[int, int], float] = {(automaton.start, BLANK): 0.0}
    history: list[dict[tuple[int, int], tuple[tuple[int, int], int]]] = []
    for row, likely in zip(values, top):
        scores: dict[tuple[int, int], float] = {}
        back: dict[tuple[int, int], tuple[tuple[int, int], int]] = {}

        def relax(key, score, origin, emitted):
            if score > scores.get(key, -math.inf):
                scores[key] = score
                back[key] = (origin, emitted)

        for key, score in beam.items():
            state, current = key
            relax((state, BLANK), score + row[BLANK], key, BLANK)
            if current != BLANK:
                relax(key, score + row[current], key, BLANK)
            moves = automaton.moves[state]
            for c in likely:
                if c == current or c not in moves:
                    continue
                for target in moves[c]:
                    relax((target, c), score + row[c], key, c)
        if len(scores) > BEAM:
            kept = sorted(scores, key=scores.__getitem__, reverse=True)[:BEAM]
            scores = {k: scores[k] for k in kept}
        beam = scores
        history.append(back)
    finals = [k for k in beam if automaton.accepting[k[0]]]
    if not finals:
        return None
    key = max(finals, key=beam.__getitem__)
    best = beam[key]
    emitted: list[int] = []
    for back in reversed(history):
        key, c = back[key]
        if c != BLANK:
            emitted.append(c)
    emitted.reverse()
    return emitted, best


def read_with_pattern(log_probs: torch.Tensor, text: str, confidence: float, converter,
                      automaton: Automaton) -> tuple[str, float]:
    """A greedy CTC prediction (text, confidence) forced into the pattern's form: kept when it
    matches or when no path of the model does, else the likeliest matching path with its
    probability as confidence."""
    index = converter.dict
    if automaton.matches([index[ch] for ch in text]):  # a greedy reading holds alphabet characters only
        return text, confidence
    found = constrained_path(log_probs, automaton)
    if found is None:
        return text, confidence
    classes, log_probability = found
    return ''.join(converter.character[c] for c in classes), min(1.0, math.exp(log_probability))


def add_pattern_options(parser) -> None:
    """--pattern, the same reading flag in test.py and demo.py."""
    names = ', '.join(NAMED_PATTERNS)
    parser.add_argument('--pattern',
                        help='the form every reading takes, a regular expression over the whole text '
                             '(classes [..], ., \\d, groups, |, ? * + {m,n}) or a name: '
                             f'{names} (Korean licence plates: 12가3456, 123가4567, 서울12가3456); '
                             'a CTC reading that does not match becomes the likeliest one that does')


def pattern_for(opt, converter) -> Automaton | None:
    """The automaton ``opt.pattern`` names (None without the flag), compiled once per process.
    InputError for a pattern that does not parse, an Attn model, or --pattern with --lexicon."""
    text = getattr(opt, 'pattern', None)
    if text is None:
        return None
    if 'CTC' not in opt.Prediction:
        raise InputError(f'--pattern constrains CTC readings; {opt.saved_model} is an {opt.Prediction} model')
    if getattr(opt, 'lexicon', None):
        raise InputError('--pattern and --lexicon cannot be used together: a pattern fixes the form of '
                         'the whole reading, a lexicon rescores its words; choose one')
    return _compiled(text, tuple(converter.character), bool(getattr(opt, 'sensitive', False)))


@functools.lru_cache(maxsize=8)
def _compiled(text: str, character: tuple[str, ...], sensitive: bool) -> Automaton:
    alphabet = {ch: i for i, ch in enumerate(character) if i != BLANK}
    return compile_pattern(text, alphabet, sensitive)
