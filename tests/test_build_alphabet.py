"""korean/build_alphabet.py: alphabets and drop reports from real gt files and LMDBs."""
import io
import subprocess
import sys
import unicodedata
from pathlib import Path

from PIL import Image

from create_lmdb_dataset import LmdbWriter
from korean.build_alphabet import (alphabet_from_counts, check_alphabet, collect_labels,
                                   count_characters, main)
from utils import Alphabet, read_alphabet_file

REPO = Path(__file__).resolve().parents[1]


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new('L', (20, 10), 255).save(buf, format='PNG')
    return buf.getvalue()


def write_lmdb(path: Path, labels):
    with LmdbWriter(str(path)) as w:
        for label in labels:
            w.add(png_bytes(), label)


def write_gt(path: Path, lines):
    path.write_text(''.join(lines), encoding='utf-8')


def test_labels_come_from_gt_files_and_every_lmdb_leaf(tmp_path):
    write_gt(tmp_path / 'gt.txt', ['a.png\t서울\n', 'no tab line\n', 'b.png\t부산\n'])
    write_lmdb(tmp_path / 'lmdb' / 'one', ['대구'])
    write_lmdb(tmp_path / 'lmdb' / 'nested' / 'two', ['인천', unicodedata.normalize('NFD', '광주')])
    labels = collect_labels([str(tmp_path / 'gt.txt')], [str(tmp_path / 'lmdb')])
    assert sorted(labels) == sorted(['서울', '부산', '대구', '인천', '광주'])
    assert all(unicodedata.is_normalized('NFC', label) for label in labels)


def test_alphabet_orders_classes_like_the_shipped_files_and_honours_min_count():
    counts = count_characters(['가B7', '가a-', '나\t'])
    chars = alphabet_from_counts(counts, min_count=1)
    assert chars == '7ab가나-'  # lower-cased, digits, Latin, Hangul, then others; no tab
    assert alphabet_from_counts(counts, min_count=2) == '가'
    assert count_characters(['AB'], sensitive=True) == {'A': 1, 'B': 1}


def test_check_reports_missing_characters_and_length_drops():
    alphabet = Alphabet('가나다abc')
    report = check_alphabet(['가나', '가라', 'ABC', '가' * 30, '라마'], alphabet, batch_max_length=25)
    assert report.total == 5 and report.kept == 2  # '가나' and 'ABC' (lower-cased)
    assert report.dropped_for_length == 1
    assert report.dropped_for_characters == 2
    assert report.missing_characters == {'라': 2, '마': 1}


def test_cli_writes_an_alphabet_that_train_can_read(tmp_path, capsys):
    write_lmdb(tmp_path / 'lmdb', ['서울역', '서울', '부산'])
    out = tmp_path / 'alphabet.txt'
    assert main(['--lmdb', str(tmp_path / 'lmdb'), '--output', str(out), '--min_count', '2',
                 '--check', str(REPO / 'korean/alphabets/ksx1001.txt'),
                 '--counts', str(tmp_path / 'counts.tsv')]) == 0
    assert read_alphabet_file(out) == '서울'
    printed = capsys.readouterr().out
    assert 'keeps 3 of 3 labels' in printed
    tsv = (tmp_path / 'counts.tsv').read_text(encoding='utf-8').splitlines()
    assert tsv[0] == 'character\tcodepoint\tcount'
    assert tsv[1].startswith('서\tU+C11C\t2') or tsv[1].startswith('울\tU+C6B8\t2')


def test_script_runs_from_the_repo_root():
    result = subprocess.run([sys.executable, 'korean/build_alphabet.py', '--help'], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and '--check' in result.stdout
