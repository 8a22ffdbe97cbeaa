"""Recognise the text in every image of a folder (DTRB's demo.py, same flags and output)."""
from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

import torch
import torch.utils.data

from dataset import IMAGE_EXTENSIONS, RawDataset, list_skipped_files
from inference import Ensemble, add_ensemble_option, finish_reading_options, make_reader
from lexicon import add_lexicon_options
from pattern import add_pattern_options
from utils import (add_amp_options, add_common_options, add_min_aspect_option, add_vertical_option, check_amp_flags,
                   configure_cuda, pick_device, run_script)

DEMO_LOG = './log_demo_result.txt'
OUTPUT_FORMATS = ('.csv', '.jsonl')
SKIPPED_NAMES_SHOWN = 10


def parse_extensions(value: str) -> tuple[str, ...]:
    """``--extensions .jpg,.png,.gif``: each must be a file extension Pillow decodes."""
    from PIL import Image
    known = Image.registered_extensions()
    extensions = tuple(e.strip().lower() for e in value.split(',') if e.strip())
    for extension in extensions:
        if not extension.startswith('.') or extension not in known:
            raise argparse.ArgumentTypeError(f'{extension!r} is not an image file extension Pillow decodes '
                                             '(e.g. .jpg, .png, .gif, .webp, .bmp, .tif)')
    if not extensions:
        raise argparse.ArgumentTypeError('give at least one extension, e.g. .jpg,.png')
    return extensions


def skipped_line(root: str, extensions) -> str | None:
    """One closing line naming the files the folder holds that demo.py did not read."""
    skipped = list_skipped_files(root, extensions)
    if not skipped:
        return None
    shown = ', '.join(os.path.relpath(p, root) for p in skipped[:SKIPPED_NAMES_SHOWN])
    more = f' and {len(skipped) - SKIPPED_NAMES_SHOWN} more' if len(skipped) > SKIPPED_NAMES_SHOWN else ''
    return (f'skipped {len(skipped)} files that are not {"/".join(extensions)}: {shown}{more} '
            '(--extensions reads other image types, e.g. --extensions .jpg,.jpeg,.png,.gif,.webp)')


def write_results(path: str, results: list[tuple[str, str, float]]) -> None:
    """--output: a CSV or JSON-lines file of (path, prediction, confidence), written atomically."""
    buffer = io.StringIO()
    if path.lower().endswith('.csv'):
        writer = csv.writer(buffer, lineterminator='\n')
        writer.writerow(['path', 'prediction', 'confidence'])
        writer.writerows((p, text, f'{confidence:.6f}') for p, text, confidence in results)
    else:
        for p, text, confidence in results:
            buffer.write(json.dumps({'path': p, 'prediction': text, 'confidence': round(confidence, 6)},
                                    ensure_ascii=False) + '\n')
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8', newline='') as f:
        f.write(buffer.getvalue())
    os.replace(tmp, path)


def loader_workers(opt, num_images: int) -> int:
    """--workers, except for a folder that fits in one batch: worker processes would only add
    their start-up (about 0.2 s each time) to reading it, with the same results."""
    return 0 if num_images <= opt.batch_size else int(opt.workers)


def demo(opt) -> list[tuple[str, str, float]]:
    """Print and log (path, prediction, confidence) for each image; also return them."""
    from tqdm import tqdm
    recognizer = make_reader(opt, pick_device())
    demo_data = RawDataset(root=opt.image_folder, opt=opt, extensions=opt.extensions)
    demo_loader = torch.utils.data.DataLoader(
        demo_data, batch_size=opt.batch_size, shuffle=False, num_workers=loader_workers(opt, len(demo_data)),
        collate_fn=recognizer.collate, pin_memory=torch.cuda.is_available())

    results = []
    dashed_line = '-' * 80
    head = f'{"image_path":25s}\t{"predicted_labels":25s}\tconfidence score'
    with tqdm(total=len(demo_data), desc='demo', unit='img', file=sys.stderr, mininterval=1.0,
              disable=len(demo_loader) < 2) as bar:
        for image_tensors, image_path_list in demo_loader:
            predictions = recognizer.predict(image_tensors)
            lines = [f'{dashed_line}\n{head}\n{dashed_line}']
            for path, p in zip(image_path_list, predictions):
                lines.append(f'{path:25s}\t{p.text:25s}\t{p.confidence:0.4f}')
                results.append((path, p.text, p.confidence))
            tqdm.write('\n'.join(lines), file=sys.stdout)
            with open(DEMO_LOG, 'a', encoding='utf-8') as log:
                log.write('\n'.join(lines) + '\n')
            bar.update(len(image_path_list))
    if opt.output:
        write_results(opt.output, results)
    if isinstance(recognizer, Ensemble):  # after upstream's lines: which model read what
        print(recognizer.summary())
    closing = skipped_line(opt.image_folder, opt.extensions)
    if closing:
        print(closing)
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Recognise the text in a folder of word images.')
    parser.add_argument('--image_folder', required=True, help='path to image_folder which contains text images')
    add_common_options(parser, saved_model_required=True)
    parser.add_argument('--extensions', type=parse_extensions, default=IMAGE_EXTENSIONS,
                        help='comma-separated image file extensions to read (default .jpg,.jpeg,.png, as '
                             'upstream); the files left out are named in a closing line')
    parser.add_argument('--output', default='',
                        help='also write (path, prediction, confidence) to this .csv or .jsonl file')
    add_min_aspect_option(parser)
    add_vertical_option(parser)
    add_lexicon_options(parser)
    add_pattern_options(parser)
    add_ensemble_option(parser)
    add_amp_options(parser, 'faster where the hardware computes it (bfloat16 on CPUs with AVX512-BF16 '
                            'or AMX), and a few predictions may differ from float32 (bench/inference_speed.py '
                            'counts them)')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.output and not args.output.lower().endswith(OUTPUT_FORMATS):
        raise ValueError(f'--output {args.output!r}: expected a file name ending in .csv or .jsonl')
    check_amp_flags(args)
    opt = finish_reading_options(args)
    configure_cuda(opt)
    return demo(opt)


if __name__ == '__main__':
    run_script(main)
