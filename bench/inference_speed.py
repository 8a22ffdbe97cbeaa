"""Inference speed on the machine at hand, as ratios measured in one run, on a *trained* model
(one that emits [s], so early stopping has something to stop at): Attn greedy decoding that stops
once every word emitted [s] against the full-length decode, and ONNX Runtime against PyTorch.

    python bench/inference_speed.py                  # TPS-ResNet-BiLSTM-Attn, 64/64, batch 64
    python bench/inference_speed.py --steps 600 --output_channel 128 --hidden_size 128

It renders Korean words with an installed font into an LMDB, trains the model on them with
train.py for --steps iterations, exports it with export.py, then times each path on the same
preprocessed batches. Nothing else should run meanwhile.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
sys.path[:0] = [REPO, BENCH]

import torch  # noqa: E402

import export  # noqa: E402
import train  # noqa: E402
from inference import Recognizer, run_model  # noqa: E402
from train_speed import ALPHABET, render_lmdb  # noqa: E402


VOCABULARY = 24


def images_per_second(function, batches, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            function(batch)
        times.append(time.perf_counter() - start)
    return sum(len(b) for b in batches) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--Transformation', default='TPS')
    parser.add_argument('--FeatureExtraction', default='ResNet')
    parser.add_argument('--SequenceModeling', default='BiLSTM')
    parser.add_argument('--output_channel', type=int, default=64)
    parser.add_argument('--hidden_size', type=int, default=64)
    parser.add_argument('--steps', type=int, default=400, help='training iterations before timing')
    parser.add_argument('--batch_size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    characters = ''.join(line for line in open(ALPHABET, encoding='utf-8').read().split('\n') if line)
    arch = ['--Transformation', args.Transformation, '--FeatureExtraction', args.FeatureExtraction,
            '--SequenceModeling', args.SequenceModeling, '--Prediction', 'Attn',
            '--output_channel', str(args.output_channel), '--hidden_size', str(args.hidden_size)]
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        # a small vocabulary, so a short training run already ends its words with [s]
        words = [w for w in open(os.path.join(REPO, 'korean', 'data', 'words.txt'), encoding='utf-8').read().split()
                 if all(ch in characters for ch in w)][:VOCABULARY]
        render_lmdb(os.path.join(tmp, 'data'), 4 * args.batch_size, characters, words)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            train.main(arch + ['--train_data', 'data', '--valid_data', 'data', '--select_data', '/',
                               '--batch_ratio', '1', '--character', ALPHABET, '--batch_size', '32',
                               '--workers', '0', '--adam', '--lr', '0.003', '--num_iter', str(args.steps),
                               '--valInterval', str(args.steps), '--exp_name', 'bench',
                               '--num_threads', str(args.threads)])
            checkpoint = 'saved_models/bench/best_accuracy.pth'
            export.main(['--saved_model', checkpoint, '--output', 'bench.onnx'])
        recognizer = Recognizer.from_checkpoint(checkpoint)
        onnx = Recognizer.from_checkpoint('bench.onnx')
        from dataset import LmdbDataset
        data = LmdbDataset('data', recognizer.opt)
        samples = [data[i] for i in range(len(data))]
        batches = [recognizer.collate(samples[i:i + args.batch_size])[0]
                   for i in range(0, len(samples), args.batch_size)]
        predictions = [p for b in batches for p in recognizer.predict(b)]
        emitted = sum(len(p.text) < recognizer.opt.batch_max_length for p in predictions) / len(predictions)
        accuracy = sum(p.text == label for p, (_, label) in zip(predictions, samples)) / len(samples)
        opt, model = recognizer.opt, recognizer.model
        with torch.no_grad():
            full = images_per_second(lambda b: run_model(model, b, opt, stop_at_eos=False), batches, args.repeats)
            early = images_per_second(lambda b: run_model(model, b, opt, stop_at_eos=True), batches, args.repeats)
            runtime = images_per_second(onnx.onnx, batches, args.repeats)
    name = f'{args.Transformation}-{args.FeatureExtraction}-{args.SequenceModeling}-Attn'
    print(f'{name} {args.output_channel}/{args.hidden_size}, trained {args.steps} steps (training-set accuracy '
          f'{100 * accuracy:.1f} %, {100 * emitted:.0f} % of words end in [s] before step '
          f'{opt.batch_max_length}), batch {args.batch_size}, CPU, {args.threads} threads')
    print(f'PyTorch, full-length decode ({opt.batch_max_length + 1} steps): {full:8.1f} images/s')
    print(f'PyTorch, stop at [s]:                     {early:8.1f} images/s  ratio {early / full:.2f}')
    print(f'ONNX Runtime (full-length graph):          {runtime:8.1f} images/s  ratio {runtime / full:.2f} '
          f'(vs stop at [s] {runtime / early:.2f})')


if __name__ == '__main__':
    main()
