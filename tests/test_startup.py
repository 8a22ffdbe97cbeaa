"""bench/startup.py runs end to end and prints its ratios (the figures themselves are for a quiet
machine, never asserted here); and a real demo.py run loads none of the optional heavy modules
that only training, evaluation reports or export need."""
import argparse
import importlib.util
import os
import re
import subprocess
import sys

from conftest import REPO

STARTUP = os.path.join(REPO, 'bench', 'startup.py')
# imported by train.py, test.py --save_errors or export.py, never needed to read images
NOT_FOR_DEMO = ('matplotlib', 'torch.utils.tensorboard', 'tensorboard', 'onnxruntime', 'onnx', 'cv2', 'nltk',
                'korean', 'test', 'train', 'export')


def load_startup_bench():
    spec = importlib.util.spec_from_file_location('startup_bench', STARTUP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_startup_benchmark_prints_each_ratio():
    run = subprocess.run([sys.executable, STARTUP, '--output_channel', '16', '--hidden_size', '16',
                          '--repeats', '1', '--top', '3'], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr + run.stdout
    lines = run.stdout.splitlines()
    assert lines[0] == 'None-VGG-BiLSTM-CTC 16/16, one image, CPU, OMP_NUM_THREADS=1, 1 runs of each, in turn'
    seconds = r'median +\d+\.\d{3} s \(min \d+\.\d{3}, max \d+\.\d{3}\)'
    assert re.fullmatch(r'floor \(import torch, build Model, load state dict, one forward\): ' + seconds, lines[1])
    assert re.fullmatch(r'python demo\.py --image_folder D --saved_model M <model flags>: +' + seconds, lines[2])
    assert re.fullmatch(r'the same with --workers 0 \(no DataLoader processes\): +' + seconds, lines[3])
    assert re.fullmatch(r'ratio demo/floor: \d+\.\d\d', lines[4])
    assert re.fullmatch(r'ratio demo --workers 0/floor: \d+\.\d\d', lines[5])
    assert re.fullmatch(r'demo\.py --workers 0 imports \d+ modules beyond the floor\'s, \d+\.\d ms of self import time; '
                        r'the top 3 \(ms with what it imported beyond the floor, ms itself\):', lines[6])
    assert len(lines) == 10 and all(re.fullmatch(r' +\d+\.\d +\d+\.\d  [\w.]+', line) for line in lines[7:])


def test_a_demo_run_imports_nothing_only_training_reports_or_export_need(tmp_path):
    startup = load_startup_bench()
    flags = startup.model_flags(argparse.Namespace(output_channel=16, hidden_size=16))
    checkpoint, images = str(tmp_path / 'model.pth'), str(tmp_path / 'images')
    startup.save_untrained_model(flags, checkpoint)
    startup.render_one_image(images)
    _, stderr = startup.run([sys.executable, '-X', 'importtime', os.path.join(REPO, 'demo.py'), '--image_folder',
                             images, '--saved_model', checkpoint, '--workers', '0'] + flags,
                            str(tmp_path), dict(os.environ, OMP_NUM_THREADS='1'))
    loaded = {name for _, name, _ in startup.import_records(stderr)}
    assert {'inference', 'dataset', 'PIL.PngImagePlugin'} <= loaded  # it did read the image
    unwanted = sorted(name for name in loaded
                      if any(name == heavy or name.startswith(heavy + '.') for heavy in NOT_FOR_DEMO))
    assert not unwanted


def test_a_module_the_floor_imports_too_costs_demo_nothing():
    """inference.py is the first to import model.py in demo.py, but the floor imports model.py
    as well: only what the floor lacks is counted under inference."""
    importtime = """import time: self [us] | cumulative | imported package
import time:       100 |        100 |     model.layers
import time:       500 |        600 |   model
import time:        50 |         50 |     natsort.utils
import time:       200 |        250 |   natsort
import time:       300 |       1150 | inference
import time:        40 |         40 | PIL.PngImagePlugin
"""
    startup = load_startup_bench()
    records = startup.import_records(importtime)
    assert records[0] == (2, 'model.layers', 100) and records[-2] == (0, 'inference', 300)
    assert startup.extra_import_times(records, {'model', 'model.layers'}) == {
        'natsort.utils': (50, 50), 'natsort': (200, 250), 'inference': (300, 550), 'PIL.PngImagePlugin': (40, 40)}
