"""Export a trained model to ONNX (default) or TorchScript, and check the export against PyTorch.

    python export.py --saved_model saved_models/korean/best_accuracy.pth --output korean.onnx

The exported graph maps preprocessed images [B, C, imgH, imgW] (any batch size) to logits
[B, T, num_class]; decoding stays in Python (inference.decode_predictions), as for the .pth. The
model configuration is written beside the export (korean.json), so ``demo.py --saved_model
korean.onnx`` needs no model flag either. The export checks itself: the exported model and
PyTorch read the same images (--image_folder, else a fixed batch of synthetic ones) and the
command fails when any prediction differs.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from dataset import RawDataset
from inference import ExportableModel, OnnxRuntimeModel, Recognizer, decode_predictions
from model import read_model_config, write_model_config
from utils import add_common_options, finish_common_options, model_config, run_script

FORMATS = ('onnx', 'torchscript')
DEFAULT_OPSET = 17  # GridSample (TPS) needs 16; LSTM, loops unrolled, all exist by 17
CHECK_IMAGES = 8
LOGIT_TOLERANCE = 1e-3  # relative to the largest logit: float32 kernels differ in the last bits


def check_images(opt, recognizer: Recognizer) -> torch.Tensor:
    """The images the export is checked on, preprocessed: up to 8 of --image_folder, or a
    fixed batch of synthetic text-like images (bright background, dark strokes)."""
    if opt.image_folder:
        data = RawDataset(opt.image_folder, opt)
        if len(data):
            return recognizer.collate([data[i] for i in range(min(CHECK_IMAGES, len(data)))])[0]
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(CHECK_IMAGES, opt.input_channel, opt.imgH, opt.imgW, generator=generator)
    strokes = torch.rand(images.shape, generator=generator) > 0.8
    return torch.where(strokes, -images, images * 0.5 + 0.5)  # in the [-1, 1] range training used


def export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, output: Path, opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # the tracer's notes on Python loops it unrolls
        torch.onnx.export(wrapper, (example,), str(output), input_names=['image'], output_names=['logits'],
                          dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}},
                          opset_version=opset, dynamo=False)


def export_torchscript(wrapper: torch.nn.Module, example: torch.Tensor, output: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    traced.save(str(output))


def compare(reference: torch.Tensor, exported: torch.Tensor, recognizer: Recognizer, output: Path) -> float:
    """Fail unless the exported model predicts what PyTorch predicts; return the largest logit
    difference relative to the largest logit."""
    if exported.shape != reference.shape:
        raise ValueError(f'{output}: the export gives logits of shape {tuple(exported.shape)}, PyTorch '
                         f'{tuple(reference.shape)}')
    expected = decode_predictions(reference, recognizer.converter, recognizer.opt)
    got = decode_predictions(exported, recognizer.converter, recognizer.opt)
    difference = float((exported - reference).abs().max() / reference.abs().max().clamp_min(1e-12))
    mismatched = [(e.text, g.text) for e, g in zip(expected, got) if e.text != g.text]
    if mismatched or difference > LOGIT_TOLERANCE:
        raise ValueError(f'{output}: the export does not predict what PyTorch predicts ({len(mismatched)} '
                         f'of {len(expected)} texts differ, e.g. {mismatched[:3]}; largest relative logit '
                         f'difference {difference:.2e}); the file is not kept')
    return difference


def export_model(opt) -> dict:
    """Export opt.saved_model to opt.output in opt.format, check it, write its configuration
    beside it, and return what was done (for the summary)."""
    recognizer = Recognizer(opt, torch.device('cpu'))
    wrapper = ExportableModel(recognizer.model, opt)
    images = check_images(opt, recognizer)
    output = Path(opt.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    # written beside the target under a temporary name, renamed only once it checked out
    fd, tmp_name = tempfile.mkstemp(prefix=f'.{output.name}.', suffix=output.suffix, dir=output.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.no_grad():
            reference = wrapper(images)
            if opt.format == 'onnx':
                export_onnx(wrapper, images[:2], tmp, opt.opset)
                exported = OnnxRuntimeModel(tmp)(images)
            else:
                export_torchscript(wrapper, images[:2], tmp)
                exported = torch.jit.load(str(tmp))(images)
        difference = compare(reference, exported, recognizer, output)
        write_model_config(model_config(opt), output.with_suffix('.json'))
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    return {'output': str(output), 'config': str(output.with_suffix('.json')), 'images': len(images),
            'difference': difference, 'size_mb': output.stat().st_size / 2 ** 20}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description='Export a trained text recogniser to ONNX or TorchScript.')
    parser.add_argument('--output', required=True, help='the file to write (.onnx, or .pt for TorchScript)')
    parser.add_argument('--format', choices=FORMATS, default='onnx', help='onnx (default) or torchscript')
    parser.add_argument('--opset', type=int, default=DEFAULT_OPSET, help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument('--image_folder', default='',
                        help='images to check the export on (default: a fixed synthetic batch)')
    add_common_options(parser, saved_model_required=True)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.saved_model.lower().endswith('.onnx'):
        raise ValueError(f'--saved_model {args.saved_model!r}: give the PyTorch checkpoint (.pth) to export')
    opt = finish_common_options(args, read_model_config(args.saved_model))
    opt.num_gpu = 0
    summary = export_model(opt)
    print(f'wrote {summary["output"]} ({summary["size_mb"]:.1f} MB, {opt.format}) and {summary["config"]}; '
          f'checked on {summary["images"]} images: the same predictions as PyTorch, logits within '
          f'{summary["difference"]:.1e} (relative)')
    return summary


if __name__ == '__main__':
    sys.exit(0 if run_script(main) else 1)
