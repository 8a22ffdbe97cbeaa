"""Grow a trained BiLSTM-CTC model's --hidden_size, keeping what it reads, to fine-tune a larger
model from it instead of training one from scratch.

    python widen_model.py --saved_model korean/models/ko_vgg_bilstm_ctc.pth --hidden_size 256 \
        --output saved_models/wide/start.pth
    python train.py ... --hidden_size 256 --saved_model saved_models/wide/start.pth

Both BiLSTM layers and the CTC layer's input grow; the feature extractor stays as it is. The
trained units keep their weights, the new ones start at random with zero outgoing weights, so
the grown model's predictions are the trained model's: the script checks that on a fixed batch
and writes nothing otherwise. The configuration (with the new --hidden_size) is written beside
the output, as train.py writes it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from model import Model, read_checkpoint, read_model_config, save_checkpoint, widen_hidden_size
from utils import MODEL_OPTION_DEFAULTS, finish_common_options, make_converter, run_script

CHECK_IMAGES = 4
LOGIT_TOLERANCE = 1e-4  # relative to the largest logit: the same sums in another order


def build_model(config: dict) -> Model:
    """The model a configuration describes, in eval mode, its options finished as the scripts
    finish them (the converter sets the class count)."""
    opt = finish_common_options(argparse.Namespace(**dict.fromkeys(MODEL_OPTION_DEFAULTS)), config)
    make_converter(opt)
    return Model(opt).eval()


def largest_difference(old: Model, new: Model, config: dict) -> float:
    """How far the grown model's logits are from the trained model's on a fixed batch,
    relative to the largest logit."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(CHECK_IMAGES, config['input_channel'], config['imgH'], config['imgW'],
                        generator=generator) * 2 - 1
    with torch.no_grad():
        reference, grown = old(images), new(images)
    return float((grown - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


def widen(saved_model: str, hidden_size: int, output: str, seed: int = 0) -> dict:
    """Widen ``saved_model`` to ``hidden_size`` into ``output`` (+ its .json); return a summary."""
    config = read_model_config(saved_model)
    if config is None:
        raise ValueError(f'{saved_model}: no model configuration beside it ({Path(saved_model).with_suffix(".json")} '
                         'or opt.txt); widen a checkpoint train.py wrote')
    config.pop('config_file')
    if config['Prediction'] != 'CTC' or config['SequenceModeling'] != 'BiLSTM':
        raise ValueError(f'{saved_model}: a {config["SequenceModeling"]}-{config["Prediction"]} model; '
                         'only BiLSTM-CTC models can be widened')
    state = read_checkpoint(saved_model)
    grown = widen_hidden_size(state, hidden_size, seed)
    new_config = dict(config, hidden_size=hidden_size)
    old_model, new_model = build_model(config), build_model(new_config)
    old_model.load_state_dict(state)
    new_model.load_state_dict({key.removeprefix('module.'): value for key, value in grown.items()})
    difference = largest_difference(old_model, new_model, config)
    if difference > LOGIT_TOLERANCE:
        raise ValueError(f'{output}: the widened model does not compute what {saved_model} computes '
                         f'(relative logit difference {difference:.1e}); nothing written')
    save_checkpoint(new_model, output, new_config)
    return {'output': output, 'old_hidden_size': config['hidden_size'], 'hidden_size': hidden_size,
            'parameters': sum(p.numel() for p in new_model.parameters()),
            'old_parameters': sum(p.numel() for p in old_model.parameters()), 'difference': difference}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Grow a trained BiLSTM-CTC model's hidden size, keeping its predictions.")
    parser.add_argument('--saved_model', required=True, help='the trained checkpoint (.pth with its .json)')
    parser.add_argument('--hidden_size', type=int, required=True, help='the new BiLSTM hidden size (larger)')
    parser.add_argument('--output', required=True, help='the widened checkpoint to write (.pth)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the new units\' random weights')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.output.endswith('.pth'):
        raise ValueError(f'--output {args.output!r}: expected a .pth file (its .json is written beside it)')
    summary = widen(args.saved_model, args.hidden_size, args.output, args.seed)
    print(f'wrote {summary["output"]}: --hidden_size {summary["old_hidden_size"]} -> {summary["hidden_size"]}, '
          f'{summary["old_parameters"]:,} -> {summary["parameters"]:,} parameters; checked on {CHECK_IMAGES} '
          f'images: the same logits within {summary["difference"]:.1e} (relative)')
    return summary


if __name__ == '__main__':
    sys.exit(0 if run_script(main) else 1)
