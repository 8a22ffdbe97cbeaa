"""Training speed on the machine at hand, as ratios measured in one run: this project's step
against the upstream-equivalent step (same model, data and loop, DTRB's contiguous memory layout
and float32), fp32 against --amp, and 1 against N processes where there are several GPUs.

    python bench/train_speed.py                      # None-VGG-BiLSTM-CTC, 256/256, batch 64
    python bench/train_speed.py --FeatureExtraction ResNet --steps 12

The data is real: KS X 1001 words rendered with an installed Korean font into an LMDB, read by
train.py's own Batch_Balanced_Dataset with --workers 0. Nothing else should run meanwhile.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import train  # noqa: E402
from create_lmdb_dataset import LmdbWriter  # noqa: E402
from utils import DistributedContext  # noqa: E402

FONT = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'
ALPHABET = os.path.join(REPO, 'korean', 'alphabets', 'ksx1001_with_space.txt')


def render_lmdb(path: str, count: int, characters: str, words: list[str] | None = None) -> None:
    """``count`` images of random KS X 1001 syllable strings, or of ``words`` drawn at random."""
    font = ImageFont.truetype(FONT, 26)
    hangul = [ch for ch in characters if '가' <= ch <= '힣']
    rng = random.Random(0)
    with LmdbWriter(path) as writer:
        for _ in range(count):
            word = rng.choice(words) if words else ''.join(rng.choice(hangul) for _ in range(rng.randint(2, 6)))
            image = Image.new('L', (28 * len(word) + 8, 34), 'white')
            ImageDraw.Draw(image).text((4, 2), word, fill='black', font=font)
            buffer = io.BytesIO()
            image.save(buffer, format='PNG')
            writer.add(buffer.getvalue(), word)


def training_options(args, data_root: str, extra: list[str]):
    argv = ['--train_data', data_root, '--valid_data', data_root, '--select_data', '/', '--batch_ratio', '1',
            '--Transformation', args.Transformation, '--FeatureExtraction', args.FeatureExtraction,
            '--SequenceModeling', args.SequenceModeling, '--Prediction', args.Prediction,
            '--output_channel', str(args.output_channel), '--hidden_size', str(args.hidden_size),
            '--character', ALPHABET, '--batch_size', str(args.batch_size), '--workers', '0',
            '--adam', '--lr', '0.001', '--exp_name', 'bench'] + extra
    opt = train.finish_common_options(train.build_parser().parse_args(argv))
    opt.num_gpu = torch.cuda.device_count()
    opt.select_data, opt.batch_ratio = opt.select_data.split('-'), opt.batch_ratio.split('-')
    return opt


def images_per_second(args, data_root: str, extra: list[str], channels_last: bool) -> float:
    """Median images/s over ``args.steps`` training steps (data loading included), after two
    warm-up steps."""
    train.CHANNELS_LAST = channels_last
    opt = training_options(args, data_root, extra)
    ctx = DistributedContext()
    data = train.Batch_Balanced_Dataset(opt)
    converter = train.make_converter(opt)
    torch.manual_seed(0)
    model = train.build_model(opt, ctx)
    criterion = train.make_criterion(opt, ctx.device)
    optimizer = train.make_optimizer(opt, [p for p in model.parameters() if p.requires_grad])
    amp_dtype = train.autocast_dtype(opt, ctx.device)
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=amp_dtype == torch.float16)
    times = []
    for _ in range(args.steps + 2):
        start = time.perf_counter()
        images, labels = data.get_batch()
        images = train.training_layout(images.to(ctx.device))
        train.train_step(model, criterion, optimizer, scaler, images, labels, converter, opt, ctx, amp_dtype)
        if ctx.device.type == 'cuda':
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return opt.batch_size / statistics.median(times[2:])


def torchrun_images_per_second(args, data_root: str, processes: int) -> float:
    """images/s of a real ``torchrun --nproc_per_node processes train.py`` job, from the last
    row of its metrics.csv (the interval between its two validations)."""
    import csv
    import subprocess
    exp = f'bench-{processes}'
    steps = max(args.steps, 4)
    argv = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(processes),
            os.path.join(REPO, 'train.py'), '--train_data', data_root, '--valid_data', data_root,
            '--select_data', '/', '--batch_ratio', '1', '--Transformation', args.Transformation,
            '--FeatureExtraction', args.FeatureExtraction, '--SequenceModeling', args.SequenceModeling,
            '--Prediction', args.Prediction, '--output_channel', str(args.output_channel),
            '--hidden_size', str(args.hidden_size), '--character', ALPHABET, '--batch_size', str(args.batch_size),
            '--workers', '2', '--adam', '--lr', '0.001', '--exp_name', exp, '--num_iter', str(steps),
            '--valInterval', str(steps - 1)]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    with open(f'saved_models/{exp}/metrics.csv', encoding='utf-8') as f:
        return float(list(csv.DictReader(f))[-1]['images_per_s'])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--Transformation', default='None')
    parser.add_argument('--FeatureExtraction', default='VGG')
    parser.add_argument('--SequenceModeling', default='BiLSTM')
    parser.add_argument('--Prediction', default='CTC')
    parser.add_argument('--output_channel', type=int, default=256)
    parser.add_argument('--hidden_size', type=int, default=256)
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    characters = ''.join(line for line in open(ALPHABET, encoding='utf-8').read().split('\n') if line)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # train.py's logs go to ./saved_models/bench
        render_lmdb(os.path.join(tmp, 'data'), 4 * args.batch_size, characters)
        with contextlib.redirect_stdout(io.StringIO()):
            upstream = images_per_second(args, os.path.join(tmp, 'data'), [], channels_last=False)
            project = images_per_second(args, os.path.join(tmp, 'data'), [], channels_last=True)
            amp = images_per_second(args, os.path.join(tmp, 'data'), ['--amp'], channels_last=True)
        device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f'CPU, {args.threads} threads'
        arch = f'{args.Transformation}-{args.FeatureExtraction}-{args.SequenceModeling}-{args.Prediction}'
        print(f'{arch} {args.output_channel}/{args.hidden_size}, batch {args.batch_size}, {device}')
        print(f'upstream-equivalent step (contiguous, fp32): {upstream:8.1f} images/s')
        print(f'this project, fp32:                          {project:8.1f} images/s  ratio {project / upstream:.2f}')
        amp_name = 'float16' if torch.cuda.is_available() else 'bfloat16'
        print(f'this project, --amp ({amp_name}):                {amp:8.1f} images/s  ratio {amp / upstream:.2f} '
              f'(vs fp32 {amp / project:.2f})')
        gpus = torch.cuda.device_count()
        if gpus > 1:
            one = torchrun_images_per_second(args, os.path.join(tmp, 'data'), 1)
            many = torchrun_images_per_second(args, os.path.join(tmp, 'data'), gpus)
            print(f'torchrun, 1 process:  {one:8.1f} images/s')
            print(f'torchrun, {gpus} processes: {many:8.1f} images/s  ratio {many / one:.2f} (ideal {gpus})')
        else:
            print('1 vs N processes: not measured (one device here); see README for the torchrun commands')


if __name__ == '__main__':
    main()
