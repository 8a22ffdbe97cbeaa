"""bench/ensemble_speed.py runs end to end on the shipped pair and prints each way's time, its
ratio to the 48-high model and what it read right (the figures are for a quiet machine and are
never asserted here; the readings are)."""
import os
import re
import subprocess
import sys

from conftest import REPO

BENCH = os.path.join(REPO, 'bench', 'ensemble_speed.py')
LINE = re.compile(r'^(48-high model alone|64-high model alone|the pair \(--ensemble\)) +(\d+\.\d\d) ms an image'
                  r'   ratio (\d+\.\d\d)   read right (\d+) of 12$')


def test_the_ensemble_benchmark_times_each_way_and_counts_its_readings():
    run = subprocess.run([sys.executable, BENCH, '--images', '12', '--batch', '5', '--repeats', '1',
                          '--threads', '1'], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    lines = run.stdout.splitlines()
    assert lines[0].startswith('12 held-out words in UnDotum.ttf at (20, 28, 40, 56) px, batches of 5, 1 torch threads')
    rows = [LINE.match(line) for line in lines[1:]]
    assert all(rows) and [row.group(1) for row in rows] == [
        '48-high model alone', '64-high model alone', 'the pair (--ensemble)'], lines
    assert rows[0].group(3) == '1.00' and all(float(row.group(2)) > 0 for row in rows)
    # plain words in a held-out font: each way reads nearly all (the pair 499 of 500 when committed)
    assert all(int(row.group(4)) >= 10 for row in rows), lines


def test_bad_arguments_are_one_line(tmp_path):
    for argv, expected in [(['--images', '0'], 'error: --images, --batch, --repeats and --threads must be at least 1'),
                           (['--font', str(tmp_path / 'none.ttf')], f'error: --font {tmp_path / "none.ttf"}: no such file')]:
        run = subprocess.run([sys.executable, BENCH] + argv, capture_output=True, text=True, timeout=120)
        assert run.returncode != 0 and expected in run.stderr, run.stderr
