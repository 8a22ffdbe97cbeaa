"""demo.py's start-up on the machine at hand, as a ratio measured in one run: the wall time of

    python demo.py --image_folder D --saved_model M <model flags>

on a folder of one image, against a floor every recogniser script pays, DTRB's included: a
``python -c`` that imports torch, builds the same Model, loads the same state dict and runs one
forward pass on one tensor (upstream's demo.py also imports torchvision, which cannot be
installed against this project's CPU torch, so upstream itself cannot be timed here).

    python bench/startup.py                  # None-VGG-BiLSTM-CTC 128/128, 5 runs of each
    python bench/startup.py --repeats 1

demo.py also runs with ``--workers 0``, which tells the cost of the DataLoader processes that
upstream's default ``--workers 4`` starts apart from the cost of imports. The commands take
turns (the one that starts a round rotates), after one untimed run of the floor and of demo.py
``--workers 0`` under ``python -X importtime``; that run names the modules demo.py imports beyond
the floor's, the candidates for a lazy import (without worker processes, whose imports would mix
into the list: torch's seeding of numpy.random in each of them, and a PIL plugin import that
``-X importtime`` shows slow there though it does not change the wall time). Nothing else should
run meanwhile.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import demo  # noqa: E402
from model import Model, save_checkpoint  # noqa: E402
from utils import MODEL_OPTION_DEFAULTS, finish_common_options, make_converter  # noqa: E402

WORD = 'start'  # in the default alphabet; what the untrained model reads does not matter here

# What any script must do before it can print a prediction: import torch, build the model,
# load the checkpoint (upstream wraps the model in DataParallel; stripping the prefix costs the
# same) and run it once. {repo}, {opt}, {checkpoint} are filled in by floor_program().
FLOOR_PROGRAM = '''
import argparse, sys
sys.path.insert(0, {repo!r})
import torch
from model import Model
opt = argparse.Namespace(**{opt!r})
model = Model(opt)
state = torch.load({checkpoint!r}, map_location='cpu')
model.load_state_dict({{key.removeprefix('module.'): value for key, value in state.items()}})
model.eval()
with torch.no_grad():
    model(torch.zeros(1, opt.input_channel, opt.imgH, opt.imgW),
          torch.zeros(1, opt.batch_max_length + 1, dtype=torch.long))
'''


def model_flags(args) -> list[str]:
    return ['--Transformation', 'None', '--FeatureExtraction', 'VGG', '--SequenceModeling', 'BiLSTM',
            '--Prediction', 'CTC', '--output_channel', str(args.output_channel),
            '--hidden_size', str(args.hidden_size)]


def save_untrained_model(flags: list[str], checkpoint: str):
    """Save a freshly initialised model as a bare DTRB checkpoint (no configuration beside it,
    so demo.py reads the model flags as upstream's does); return its finished options."""
    opt = finish_common_options(demo.build_parser().parse_args(
        flags + ['--image_folder', 'unused', '--saved_model', checkpoint]))
    make_converter(opt)  # sets opt.num_class, as demo.py's does
    save_checkpoint(Model(opt), checkpoint)
    return opt


def render_one_image(folder: str) -> None:
    os.makedirs(folder)
    image = Image.new('L', (100, 32), 'white')
    ImageDraw.Draw(image).text((6, 8), WORD, fill='black', font=ImageFont.load_default())
    image.save(os.path.join(folder, 'word.png'))


def floor_program(opt, checkpoint: str) -> str:
    model_options = {key: getattr(opt, key) for key in MODEL_OPTION_DEFAULTS}
    model_options['num_class'] = opt.num_class
    return FLOOR_PROGRAM.format(repo=REPO, opt=model_options, checkpoint=checkpoint)


def run(command: list[str], cwd: str, env: dict[str, str]) -> tuple[float, str]:
    """Run ``command`` to the end; return its wall time in seconds and its stderr. A failing
    command stops the benchmark: a crash is not a start-up time."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f'error: {" ".join(command[:3])} ... failed ({done.returncode}):\n'
                         f'{done.stderr[-3000:]}{done.stdout[-1000:]}')
    return took, done.stderr


def import_records(stderr: str) -> list[tuple[int, str, int]]:
    """(nesting depth, module, self us) of each ``python -X importtime`` line of one process, in
    the order printed: a module comes after the modules it imported, one level deeper."""
    records = []
    for line in stderr.splitlines():
        if not line.startswith('import time:') or 'self [us]' in line:
            continue
        self_us, _, field = line[len('import time:'):].split('|')
        depth = (len(field) - len(field.lstrip()) - 1) // 2
        records.append((depth, field.strip(), int(self_us)))
    return records


def extra_import_times(records: list[tuple[int, str, int]], known: set[str]) -> dict[str, tuple[int, int]]:
    """{module: (self us, us of it and of the modules it imported)} for each module not in
    ``known``, counting only modules not in ``known``: a module the floor imports too costs
    demo.py nothing, whichever module happened to import it first."""
    totals: dict[str, tuple[int, int]] = {}
    pending: list[tuple[int, int]] = []  # (depth, unknown us of a subtree) not yet under a parent
    for depth, name, self_us in records:
        subtree = 0 if name in known else self_us
        while pending and pending[-1][0] > depth:
            subtree += pending.pop()[1]
        pending.append((depth, subtree))
        if name not in known:
            totals[name] = (self_us, subtree)
    return totals


def timed_in_turn(commands: dict[str, list[str]], repeats: int, cwd: str,
                  env: dict[str, str]) -> dict[str, list[float]]:
    """Each command ``repeats`` times, taking turns, and the one that starts a round rotating,
    so a slow spell of the machine falls on all of them."""
    names = list(commands)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(repeats):
        start = round_number % len(names)
        for name in names[start:] + names[:start]:
            seconds[name].append(run(commands[name], cwd, env)[0])
    return seconds


def describe(seconds: list[float]) -> str:
    return f'median {statistics.median(seconds):6.3f} s (min {min(seconds):.3f}, max {max(seconds):.3f})'


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output_channel', type=int, default=128, help="the shipped Korean model's size")
    parser.add_argument('--hidden_size', type=int, default=128)
    parser.add_argument('--repeats', type=int, default=5, help='timed runs of each command')
    parser.add_argument('--threads', type=int, default=1, help='OMP_NUM_THREADS of both commands')
    parser.add_argument('--top', type=int, default=10, help='extra modules listed')
    args = parser.parse_args(argv)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    env.pop('PYTHONPATH', None)  # both import this repository's modules, and only those

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, images = os.path.join(tmp, 'model.pth'), os.path.join(tmp, 'images')
        flags = model_flags(args)
        opt = save_untrained_model(flags, checkpoint)
        render_one_image(images)
        demo_command = [sys.executable, os.path.join(REPO, 'demo.py'), '--image_folder', images,
                        '--saved_model', checkpoint] + flags
        commands = {
            'floor': [sys.executable, '-c', floor_program(opt, checkpoint)],
            'demo': demo_command,
            # upstream's default --workers 4 starts four DataLoader processes even for one image:
            # this run tells that cost apart from the imports
            'demo without workers': demo_command + ['--workers', '0'],
        }
        # the import-time runs double as warm-up: the first run of each pays for a cold file cache
        profiles = {name: import_records(run(commands[name][:1] + ['-X', 'importtime'] + commands[name][1:],
                                             tmp, env)[1])
                    for name in ('floor', 'demo without workers')}
        seconds = timed_in_turn(commands, args.repeats, tmp, env)

    floor = statistics.median(seconds['floor'])
    demo_s, without_workers = statistics.median(seconds['demo']), statistics.median(seconds['demo without workers'])
    extra = extra_import_times(profiles['demo without workers'], {name for _, name, _ in profiles['floor']})
    print(f'None-VGG-BiLSTM-CTC {args.output_channel}/{args.hidden_size}, one image, CPU, '
          f'OMP_NUM_THREADS={args.threads}, {args.repeats} runs of each, in turn')
    print(f'floor (import torch, build Model, load state dict, one forward): {describe(seconds["floor"])}')
    print(f'python demo.py --image_folder D --saved_model M <model flags>:   {describe(seconds["demo"])}')
    print(f'the same with --workers 0 (no DataLoader processes):             '
          f'{describe(seconds["demo without workers"])}')
    print(f'ratio demo/floor: {demo_s / floor:.2f}')
    print(f'ratio demo --workers 0/floor: {without_workers / floor:.2f}')
    print(f'demo.py --workers 0 imports {len(extra)} modules beyond the floor\'s, '
          f'{sum(s for s, _ in extra.values()) / 1000:.1f} ms of self import time; the top {args.top} '
          '(ms with what it imported beyond the floor, ms itself):')
    for name, (self_us, with_imports_us) in sorted(extra.items(), key=lambda item: -item[1][1])[:args.top]:
        print(f'  {with_imports_us / 1000:7.1f} {self_us / 1000:7.1f}  {name}')


if __name__ == '__main__':
    main()
