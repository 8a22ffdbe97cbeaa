"""Grow a trained model's --hidden_size (BiLSTM-CTC) and / or --output_channel (VGG-BiLSTM),
keeping what it reads, to fine-tune a larger model from it instead of training one from scratch.

    python widen_model.py --saved_model korean/models/ko_vgg_bilstm_ctc.pth --output_channel 256 \
        --hidden_size 256 --output saved_models/wide/start.pth
    python train.py ... --output_channel 256 --hidden_size 256 --saved_model saved_models/wide/start.pth

--hidden_size grows both BiLSTM layers and the CTC layer's input; --output_channel grows every VGG
convolution (c/8 to c channels) and the first BiLSTM's input. The trained units keep their
weights, the new ones start at random with zero outgoing weights, so the grown model's
predictions are the trained model's: the script checks that on a fixed batch and writes nothing
otherwise. The configuration (with the new sizes) is written beside the output, as train.py
writes it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from inference import run_model
from model import Model, read_checkpoint, read_model_config, save_checkpoint, widen_hidden_size, widen_output_channel
from utils import MODEL_OPTION_DEFAULTS, finish_common_options, make_converter, run_script

CHECK_IMAGES = 4
LOGIT_TOLERANCE = 1e-4  # relative to the largest logit: the same sums in another order


def build_model(config: dict) -> tuple[Model, argparse.Namespace]:
    """The model a configuration describes, in eval mode, and its options, finished as the
    scripts finish them (the converter sets the class count)."""
    opt = finish_common_options(argparse.Namespace(**dict.fromkeys(MODEL_OPTION_DEFAULTS)), config)
    make_converter(opt)
    return Model(opt).eval(), opt


def largest_difference(old: Model, new: Model, opt: argparse.Namespace) -> float:
    """How far the grown model's logits are from the trained model's on a fixed batch, read as
    demo.py reads (every decoding step for Attn), relative to the largest logit."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(CHECK_IMAGES, opt.input_channel, opt.imgH, opt.imgW, generator=generator) * 2 - 1
    with torch.no_grad():
        reference = run_model(old, images, opt, stop_at_eos=False)
        grown = run_model(new, images, opt, stop_at_eos=False)
    return float((grown - reference).abs().max() / reference.abs().max().clamp_min(1e-12))


def widen(saved_model: str, output: str, hidden_size: int | None = None, output_channel: int | None = None,
          seed: int = 0) -> dict:
    """Widen ``saved_model`` to ``hidden_size`` and / or ``output_channel`` into ``output`` (+ its
    .json); return a summary."""
    config = read_model_config(saved_model)
    if config is None:
        raise ValueError(f'{saved_model}: no model configuration beside it ({Path(saved_model).with_suffix(".json")} '
                         'or opt.txt); widen a checkpoint train.py wrote')
    config.pop('config_file')
    if hidden_size is not None and (config['Prediction'] != 'CTC' or config['SequenceModeling'] != 'BiLSTM'):
        raise ValueError(f'{saved_model}: a {config["SequenceModeling"]}-{config["Prediction"]} model; '
                         'only BiLSTM-CTC models can be widened')
    if output_channel is not None and (config['FeatureExtraction'] != 'VGG' or config['SequenceModeling'] != 'BiLSTM'):
        raise ValueError(f'{saved_model}: a {config["FeatureExtraction"]}-{config["SequenceModeling"]} model; '
                         'only VGG-BiLSTM models can have their --output_channel widened')
    state = read_checkpoint(saved_model)
    grown, new_config = state, dict(config)
    if output_channel is not None:
        grown = widen_output_channel(grown, output_channel, seed + 1)
        new_config['output_channel'] = output_channel
    if hidden_size is not None:
        grown = widen_hidden_size(grown, hidden_size, seed)
        new_config['hidden_size'] = hidden_size
    (old_model, opt), (new_model, _) = build_model(config), build_model(new_config)
    old_model.load_state_dict(state)
    new_model.load_state_dict({key.removeprefix('module.'): value for key, value in grown.items()})
    difference = largest_difference(old_model, new_model, opt)
    if difference > LOGIT_TOLERANCE:
        raise ValueError(f'{output}: the widened model does not compute what {saved_model} computes '
                         f'(relative logit difference {difference:.1e}); nothing written')
    save_checkpoint(new_model, output, new_config)
    return {'output': output, 'changes': [f'--{name} {config[name]} -> {new_config[name]}'
                                          for name in ('output_channel', 'hidden_size') if new_config[name] != config[name]],
            'parameters': sum(p.numel() for p in new_model.parameters()),
            'old_parameters': sum(p.numel() for p in old_model.parameters()), 'difference': difference}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Grow a trained model's hidden size and / or output channels, "
                                                 "keeping its predictions.")
    parser.add_argument('--saved_model', required=True, help='the trained checkpoint (.pth with its .json)')
    parser.add_argument('--hidden_size', type=int, help='the new BiLSTM hidden size (larger; BiLSTM-CTC models)')
    parser.add_argument('--output_channel', type=int,
                        help='the new feature-extractor width (larger; VGG-BiLSTM models): every convolution grows')
    parser.add_argument('--output', required=True, help='the widened checkpoint to write (.pth)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the new units\' random weights')
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.output.endswith('.pth'):
        raise ValueError(f'--output {args.output!r}: expected a .pth file (its .json is written beside it)')
    if args.hidden_size is None and args.output_channel is None:
        raise ValueError('nothing to widen: give --hidden_size, --output_channel or both, larger than the model\'s')
    summary = widen(args.saved_model, args.output, args.hidden_size, args.output_channel, args.seed)
    print(f'wrote {summary["output"]}: {", ".join(summary["changes"])}, '
          f'{summary["old_parameters"]:,} -> {summary["parameters"]:,} parameters; checked on {CHECK_IMAGES} '
          f'images: the same logits within {summary["difference"]:.1e} (relative)')
    return summary


if __name__ == '__main__':
    sys.exit(0 if run_script(main) else 1)
