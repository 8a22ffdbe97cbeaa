"""Build a --character alphabet from the labels of gt files or LMDB datasets.

    python korean/build_alphabet.py --gt data/gt.txt --lmdb data/lmdb --output my_alphabet.txt
    python korean/build_alphabet.py --lmdb data/lmdb --check korean/alphabets/ksx1001.txt

Prints how often each character occurs, writes the characters seen at least --min_count times
as an alphabet file (one character per line, the format --character reads), and with --check
reports what a given alphabet would drop: the characters it lacks and the labels upstream's data
filter would remove because of them (or because they are longer than --batch_max_length).
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from create_lmdb_dataset import parse_gt_lines, read_gt_text  # noqa: E402
from dataset import find_leaf_folders, read_lmdb_labels  # noqa: E402
from korean.hangul import is_hangul_syllable  # noqa: E402
from utils import Alphabet, load_character, nfc, write_alphabet_file  # noqa: E402


def collect_labels(gt_files: Sequence[str] = (), lmdb_roots: Sequence[str] = (),
                   encoding: str = 'utf-8') -> list[str]:
    """Every label of the gt files and of every LMDB leaf folder under the LMDB roots, NFC."""
    labels: list[str] = []
    for gt_file in gt_files:
        samples, problems = parse_gt_lines(read_gt_text(gt_file, encoding), gt_file)
        for problem in problems:
            print(f'skipped: {problem}', file=sys.stderr)
        labels.extend(sample.label for sample in samples)
    for root in lmdb_roots:
        for leaf in find_leaf_folders(root):
            labels.extend(read_lmdb_labels(leaf))
    return [nfc(label) for label in labels]


def count_characters(labels: Iterable[str], sensitive: bool = False) -> Counter:
    """Character counts over the labels, lower-cased unless ``sensitive`` (as training reads them)."""
    counts: Counter = Counter()
    for label in labels:
        counts.update(label if sensitive else label.lower())
    return counts


def _class_order(ch: str) -> tuple[int, int]:
    # digits, Latin lower, Latin upper, Hangul syllables, then everything else by code point:
    # the order of the shipped alphabets, so files built here diff cleanly against them
    if ch.isascii() and ch.isdigit():
        group = 0
    elif ch.isascii() and ch.islower():
        group = 1
    elif ch.isascii() and ch.isupper():
        group = 2
    elif is_hangul_syllable(ch):
        group = 3
    else:
        group = 4
    return group, ord(ch)


def alphabet_from_counts(counts: Counter, min_count: int = 1, keep_space: bool = True) -> str:
    """The characters seen at least ``min_count`` times, in the shipped alphabets' order.
    Control characters (tabs, newlines) never become classes."""
    chars = [ch for ch, n in counts.items()
             if n >= min_count and (ch.isprintable() or ch == ' ') and (keep_space or ch != ' ')]
    return ''.join(sorted(chars, key=_class_order))


@dataclass
class DropReport:
    """What an alphabet would do to a set of labels under upstream's data filter."""
    total: int = 0
    kept: int = 0
    dropped_for_characters: int = 0
    dropped_for_length: int = 0
    missing_characters: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)


def check_alphabet(labels: Iterable[str], alphabet: Alphabet, batch_max_length: int = 25,
                   max_examples: int = 10) -> DropReport:
    report = DropReport()
    for label in labels:
        report.total += 1
        if alphabet.keeps(label, batch_max_length):
            report.kept += 1
            continue
        missing = alphabet.missing(label)
        if missing:
            report.dropped_for_characters += 1
            report.missing_characters.update(ch for ch in (label.lower()) if ch in missing)
            if len(report.examples) < max_examples:
                report.examples.append(label)
        else:
            report.dropped_for_length += 1
    return report


def describe(ch: str) -> str:
    return f'{ch!r} U+{ord(ch):04X}'


def format_counts(counts: Counter, top: int) -> str:
    lines = [f'{len(counts)} distinct characters in {sum(counts.values())} characters of labels']
    for ch, n in counts.most_common(top):
        lines.append(f'  {describe(ch):16s} {n}')
    if len(counts) > top:
        rare = [ch for ch, n in counts.items() if n == 1]
        lines.append(f'  ... {len(counts) - top} more; {len(rare)} characters occur only once')
    return '\n'.join(lines)


def format_drop_report(report: DropReport, alphabet_name: str, batch_max_length: int) -> str:
    pct = 100 * (report.total - report.kept) / report.total if report.total else 0.0
    lines = [f'--check {alphabet_name}: keeps {report.kept} of {report.total} labels '
             f'(drops {report.total - report.kept}, {pct:0.2f} %)',
             f'  dropped for characters outside the alphabet: {report.dropped_for_characters}',
             f'  dropped for being longer than --batch_max_length {batch_max_length}: '
             f'{report.dropped_for_length}']
    if report.missing_characters:
        lines.append(f'  {len(report.missing_characters)} characters missing from the alphabet '
                     '(most frequent first):')
        for ch, n in report.missing_characters.most_common(30):
            lines.append(f'    {describe(ch):16s} {n}')
        lines.append('  e.g. ' + ', '.join(repr(x) for x in report.examples))
    return '\n'.join(lines)


def write_counts_tsv(path: str, counts: Counter) -> None:
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8', newline='\n') as f:
        f.write('character\tcodepoint\tcount\n')
        for ch, n in sorted(counts.items(), key=lambda kv: (-kv[1], _class_order(kv[0]))):
            f.write(f'{ch if ch.isprintable() else repr(ch)}\tU+{ord(ch):04X}\t{n}\n')
    os.replace(tmp, path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--gt', action='append', default=[], help='a gt.txt file (repeatable)')
    parser.add_argument('--lmdb', action='append', default=[],
                        help='an LMDB dataset folder, or a root holding several (repeatable)')
    parser.add_argument('--encoding', default='utf-8', help='encoding of the gt files (cp949 for Korean Windows)')
    parser.add_argument('--output', help='write the alphabet file here')
    parser.add_argument('--min_count', type=int, default=1,
                        help='leave out characters seen fewer times than this')
    parser.add_argument('--no_space', action='store_true', help='leave the space character out')
    parser.add_argument('--sensitive', action='store_true',
                        help='keep case (default: lower-case, as training without --sensitive)')
    parser.add_argument('--check', help='an alphabet (file or string) to check the labels against')
    parser.add_argument('--batch_max_length', type=int, default=25, help='the length limit of --check')
    parser.add_argument('--counts', help='write every character count to this TSV file')
    parser.add_argument('--top', type=int, default=30, help='how many of the most frequent characters to print')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.gt and not args.lmdb:
        build_parser().error('give at least one --gt file or --lmdb folder')
    labels = collect_labels(args.gt, args.lmdb, args.encoding)
    counts = count_characters(labels, args.sensitive)
    print(f'{len(labels)} labels')
    print(format_counts(counts, args.top))
    if args.counts:
        write_counts_tsv(args.counts, counts)
        print(f'character counts written to {args.counts}')
    if args.output:
        chars = alphabet_from_counts(counts, args.min_count, keep_space=not args.no_space)
        write_alphabet_file(args.output, chars)
        print(f'alphabet of {len(chars)} characters (seen at least {args.min_count} times) '
              f'written to {args.output}; use it with --character {args.output}')
    if args.check:
        alphabet = Alphabet(load_character(args.check), args.sensitive)
        report = check_alphabet(labels, alphabet, args.batch_max_length)
        print(format_drop_report(report, args.check, args.batch_max_length))
    return 0


if __name__ == '__main__':
    sys.exit(main())
