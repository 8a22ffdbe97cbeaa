"""bench/inference_speed.py runs end to end on a model it trains until it emits [s], and prints
its ratios (the figures themselves are for a quiet machine, never asserted here)."""
import os
import re
import subprocess
import sys

from conftest import REPO


def test_the_inference_benchmark_prints_each_ratio():
    run = subprocess.run([sys.executable, os.path.join(REPO, 'bench', 'inference_speed.py'),
                          '--output_channel', '32', '--hidden_size', '64', '--character', '서울부산약국카페뉴스날씨경기속보',
                          '--num_iter', '300', '--batch', '8', '--repeats', '1', '--threads', '1'],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    lines = run.stdout.splitlines()
    assert re.fullmatch(r'TPS-ResNet-BiLSTM-Attn 32/64, 18 classes, batch 8, CPU, 1 threads; trained 300 '
                        r'iterations: (9\d|100)% read right, \[s\] emitted for (9\d|100)%', lines[0]), lines[0]
    assert re.fullmatch(r'upstream: contiguous, one-hot, all 26 steps: +\d+\.\d images/s  \(baseline\)', lines[1])
    assert re.fullmatch(r'PyTorch, all 26 steps: +\d+\.\d images/s  ratio \d+\.\d\d', lines[2])
    assert re.fullmatch(r'PyTorch, stop at \[s\]: +\d+\.\d images/s  ratio \d+\.\d\d', lines[3])
    assert re.fullmatch(r'PyTorch, stop at \[s\], --amp \(bfloat16\): +\d+\.\d images/s  ratio \d+\.\d\d  '
                        r'\(\d+% of predictions as float32\)', lines[4]), lines[4]
    assert re.fullmatch(r'ONNX Runtime \(all steps\): +\d+\.\d images/s  ratio \d+\.\d\d', lines[5])
