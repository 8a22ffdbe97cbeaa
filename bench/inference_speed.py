"""Inference speed on the machine at hand, as ratios measured in one run against upstream
DTRB's inference (contiguous memory layout, all batch_max_length + 1 Attn steps, the previous
character fed as a one-hot vector): the project's inference path (channels-last convolutions,
the character's weight column gathered instead of the one-hot product; all steps, then stopping
once every sequence emitted [s]), the same under --amp (bfloat16 autocast, with the share of
predictions that stay float32's) and ONNX Runtime, on a model trained here so that it really
emits [s].

    python bench/inference_speed.py                       # TPS-ResNet-BiLSTM-Attn, 64/256, KS X 1001
    python bench/inference_speed.py --num_iter 300 --threads 1

It renders a few Korean words with an installed font into an LMDB, trains the model on them
with train.py (until it reads them, so its predictions end in [s] as a trained model's do),
exports it with export.py, and times each way of reading the same preprocessed images.
Nothing else should run meanwhile; figures taken on a busy machine are not comparable.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import export  # noqa: E402
import train  # noqa: E402
from create_lmdb_dataset import LmdbWriter  # noqa: E402
from inference import (OnnxRuntimeModel, Recognizer, decode_predictions, empty_text_input,  # noqa: E402
                       run_model)
from utils import AttnLabelConverter  # noqa: E402

FONT = '/usr/share/fonts/truetype/nanum/NanumGothic.ttf'
# the alphabet the project's Korean models use: 2,446 classes make each Attn step cost what it
# costs in a real Korean model (the one-hot input and the generator grow with the classes)
ALPHABET = os.path.join(REPO, 'korean', 'alphabets', 'ksx1001_with_space.txt')
# short words, as captions and signs mostly are: early stopping saves most of the 26 steps
WORDS = ('서울', '부산', '약국', '카페', '뉴스', '날씨', '경기', '속보')


def word_image(word: str, font: ImageFont.FreeTypeFont) -> bytes:
    image = Image.new('L', (100, 32), 'white')
    ImageDraw.Draw(image).text((6, 2), word, fill='black', font=font)
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def render_words(path: str) -> list[bytes]:
    font = ImageFont.truetype(FONT, 24)
    images = [word_image(word, font) for word in WORDS]
    with LmdbWriter(path) as writer:
        for word, image in zip(WORDS, images):
            writer.add(image, word)
    return images


def train_model(args, data: str) -> str:
    """Train with train.py in the current folder; return the best checkpoint's path."""
    argv = ['--train_data', data, '--valid_data', data, '--select_data', '/', '--batch_ratio', '1',
            '--Transformation', 'TPS', '--FeatureExtraction', 'ResNet', '--SequenceModeling', 'BiLSTM',
            '--Prediction', 'Attn', '--output_channel', str(args.output_channel),
            '--hidden_size', str(args.hidden_size), '--character', args.character,
            '--batch_size', str(len(WORDS)), '--workers', '0', '--num_iter', str(args.num_iter),
            '--valInterval', str(args.num_iter // 4), '--adam', '--lr', str(args.lr),
            '--num_threads', str(args.threads), '--exp_name', 'bench']
    log = io.StringIO()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            train.main(argv)
    except BaseException:
        sys.stderr.write(log.getvalue()[-3000:])  # what train.py said before it stopped
        raise
    return os.path.join('saved_models', 'bench', 'best_accuracy.pth')


@contextlib.contextmanager
def upstream_attention_steps(model):
    """Decode as upstream DTRB does: each step multiplies a [batch, num_class] one-hot matrix
    into the LSTM input instead of gathering the character's weight column."""
    cell = model.Prediction.attention_cell

    def one_hot_step(prev_hidden, batch_H, batch_H_proj, chars):
        onehots = torch.nn.functional.one_hot(chars, model.Prediction.num_classes).to(batch_H.dtype)
        hidden, _ = cell(prev_hidden, batch_H, onehots, batch_H_proj)
        return hidden

    cell.step_from_indices = one_hot_step
    try:
        yield
    finally:
        del cell.step_from_indices  # the class's method again


def images_per_second(read, images: torch.Tensor, repeats: int) -> float:
    read(images)  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        read(images)
        times.append(time.perf_counter() - start)
    return images.size(0) / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--output_channel', type=int, default=64)
    parser.add_argument('--hidden_size', type=int, default=256, help="DTRB's size")
    parser.add_argument('--character', default=ALPHABET, help='alphabet string or file')
    parser.add_argument('--num_iter', type=int, default=400, help='training iterations for the model')
    parser.add_argument('--lr', type=float, default=0.001,
                        help="the model's Adam learning rate (0.003 left a 1-thread run repeating one word)")
    parser.add_argument('--batch', type=int, default=64, help='images read per call')
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # train.py and export.py write beside the checkpoint
        encoded = render_words(os.path.join(tmp, 'data'))
        checkpoint = train_model(args, os.path.join(tmp, 'data'))
        recognizer = Recognizer.from_checkpoint(checkpoint, torch.device('cpu'))
        opt, model = recognizer.opt, recognizer.model
        pictures = [Image.open(io.BytesIO(encoded[k % len(encoded)])).convert('L') for k in range(args.batch)]
        images, _ = recognizer.collate([(picture, None) for picture in pictures])

        upstream_model = copy.deepcopy(model).to(memory_format=torch.contiguous_format)

        def upstream_read(batch):
            """Upstream's inference: contiguous layout, one-hot steps, all of them."""
            text = empty_text_input(batch.size(0), opt, batch.device)
            with torch.no_grad(), upstream_attention_steps(upstream_model):
                return upstream_model(batch.contiguous(), text, is_train=False, stop_at_eos=False)

        with torch.no_grad():
            upstream = upstream_read(images)
            full = run_model(model, images, opt, stop_at_eos=False)
            early = run_model(model, images, opt, stop_at_eos=True)
        eos = AttnLabelConverter.EOS
        full_texts = [p.text for p in decode_predictions(upstream, recognizer.converter, opt)]
        for name, logits in (('gathering weight columns', full), ('early stopping', early)):
            if [p.text for p in decode_predictions(logits, recognizer.converter, opt)] != full_texts:
                raise SystemExit(f'error: {name} changed a prediction')
        emitted = full.argmax(2).eq(recognizer.converter.dict[eos]).any(1).float().mean().item()
        correct = sum(text == WORDS[k % len(WORDS)] for k, text in enumerate(full_texts)) / len(full_texts)
        if emitted < 0.9 or correct < 0.9:
            # a model that has not learnt its words (one that repeats a word, say) says nothing
            # about a trained model's decoding or about how --amp changes its predictions
            raise SystemExit(f'error: the model read {correct:.0%} of its words right and emitted [s] for '
                             f'{emitted:.0%} of the images (90 % needed for both); train longer (--num_iter)')

        onnx_path = os.path.join(tmp, 'bench.onnx')
        with contextlib.redirect_stdout(io.StringIO()):
            export.main(['--saved_model', checkpoint, '--output', onnx_path])
        onnx = OnnxRuntimeModel(onnx_path, threads=args.threads)

        def torch_read(stop_at_eos: bool, amp_dtype: torch.dtype | None = None):
            def read(batch):
                with torch.no_grad():
                    return run_model(model, batch, opt, stop_at_eos=stop_at_eos, amp_dtype=amp_dtype)
            return read

        # --amp changes the arithmetic, so its predictions are counted, not required, to agree
        amp_texts = [p.text for p in decode_predictions(torch_read(True, torch.bfloat16)(images),
                                                        recognizer.converter, opt)]
        amp_agreement = sum(a == b for a, b in zip(amp_texts, full_texts)) / len(full_texts)

        upstream_speed = images_per_second(upstream_read, images, args.repeats)
        full_speed = images_per_second(torch_read(False), images, args.repeats)
        early_speed = images_per_second(torch_read(True), images, args.repeats)
        amp_speed = images_per_second(torch_read(True, torch.bfloat16), images, args.repeats)
        onnx_speed = images_per_second(onnx, images, args.repeats)

    steps = opt.batch_max_length + 1
    print(f'TPS-ResNet-BiLSTM-Attn {args.output_channel}/{args.hidden_size}, {len(recognizer.converter.character)} '
          f'classes, batch {args.batch}, CPU, {args.threads} threads; trained {args.num_iter} iterations: '
          f'{correct:.0%} read right, [s] emitted for {emitted:.0%}')
    print(f'upstream: contiguous, one-hot, all {steps} steps: {upstream_speed:8.1f} images/s  (baseline)')
    print(f'PyTorch, all {steps} steps:                     {full_speed:8.1f} images/s  '
          f'ratio {full_speed / upstream_speed:.2f}')
    print(f'PyTorch, stop at [s]:                        {early_speed:8.1f} images/s  '
          f'ratio {early_speed / upstream_speed:.2f}')
    print(f'PyTorch, stop at [s], --amp (bfloat16):       {amp_speed:8.1f} images/s  '
          f'ratio {amp_speed / upstream_speed:.2f}  ({amp_agreement:.0%} of predictions as float32)')
    print(f'ONNX Runtime (all steps):                    {onnx_speed:8.1f} images/s  '
          f'ratio {onnx_speed / upstream_speed:.2f}')


if __name__ == '__main__':
    main()
