"""bench/train_speed.py runs end to end and prints its ratios (the figures themselves are for a
quiet machine, never asserted here)."""
import os
import re
import subprocess
import sys

from conftest import REPO


def test_the_training_benchmark_prints_each_ratio():
    run = subprocess.run([sys.executable, os.path.join(REPO, 'bench', 'train_speed.py'), '--output_channel', '32',
                          '--hidden_size', '32', '--batch_size', '8', '--steps', '1', '--threads', '1'],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == 'None-VGG-BiLSTM-CTC 32/32, batch 8, CPU, 1 threads'
    assert re.fullmatch(r'upstream-equivalent step \(contiguous, fp32\): +\d+\.\d images/s', lines[1])
    assert re.fullmatch(r'this project, fp32: +\d+\.\d images/s  ratio \d+\.\d\d', lines[2])
    assert re.fullmatch(r'this project, --amp \(bfloat16\): +\d+\.\d images/s  ratio \d+\.\d\d \(vs fp32 \d+\.\d\d\)',
                        lines[3])
    assert lines[4].startswith('1 vs N processes: not measured (one device here)')
