"""What reading with --ensemble costs on the machine at hand: the shipped 48-high model alone, the
64-high model alone and the pair (each image read by both, the more confident reading kept),
timed in one run on the same images, as milliseconds an image and as ratios to the first model.

    python bench/ensemble_speed.py                        # 500 images, batches of 64, every core
    python bench/ensemble_speed.py --images 200 --threads 1

The images are the shipped model's held-out test words drawn in a held-out font at a few sizes
(what README's model card calls unseen words in unseen fonts); the words each way reads right
are printed too, so a speed figure never hides a reading that got worse. Nothing else should run
meanwhile; figures taken on a busy machine are not comparable.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from inference import Ensemble, Recognizer  # noqa: E402

MODELS = os.path.join(REPO, 'korean', 'models')
FIRST = os.path.join(MODELS, 'ko_vgg_bilstm_ctc.pth')
SECOND = os.path.join(MODELS, 'ko_vgg_bilstm_ctc_h64.pth')
TEST_WORDS = os.path.join(MODELS, 'ko_vgg_bilstm_ctc.test_words.txt')
# a held-out font: the shipped models never trained on the Un or Baekmuk families
FONT = '/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf'
FONT_SIZES = (20, 28, 40, 56)  # small captions to large signboard text


def word_images(count: int, font_path: str) -> list[tuple[Image.Image, str]]:
    """``count`` (image, word) pairs: the held-out words in turn, each at the next font size."""
    with open(TEST_WORDS, encoding='utf-8') as f:
        words = [line.strip() for line in f if line.strip()]
    fonts = [ImageFont.truetype(font_path, size) for size in FONT_SIZES]
    samples = []
    for n in range(count):
        word, font = words[n % len(words)], fonts[n % len(fonts)]
        left, top, right, bottom = font.getbbox(word)
        margin = font.size // 4
        image = Image.new('L', (right - left + 2 * margin, bottom - top + 2 * margin), 'white')
        ImageDraw.Draw(image).text((margin - left, margin - top), word, fill='black', font=font)
        samples.append((image, word))
    return samples


def timed_reading(reader, images, batch: int, repeats: int) -> tuple[float, list[str]]:
    """The median seconds of ``repeats`` readings of ``images`` (after one untimed warm-up) and
    the texts read."""
    texts = [text for text, _ in reader.read(images[:batch], batch_size=batch)]  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        texts = [text for text, _ in reader.read(images, batch_size=batch)]
        times.append(time.perf_counter() - start)
    return statistics.median(times), texts


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--images', type=int, default=500, help='word images to read')
    parser.add_argument('--batch', type=int, default=64, help='images read per batch')
    parser.add_argument('--repeats', type=int, default=3, help='timed readings of each way (the median is kept)')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='torch threads')
    parser.add_argument('--font', default=FONT, help='the font to draw the words in')
    args = parser.parse_args(argv)
    if args.images < 1 or args.batch < 1 or args.repeats < 1 or args.threads < 1:
        raise SystemExit('error: --images, --batch, --repeats and --threads must be at least 1')
    if not os.path.isfile(args.font):
        raise SystemExit(f'error: --font {args.font}: no such file (install fonts-unfonts-core, or give a Korean font)')
    torch.set_num_threads(args.threads)
    samples = word_images(args.images, args.font)
    images = [image for image, _ in samples]
    ways = [('48-high model alone', Recognizer.from_checkpoint(FIRST)),
            ('64-high model alone', Recognizer.from_checkpoint(SECOND)),
            ('the pair (--ensemble)', Ensemble.from_checkpoints([FIRST, SECOND]))]
    print(f'{len(images)} held-out words in {os.path.basename(args.font)} at {FONT_SIZES} px, batches of '
          f'{args.batch}, {args.threads} torch threads, median of {args.repeats} readings')
    baseline = None
    for name, reader in ways:
        seconds, texts = timed_reading(reader, images, args.batch, args.repeats)
        right = sum(text == word for text, (_, word) in zip(texts, samples))
        baseline = baseline or seconds
        print(f'{name:24s} {1000 * seconds / len(images):7.2f} ms an image   ratio {seconds / baseline:4.2f}   '
              f'read right {right} of {len(images)}')


if __name__ == '__main__':
    main()
