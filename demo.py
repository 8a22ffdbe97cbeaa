"""Recognise the text in every image of a folder (DTRB's demo.py, same flags and output)."""
from __future__ import annotations

import argparse

import torch
import torch.utils.data

from dataset import AlignCollate, RawDataset
from model import read_model_config
from inference import decode_predictions, load_model_for_inference, run_model
from utils import (add_common_options, configure_cuda, finish_common_options, make_converter, pick_device,
                   run_script)

DEMO_LOG = './log_demo_result.txt'


def demo(opt) -> list[tuple[str, str, float]]:
    """Print and log (path, prediction, confidence) for each image; also return them."""
    device = pick_device()
    converter = make_converter(opt)
    model = load_model_for_inference(opt, device)
    demo_data = RawDataset(root=opt.image_folder, opt=opt)
    demo_loader = torch.utils.data.DataLoader(
        demo_data, batch_size=opt.batch_size, shuffle=False, num_workers=int(opt.workers),
        collate_fn=AlignCollate(imgH=opt.imgH, imgW=opt.imgW, keep_ratio_with_pad=opt.PAD),
        pin_memory=torch.cuda.is_available())

    results = []
    dashed_line = '-' * 80
    head = f'{"image_path":25s}\t{"predicted_labels":25s}\tconfidence score'
    with torch.no_grad():
        for image_tensors, image_path_list in demo_loader:
            preds = run_model(model, image_tensors.to(device), opt)
            predictions = decode_predictions(preds, converter, opt)
            lines = [f'{dashed_line}\n{head}\n{dashed_line}']
            for path, p in zip(image_path_list, predictions):
                lines.append(f'{path:25s}\t{p.text:25s}\t{p.confidence:0.4f}')
                results.append((path, p.text, p.confidence))
            print('\n'.join(lines))
            with open(DEMO_LOG, 'a', encoding='utf-8') as log:
                log.write('\n'.join(lines) + '\n')
    return results


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Recognise the text in a folder of word images.')
    parser.add_argument('--image_folder', required=True, help='path to image_folder which contains text images')
    add_common_options(parser, saved_model_required=True)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    opt = finish_common_options(args, read_model_config(args.saved_model))
    configure_cuda(opt)
    return demo(opt)


if __name__ == '__main__':
    run_script(main)
