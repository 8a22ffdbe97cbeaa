"""The four-stage text recogniser (Transformation, FeatureExtraction, SequenceModeling,
Prediction) and the only checkpoint functions the scripts use.

Checkpoints are plain state dicts whose keys carry DTRB's ``module.`` prefix (upstream saves
from ``nn.DataParallel``); :func:`read_checkpoint` also accepts keys without it.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn
from torch.nn import init

from modules.feature_extraction import (
    RCNNFeatureExtractor,
    ResNetFeatureExtractor,
    VGGFeatureExtractor,
)
from modules.prediction import Attention
from modules.sequence_modeling import BidirectionalLSTM
from modules.transformation import TPSSpatialTransformer
from utils import InputError, decode_utf8

__all__ = [
    "Model",
    "STAGE_CHOICES",
    "CheckpointMismatchError",
    "LoadReport",
    "init_weights",
    "unwrap_model",
    "checkpoint_state_dict",
    "save_checkpoint",
    "read_checkpoint",
    "load_checkpoint",
    "describe_stages",
    "make_criterion",
    "baidu_ctc_cost",
    "baidu_ctc_loss_class",
    "config_path",
    "write_model_config",
    "read_model_config",
    "training_state_path",
    "save_training_state",
    "load_training_state",
    "restore_training_state",
    "widen_hidden_size",
]

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "module."

STAGE_CHOICES: dict[str, tuple[str, ...]] = {
    "Transformation": ("None", "TPS"),
    "FeatureExtraction": ("VGG", "RCNN", "ResNet"),
    "SequenceModeling": ("None", "BiLSTM"),
    "Prediction": ("CTC", "Attn"),
}

_FEATURE_EXTRACTORS = {
    "VGG": VGGFeatureExtractor,
    "RCNN": RCNNFeatureExtractor,
    "ResNet": ResNetFeatureExtractor,
}


def _option(opt: Any, name: str) -> Any:
    try:
        return getattr(opt, name)
    except AttributeError:
        raise AttributeError(f"the options given to Model lack '{name}' (--{name})") from None


def _stage_option(opt: Any, flag: str) -> str:
    value = _option(opt, flag)
    allowed = STAGE_CHOICES[flag]
    if value not in allowed:
        raise ValueError(f"--{flag} must be one of {', '.join(allowed)}; got {value!r}")
    return value


class Model(nn.Module):
    """A DTRB recogniser built from the option namespace ``opt``.

    Children (their names are the checkpoint prefixes): ``Transformation`` (only with
    --Transformation TPS), ``FeatureExtraction``, ``AdaptiveAvgPool``, ``SequenceModeling``
    (only with --SequenceModeling BiLSTM) and ``Prediction``.

    ``forward(input, text, is_train=True)`` maps images [B, input_channel, imgH, imgW] to
    logits: [B, T, num_class] for CTC (T = feature-map width, 24 for VGG and 26 for RCNN or
    ResNet at imgW 100) or [B, batch_max_length + 1, num_class] for Attn. ``text`` is only
    read by Attn training (teacher forcing).
    """

    def __init__(self, opt: Any) -> None:
        super().__init__()
        self.opt = opt
        self.stages = {flag: _stage_option(opt, flag) for flag in STAGE_CHOICES}
        img_size = (int(_option(opt, "imgH")), int(_option(opt, "imgW")))
        input_channel = int(_option(opt, "input_channel"))
        output_channel = int(_option(opt, "output_channel"))
        hidden_size = int(_option(opt, "hidden_size"))
        num_class = int(_option(opt, "num_class"))
        self.batch_max_length = int(_option(opt, "batch_max_length"))

        if self.stages["Transformation"] == "TPS":
            num_fiducial = int(_option(opt, "num_fiducial"))
            self.Transformation = TPSSpatialTransformer(
                num_fiducial, img_size, img_size, input_channel
            )
        else:
            logger.info("No Transformation module specified")

        extractor = _FEATURE_EXTRACTORS[self.stages["FeatureExtraction"]]
        self.FeatureExtraction = extractor(input_channel, output_channel)
        feature_size = output_channel
        # [B, W, C, H] -> [B, W, C, 1]: averages the feature map's remaining height.
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))

        if self.stages["SequenceModeling"] == "BiLSTM":
            self.SequenceModeling = nn.Sequential(
                BidirectionalLSTM(feature_size, hidden_size, hidden_size),
                BidirectionalLSTM(hidden_size, hidden_size, hidden_size),
            )
            feature_size = hidden_size
        else:
            logger.info("No SequenceModeling module specified")

        if self.stages["Prediction"] == "CTC":
            self.Prediction = nn.Linear(feature_size, num_class)
        else:
            self.Prediction = Attention(feature_size, hidden_size, num_class)

    @property
    def stage_name(self) -> str:
        """The combination as DTRB names it, e.g. ``TPS-ResNet-BiLSTM-Attn``."""
        return "-".join(self.stages[flag] for flag in STAGE_CHOICES)

    def forward(
        self, input: torch.Tensor, text: torch.Tensor | None = None, is_train: bool = True,
        stop_at_eos: bool = True,
    ) -> torch.Tensor:
        """Logits [B, T, num_class]. ``stop_at_eos`` lets Attn inference stop once every
        sequence has emitted [s]; validation turns it off because its loss reads every step."""
        if self.stages["Transformation"] == "TPS":
            input = self.Transformation(input)

        visual_feature = self.FeatureExtraction(input)  # [B, C, H, W]
        visual_feature = self.AdaptiveAvgPool(visual_feature.permute(0, 3, 1, 2))  # [B, W, C, 1]
        visual_feature = visual_feature.squeeze(3)  # [B, W, C]

        if self.stages["SequenceModeling"] == "BiLSTM":
            contextual_feature = self.SequenceModeling(visual_feature)  # [B, W, hidden]
        else:
            contextual_feature = visual_feature

        if self.stages["Prediction"] == "CTC":
            return self.Prediction(contextual_feature.contiguous())
        return self.Prediction(
            contextual_feature.contiguous(),
            text,
            is_train,
            batch_max_length=self.batch_max_length,
            stop_at_eos=stop_at_eos,
        )


# --------------------------------------------------------------------------- losses


def baidu_ctc_loss_class():
    """warp-ctc's CTCLoss for --baiduCTC (a third-party binding we do not ship); checked when
    the options are parsed, so a missing binding stops the run before any data loads."""
    try:
        from warpctc_pytorch import CTCLoss as BaiduCTCLoss  # optional binding
    except ImportError:
        raise SystemExit('--baiduCTC needs the warp-ctc binding (module warpctc_pytorch), which '
                         'is not installed; drop --baiduCTC to use torch.nn.CTCLoss') from None
    return BaiduCTCLoss


def ctc_loss_function(opt):
    if getattr(opt, 'baiduCTC', False):
        return baidu_ctc_loss_class()()
    return torch.nn.CTCLoss(zero_infinity=True)


def flat_targets(text: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """warp-ctc takes every label's indices concatenated in one 1-D IntTensor."""
    return torch.cat([row[:int(n)] for row, n in zip(text.cpu(), length.cpu())]).int()


def baidu_ctc_cost(criterion, preds, text, length) -> torch.Tensor:
    """Upstream's --baiduCTC loss: raw logits [T, B, C], flat targets, divided by the batch."""
    preds_size = torch.IntTensor([preds.size(1)] * preds.size(0))
    return criterion(preds.permute(1, 0, 2), flat_targets(text, length), preds_size,
                     length.cpu().int()) / preds.size(0)


def make_criterion(opt, device):
    if 'CTC' in opt.Prediction:
        return ctc_loss_function(opt).to(device)
    return torch.nn.CrossEntropyLoss(ignore_index=0).to(device)  # index 0 is [GO]


# --------------------------------------------------------------------------- weights


def init_weights(model: nn.Module) -> None:
    """DTRB's initialisation, in place, over ``model.named_parameters()`` in order.

    Parameters whose name contains ``localization_fc2`` keep their own init (the TPS head
    must start at the initial fiducial points). Otherwise every ``bias`` becomes 0 and every
    ``weight`` gets ``kaiming_normal_``, except 1-D weights (BatchNorm), which become 1.
    Parameters named neither (none exist in these models) are left alone.
    """
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "localization_fc2" in name:
                continue
            if "bias" in name:
                init.constant_(param, 0.0)
            elif "weight" in name:
                if param.dim() < 2:
                    # kaiming needs fan-in/fan-out; upstream catches its error and fills 1.
                    param.fill_(1)
                else:
                    init.kaiming_normal_(param)


# --------------------------------------------------------------------------- checkpoints


class CheckpointMismatchError(RuntimeError, InputError):
    """A checkpoint's tensors do not fit the model built from the options."""


@dataclass
class LoadReport:
    """What :func:`load_checkpoint` did. Keys are the model's names, without ``module.``.

    ``loaded``: keys copied from the checkpoint. ``skipped``: (key, reason) pairs for keys
    that were not copied, e.g. ``shape [38, 256] in the checkpoint vs [2401, 256] in the
    model``, ``not in the model`` (a checkpoint key) or ``not in the checkpoint`` (a model
    key that kept its current value).
    """

    path: str
    finetune: bool
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """A multi-line, human-readable account: counts first, then every skipped key."""
        mode = "fine-tuning, non-strict" if self.finetune else "strict"
        lines = [
            f"Loaded {len(self.loaded)} tensors from {self.path} ({mode}); "
            f"skipped {len(self.skipped)}."
        ]
        if self.skipped:
            lines.append("Skipped:")
            lines += [f"  {key}: {reason}" for key, reason in self.skipped]
        return "\n".join(lines)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod  # torch.compile's OptimizedModule
        else:
            return model


def checkpoint_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as DTRB stores it: every key prefixed ``module.``, tensors on CPU.

    Works the same whether or not ``model`` is wrapped; the prefix is never doubled.
    """
    state = unwrap_model(model).state_dict()
    # contiguous whatever layout training used (channels-last convolutions), as upstream saves
    return {CHECKPOINT_PREFIX + key: tensor.detach().cpu().contiguous() for key, tensor in state.items()}


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """Call ``write(handle)`` on a temporary file next to ``path``, then rename it over
    ``path``: an interruption (Ctrl-C, full disk) leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a checkpoint gets the usual permissions
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_name, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, config: Mapping[str, Any] | None = None
) -> None:
    """Write :func:`checkpoint_state_dict` to ``path`` atomically, creating parent folders.

    With ``config`` (``utils.model_config(opt)``), the model configuration is written first to
    :func:`config_path` beside it, so the ``.pth`` stays a plain state dict upstream DTRB
    loads while test.py, demo.py and export.py can rebuild the model without flags.
    """
    path = Path(path)
    if config is not None:
        write_model_config(config, config_path(path))
    state = checkpoint_state_dict(model)
    _write_atomically(path, lambda handle: torch.save(state, handle))


# --------------------------------------------------------------------------- model configuration

CONFIG_FORMAT = "dtrb-korean-model-config"
CONFIG_VERSION = 1
_CONFIG_TYPES: dict[str, type] = {
    "Transformation": str, "FeatureExtraction": str, "SequenceModeling": str, "Prediction": str,
    "num_fiducial": int, "imgH": int, "imgW": int, "rgb": bool, "input_channel": int,
    "output_channel": int, "hidden_size": int, "PAD": bool, "character": str,
    "sensitive": bool, "batch_max_length": int,
}


def config_path(checkpoint: str | os.PathLike) -> Path:
    """Where a checkpoint's configuration lives: ``a/b.pth`` -> ``a/b.json`` (``b.onnx`` too)."""
    return Path(checkpoint).with_suffix(".json")


def write_model_config(config: Mapping[str, Any], path: str | os.PathLike) -> None:
    """Write a model configuration (the keys of ``utils.MODEL_OPTION_DEFAULTS``) as JSON,
    atomically; the file also names its format and the class count for people reading it."""
    missing = [key for key in _CONFIG_TYPES if key not in config]
    if missing:
        raise ValueError(f"model configuration lacks {', '.join(missing)}")
    content = {"format": CONFIG_FORMAT, "version": CONFIG_VERSION}
    content.update({key: config[key] for key in _CONFIG_TYPES})
    content["num_class"] = len(config["character"]) + (1 if config["Prediction"] == "CTC" else 2)
    text = json.dumps(content, ensure_ascii=False, indent=1) + "\n"
    _write_atomically(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def _typed_config(values: Mapping[str, Any], source: Path, from_text: bool) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for key, kind in _CONFIG_TYPES.items():
        if key not in values:
            raise ValueError(f"{source}: the model configuration has no '{key}'")
        value = values[key]
        if from_text and kind is bool:
            if value not in ("True", "False"):
                raise ValueError(f"{source}: '{key}: {value}' is not True or False")
            value = value == "True"
        elif from_text and kind is int:
            try:
                value = int(value)
            except ValueError:
                raise ValueError(f"{source}: '{key}: {value}' is not an integer") from None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{source}: '{key}' is {value!r}; expected a {kind.__name__}")
        config[key] = value
    for flag, allowed in STAGE_CHOICES.items():
        if config[flag] not in allowed:
            raise ValueError(f"{source}: '{flag}' is {config[flag]!r}; expected one of {', '.join(allowed)}")
    config["config_file"] = str(source)
    return config


def _read_json_config(path: Path) -> dict[str, Any]:
    text = decode_utf8(path.read_bytes(), path, "a model configuration is UTF-8 JSON")
    try:
        content = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}, line {err.lineno}: not valid JSON ({err.msg}); expected the "
                         "model configuration train.py writes beside a checkpoint") from None
    if not isinstance(content, dict) or content.get("format") != CONFIG_FORMAT:
        raise ValueError(f"{path}: not a model configuration (expected a JSON object with "
                         f"\"format\": \"{CONFIG_FORMAT}\")")
    return _typed_config(content, path, from_text=False)


def _read_upstream_opt_txt(path: Path) -> dict[str, Any]:
    """The model options of the last block of a DTRB ``opt.txt`` (``name: value`` lines between
    dashed lines; train.py appends a block per run, so the last one describes the newest)."""
    text = decode_utf8(path.read_bytes(), path, "opt.txt is UTF-8 text")
    blocks = text.split("------------ Options -------------\n")
    values: dict[str, str] = {}
    for line in blocks[-1].split("\n"):
        name, sep, value = line.partition(": ")
        if sep and name in _CONFIG_TYPES:
            values[name] = value  # not stripped: an alphabet may end in a space
    return _typed_config(values, path, from_text=True)


def read_model_config(checkpoint: str | os.PathLike) -> dict[str, Any] | None:
    """The configuration to rebuild the model of ``checkpoint``: the JSON beside it
    (:func:`config_path`), else upstream's ``opt.txt`` in its folder, else None (a bare DTRB
    checkpoint: the user's flags describe it, as upstream). The dict holds the keys of
    ``utils.MODEL_OPTION_DEFAULTS`` plus ``config_file``, the file it came from. A malformed
    file raises ValueError naming it."""
    if not checkpoint:
        return None
    json_path = config_path(checkpoint)
    if json_path.is_file():
        return _read_json_config(json_path)
    opt_txt = Path(checkpoint).parent / "opt.txt"
    if opt_txt.is_file():
        return _read_upstream_opt_txt(opt_txt)
    return None


def _strip_prefix(key: str) -> str:
    return key[len(CHECKPOINT_PREFIX):] if key.startswith(CHECKPOINT_PREFIX) else key


def _load_torch_file(path: Path) -> Any:
    expected = "expected a file written by torch.save holding a state dict of tensors"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise ValueError(
                f"{path}: holds Python objects besides tensors, which are not loaded for "
                f"safety; {expected}. Re-save it with torch.save(model.state_dict(), ...). "
                f"Details: {str(err).splitlines()[0]}"
            ) from err
        raise ValueError(f"{path}: not a PyTorch checkpoint ({err}); {expected}") from err
    except Exception as err:  # arbitrary bytes fail inside the unpickler in arbitrary ways
        raise ValueError(
            f"{path}: not a PyTorch checkpoint ({type(err).__name__}: {err}); {expected}"
        ) from err


def _extract_state_dict(path: Path, content: Any) -> Mapping[str, Any]:
    if not isinstance(content, Mapping):
        raise ValueError(
            f"{path}: holds a {type(content).__name__}; expected a state dict (a dict of "
            f"tensor names to tensors), or a dict with a 'state_dict' or 'model' entry holding one"
        )
    for wrapper_key in ("state_dict", "model"):
        inner = content.get(wrapper_key)
        if isinstance(inner, Mapping):
            return inner
    return content


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint onto the CPU and return its state dict, keys without ``module.``.

    Accepts a file holding a state dict (keys with or without DTRB's ``module.`` prefix), or
    a dict with a ``state_dict`` or ``model`` entry holding one. Loading uses
    ``weights_only=True``: a file that needs arbitrary Python objects is refused.

    Raises FileNotFoundError if ``path`` does not exist, and ValueError naming the file if
    it is not a torch checkpoint, holds no state dict, or holds a non-tensor entry.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; expected a checkpoint file (.pth)")
    state = _extract_state_dict(path, _load_torch_file(path))
    if not state:
        raise ValueError(f"{path}: holds an empty state dict; expected tensors")
    result: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise ValueError(
                f"{path}: entry {key!r} holds a {type(value).__name__}; expected a state "
                f"dict mapping tensor names to tensors"
            )
        result[_strip_prefix(key)] = value
    return result


# --------------------------------------------------------------------------- growing a model

_LSTM_GATES = 4  # PyTorch stacks the input, forget, cell and output gates' rows in this order


def _grown(old: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator, bound: float) -> torch.Tensor:
    """A tensor of ``shape`` drawn U(-bound, bound), as PyTorch initialises LSTM and Linear layers."""
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).mul(bound).to(old.dtype)


def _widen_lstm_tensor(old: torch.Tensor, old_hidden: int, hidden: int, inputs: int,
                       generator: torch.Generator) -> torch.Tensor:
    """An LSTM weight [4 * old_hidden, old inputs] or bias [4 * old_hidden] grown to ``hidden``
    units per gate and ``inputs`` columns: each gate's trained rows keep their values and read no
    new input (zero columns); the new units' rows are drawn at random."""
    shape = (_LSTM_GATES * hidden,) if old.dim() == 1 else (_LSTM_GATES * hidden, inputs)
    new = _grown(old, shape, generator, hidden ** -0.5)
    for gate in range(_LSTM_GATES):
        trained = slice(gate * hidden, gate * hidden + old_hidden)
        if old.dim() == 2:
            new[trained] = 0
            new[trained, :old.shape[1]] = old[gate * old_hidden:(gate + 1) * old_hidden]
        else:
            new[trained] = old[gate * old_hidden:(gate + 1) * old_hidden]
    return new


def widen_hidden_size(state: Mapping[str, torch.Tensor], hidden_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Grow a BiLSTM-CTC checkpoint's ``--hidden_size`` (both BiLSTM layers and the CTC input)
    to ``hidden_size`` without changing what it computes, so a larger model can be fine-tuned
    from a trained smaller one instead of trained from scratch.

    ``state`` is a state dict (keys with or without ``module.``); the result has DTRB's keys.
    Every trained unit keeps its weights and reads no new unit; the new units' incoming weights
    are drawn as PyTorch initialises them (from ``seed``) and their outgoing weights are zero, so
    the grown model's logits equal the old ones until training moves them. Raises ValueError
    when the model is not BiLSTM with CTC or ``hidden_size`` is not larger.
    """
    weights, old_hidden = _weights_to_widen(state, {"SequenceModeling": "BiLSTM", "Prediction": "CTC"},
                                            "hidden_size", hidden_size, "SequenceModeling.0.linear.weight")
    generator = torch.Generator().manual_seed(seed)
    grown = dict(weights)
    for layer in (0, 1):
        prefix = f"SequenceModeling.{layer}."
        # the first layer reads the feature extractor (unchanged), the second the grown first
        inputs = weights[prefix + "rnn.weight_ih_l0"].shape[1] if layer == 0 else hidden_size
        for direction in ("", "_reverse"):
            for kind, width in (("weight_ih", inputs), ("weight_hh", hidden_size), ("bias_ih", 0), ("bias_hh", 0)):
                key = f"{prefix}rnn.{kind}_l0{direction}"
                grown[key] = _widen_lstm_tensor(weights[key], old_hidden, hidden_size, width, generator)
        # the projection reads [forward units, backward units]: each half keeps its trained columns
        old_w, old_b = weights[prefix + "linear.weight"], weights[prefix + "linear.bias"]
        bound = (2 * hidden_size) ** -0.5
        new_w = _grown(old_w, (hidden_size, 2 * hidden_size), generator, bound)
        new_w[:old_hidden] = 0
        new_w[:old_hidden, :old_hidden] = old_w[:, :old_hidden]
        new_w[:old_hidden, hidden_size:hidden_size + old_hidden] = old_w[:, old_hidden:]
        new_b = _grown(old_b, (hidden_size,), generator, bound)
        new_b[:old_hidden] = old_b
        grown[prefix + "linear.weight"], grown[prefix + "linear.bias"] = new_w, new_b
    old_w = weights["Prediction.weight"]
    new_w = torch.zeros(old_w.shape[0], hidden_size, dtype=old_w.dtype)
    new_w[:, :old_hidden] = old_w
    grown["Prediction.weight"] = new_w
    return {CHECKPOINT_PREFIX + key: value.contiguous() for key, value in grown.items()}


def widen_output_channel(state: Mapping[str, torch.Tensor], output_channel: int,
                         seed: int = 0) -> dict[str, torch.Tensor]:
    """Grow a VGG-BiLSTM checkpoint's ``--output_channel`` (every VGG convolution, c/8 to c wide,
    and the first BiLSTM's input) to ``output_channel`` without changing what it computes.

    As :func:`widen_hidden_size`: every trained channel keeps its weights and reads no new channel
    (zero weights), the new channels' weights are drawn as PyTorch initialises a convolution
    (from ``seed``), a new BatchNorm channel starts as PyTorch's (scale 1, shift 0, mean 0,
    variance 1), and the BiLSTM reads the new channels with zero weights, so the logits are the
    old ones until training moves them. Raises ValueError when the model is not VGG with BiLSTM
    or ``output_channel`` is not larger."""
    weights, _ = _weights_to_widen(state, {"FeatureExtraction": "VGG", "SequenceModeling": "BiLSTM"},
                                   "output_channel", output_channel, "FeatureExtraction.ConvNet.18.weight")
    generator = torch.Generator().manual_seed(seed)
    grown = dict(weights)
    # the layer shapes come from the extractor itself, built at the new width
    with torch.random.fork_rng():
        layers = VGGFeatureExtractor(weights["FeatureExtraction.ConvNet.0.weight"].shape[1], output_channel).ConvNet
    for index, layer in enumerate(layers):
        prefix = f"FeatureExtraction.ConvNet.{index}."
        if isinstance(layer, nn.BatchNorm2d):
            grown.update(_widened_batch_norm(weights, prefix, layer.num_features))
        if not isinstance(layer, nn.Conv2d):
            continue
        old_w = weights[prefix + "weight"]
        bound = layer.weight[0].numel() ** -0.5  # 1 / sqrt(fan-in), as PyTorch draws a convolution's
        new_w = _grown(old_w, tuple(layer.weight.shape), generator, bound)
        new_w[:old_w.shape[0]] = 0
        new_w[:old_w.shape[0], :old_w.shape[1]] = old_w
        grown[prefix + "weight"] = new_w
        if layer.bias is not None:
            old_b = weights[prefix + "bias"]
            new_b = _grown(old_b, tuple(layer.bias.shape), generator, bound)
            new_b[:old_b.shape[0]] = old_b
            grown[prefix + "bias"] = new_b
    for direction in ("", "_reverse"):
        key = f"SequenceModeling.0.rnn.weight_ih_l0{direction}"
        old_w = weights[key]
        new_w = torch.zeros(old_w.shape[0], output_channel, dtype=old_w.dtype)
        new_w[:, :old_w.shape[1]] = old_w
        grown[key] = new_w
    return {CHECKPOINT_PREFIX + key: value.contiguous() for key, value in grown.items()}


def _weights_to_widen(state: Mapping[str, torch.Tensor], stages_needed: dict[str, str], flag: str, size: int,
                      sized_by: str) -> tuple[dict[str, torch.Tensor], int]:
    """The state's tensors (keys without ``module.``) and its current ``flag`` size, read from the
    first dimension of ``sized_by``. ValueError unless the model has ``stages_needed`` and ``size``
    is larger."""
    weights = {_strip_prefix(key): value for key, value in state.items()}
    stages = describe_stages(weights)
    if any(stages.get(stage) != name for stage, name in stages_needed.items()):
        raise ValueError(f"only a {'-'.join(stages_needed.values())} model's --{flag} can be widened; this "
                         f"checkpoint is {'-'.join(str(stages.get(stage)) for stage in stages_needed)}")
    old = weights[sized_by].shape[0]
    if size <= old:
        raise ValueError(f"--{flag} {size}: the checkpoint's is {old}; expected a larger one")
    return weights, old


def _widened_batch_norm(weights: Mapping[str, torch.Tensor], prefix: str, channels: int) -> dict[str, torch.Tensor]:
    """A BatchNorm's tensors grown to ``channels``; the new channels start as PyTorch's."""
    starts = {"weight": 1.0, "bias": 0.0, "running_mean": 0.0, "running_var": 1.0}
    grown = {}
    for name, start in starts.items():
        old = weights[prefix + name]
        new = torch.full((channels,), start, dtype=old.dtype)
        new[:old.shape[0]] = old
        grown[prefix + name] = new
    return grown


def describe_stages(state: Mapping[str, Any]) -> dict[str, str]:
    """Guess the stage combination from state-dict keys (without ``module.``).

    Returns a dict with the four stage flags; a stage that cannot be recognised is '?'.
    """
    keys = list(state)

    def has_prefix(prefix: str) -> bool:
        return any(key.startswith(prefix) for key in keys)

    if has_prefix("FeatureExtraction.ConvNet.conv0_1."):
        features = "ResNet"
    elif any(".wgf_u." in key for key in keys if key.startswith("FeatureExtraction.")):
        features = "RCNN"
    elif has_prefix("FeatureExtraction.ConvNet.0."):
        features = "VGG"
    else:
        features = "?"
    if "Prediction.generator.weight" in state:
        prediction = "Attn"
    elif "Prediction.weight" in state:
        prediction = "CTC"
    else:
        prediction = "?"
    return {
        "Transformation": "TPS" if has_prefix("Transformation.") else "None",
        "FeatureExtraction": features,
        "SequenceModeling": "BiLSTM" if has_prefix("SequenceModeling.") else "None",
        "Prediction": prediction,
    }


def _stage_flags(stages: Mapping[str, str]) -> str:
    return " ".join(f"--{flag} {stages[flag]}" for flag in STAGE_CHOICES)


def _class_count(state: Mapping[str, Any]) -> int | None:
    for key in ("Prediction.weight", "Prediction.generator.weight"):
        if key in state:
            return int(state[key].shape[0])
    return None


def _shape(tensor: torch.Tensor) -> list[int]:
    return list(tensor.shape)


@dataclass
class _Comparison:
    matching: list[str]
    shape_mismatch: list[tuple[str, list[int], list[int]]]  # key, checkpoint, model
    missing: list[str]  # in the model, not in the checkpoint
    unexpected: list[str]  # in the checkpoint, not in the model


# Old PyTorch (< 0.4.1) BatchNorm had no counter; such checkpoints load with the model's.
_OPTIONAL_KEY_SUFFIX = "num_batches_tracked"


def _compare(checkpoint: Mapping[str, torch.Tensor], model_state: Mapping[str, torch.Tensor]) -> _Comparison:
    comparison = _Comparison([], [], [], [])
    for key, tensor in model_state.items():
        if key not in checkpoint:
            comparison.missing.append(key)
        elif checkpoint[key].shape != tensor.shape:
            comparison.shape_mismatch.append((key, _shape(checkpoint[key]), _shape(tensor)))
        else:
            comparison.matching.append(key)
    comparison.unexpected = [key for key in checkpoint if key not in model_state]
    return comparison


MAX_LISTED_KEYS = 20


def _mismatch_lines(comparison: _Comparison, required_missing: list[str]) -> list[str]:
    entries = [
        f"  {key}: shape {ckpt} in the checkpoint vs {model} in the model"
        for key, ckpt, model in comparison.shape_mismatch
    ]
    entries += [f"  {key}: in the model, not in the checkpoint" for key in required_missing]
    entries += [f"  {key}: in the checkpoint, not in the model" for key in comparison.unexpected]
    if len(entries) > MAX_LISTED_KEYS:
        hidden = len(entries) - MAX_LISTED_KEYS
        entries = entries[:MAX_LISTED_KEYS] + [f"  ... and {hidden} more"]
    return entries


def _mismatch_hints(
    checkpoint: Mapping[str, torch.Tensor],
    model_state: Mapping[str, torch.Tensor],
    model_stages: Mapping[str, str],
) -> list[str]:
    """Plain-language guesses at why the checkpoint does not fit, most useful first."""
    hints = []
    ckpt_stages = describe_stages(checkpoint)
    ckpt_classes, model_classes = _class_count(checkpoint), _class_count(model_state)
    same_prediction = ckpt_stages["Prediction"] == model_stages["Prediction"]
    if ckpt_classes is not None and model_classes is not None and ckpt_classes != model_classes:
        if same_prediction:
            hints.append(
                f"The checkpoint predicts {ckpt_classes} classes, the model {model_classes}: "
                f"was it trained with another --character? Use --FT to fine-tune onto a new "
                f"alphabet."
            )
        else:
            hints.append(f"The checkpoint predicts {ckpt_classes} classes, the model {model_classes}.")
    differing = [flag for flag in STAGE_CHOICES if ckpt_stages[flag] != model_stages[flag]]
    if differing == ["Prediction"]:
        hints.append(
            f"The checkpoint looks like a model with --Prediction {ckpt_stages['Prediction']}, "
            f"but the options ask for --Prediction {model_stages['Prediction']}."
        )
    elif differing:
        hints.append(
            f"The checkpoint looks like {_stage_flags(ckpt_stages)}; the options build "
            f"{_stage_flags(model_stages)}."
        )
    first_conv = next((k for k in checkpoint if k.startswith("FeatureExtraction.") and k.endswith("weight")), None)
    if first_conv in model_state and checkpoint[first_conv].dim() == 4 == model_state[first_conv].dim():
        ckpt_in, model_in = checkpoint[first_conv].shape[1], model_state[first_conv].shape[1]
        if ckpt_in != model_in:
            hints.append(
                f"The checkpoint takes {ckpt_in}-channel images, the model {model_in}: "
                f"check --rgb / --input_channel."
            )
    grid_key = "Transformation.GridGenerator.P_hat"
    if grid_key in checkpoint and grid_key in model_state:
        if checkpoint[grid_key].shape != model_state[grid_key].shape:
            hints.append(
                "The TPS grid differs in size: check --imgH, --imgW and --num_fiducial "
                "against the training options."
            )
    return hints


def _mismatch_message(
    path: Path,
    comparison: _Comparison,
    required_missing: list[str],
    checkpoint: Mapping[str, torch.Tensor],
    model_state: Mapping[str, torch.Tensor],
    model_stages: Mapping[str, str],
) -> str:
    problems = len(comparison.shape_mismatch) + len(required_missing) + len(comparison.unexpected)
    lines = [f"checkpoint {path} does not fit the model ({problems} mismatched keys):"]
    lines += _mismatch_lines(comparison, required_missing)
    lines += _mismatch_hints(checkpoint, model_state, model_stages)
    return "\n".join(lines)


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike, finetune: bool = False
) -> LoadReport:
    """Load the checkpoint at ``path`` into ``model`` (unwrapped first if wrapped).

    Strict (default): every model key must be in the checkpoint with the same shape and the
    checkpoint may hold no other keys (BatchNorm ``num_batches_tracked`` counters, absent
    from very old checkpoints, may be missing), otherwise CheckpointMismatchError explains
    what differs and nothing is loaded.
    ``finetune=True``: copy every tensor whose name and shape match, keep the model's own
    values for the rest and list them in the report; fails only if nothing matches.
    """
    path = Path(path)
    target = unwrap_model(model)
    checkpoint = read_checkpoint(path)
    model_state = target.state_dict()
    comparison = _compare(checkpoint, model_state)
    optional_missing = [k for k in comparison.missing if k.endswith(_OPTIONAL_KEY_SUFFIX)]
    required_missing = [k for k in comparison.missing if not k.endswith(_OPTIONAL_KEY_SUFFIX)]
    model_stages = getattr(target, "stages", None) or describe_stages(model_state)

    fits = not (comparison.shape_mismatch or required_missing or comparison.unexpected)
    if not finetune and not fits:
        raise CheckpointMismatchError(
            _mismatch_message(path, comparison, required_missing, checkpoint, model_state, model_stages)
        )
    if finetune and not comparison.matching:
        raise CheckpointMismatchError(
            f"checkpoint {path}: none of its {len(checkpoint)} tensors matches the model by "
            f"name and shape, so fine-tuning would start from scratch.\n"
            + "\n".join(_mismatch_hints(checkpoint, model_state, model_stages))
        )

    to_load = {key: checkpoint[key] for key in comparison.matching}
    result = target.load_state_dict(to_load, strict=False)
    if result.unexpected_keys:  # cannot happen: to_load only holds model keys
        raise RuntimeError(f"unexpected keys while loading {path}: {result.unexpected_keys}")

    report = LoadReport(path=str(path), finetune=finetune, loaded=list(comparison.matching))
    report.skipped += [
        (key, f"shape {ckpt} in the checkpoint vs {model_shape} in the model")
        for key, ckpt, model_shape in comparison.shape_mismatch
    ]
    report.skipped += [(key, "not in the checkpoint") for key in comparison.missing]
    report.skipped += [(key, "not in the model") for key in comparison.unexpected]
    if report.skipped:
        logger.info(report.summary())
    return report


# --------------------------------------------------------------------------- training state

TRAINING_STATE_FORMAT = "dtrb-korean-training-state"
TRAINING_STATE_VERSION = 1
TRAINING_STATE_NAME = "train_state.pth"


def training_state_path(path: str | os.PathLike) -> Path:
    """``--resume`` takes a state file or an experiment folder (its latest state)."""
    path = Path(path)
    return path / TRAINING_STATE_NAME if path.is_dir() else path


def _rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        # numpy's key array is stored as a tensor so the file loads with weights_only=True
        "numpy": (kind, torch.from_numpy(keys.astype("int64")), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    import random

    import numpy as np

    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: str | os.PathLike, *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
    scaler: Any, data: Any, progress: Mapping[str, Any], config: Mapping[str, Any],
    optimizer_name: str,
) -> None:
    """Write everything a run needs to continue exactly, atomically: the model (DTRB's
    ``module.`` keys), optimizer, LR scheduler and AMP scaler states, ``progress`` (iteration,
    best scores, the running training loss), the Python / numpy / torch / CUDA RNG states,
    ``data.state_dict()`` (where each dataset is in its epoch) and the model configuration."""
    state = {
        "format": TRAINING_STATE_FORMAT,
        "version": TRAINING_STATE_VERSION,
        "config": {key: config[key] for key in _CONFIG_TYPES},
        "optimizer_name": optimizer_name,
        "model": checkpoint_state_dict(model),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "data": data.state_dict(),
        "progress": dict(progress),
        "rng": _rng_state(),
    }
    _write_atomically(Path(path), lambda handle: torch.save(state, handle))


def load_training_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state written by :func:`save_training_state` (``path`` may be the experiment
    folder). Raises FileNotFoundError or ValueError naming the file."""
    path = training_state_path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--resume {path}: no such training state (train.py writes "
                                f"{TRAINING_STATE_NAME} in the experiment folder at each validation)")
    content = _load_torch_file(path)
    if not isinstance(content, Mapping) or content.get("format") != TRAINING_STATE_FORMAT:
        raise ValueError(f"{path}: not a training state written by train.py (a weights-only "
                         "checkpoint such as iter_N.pth resumes with --saved_model instead)")
    return dict(content)


def config_differences(trained: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    """Human-readable differences between two model configurations, one per flag."""
    differences = []
    for key in _CONFIG_TYPES:
        if trained[key] != given[key]:
            if key == "character":
                differences.append(f"--character: {len(trained[key])} characters then, "
                                   f"{len(given[key])} now")
            else:
                differences.append(f"--{key}: {trained[key]} then, {given[key]} now")
    return differences


def restore_training_state(
    state: Mapping[str, Any], *, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
    scaler: Any, data: Any, config: Mapping[str, Any], optimizer_name: str, source: str,
) -> dict[str, Any]:
    """Put a run back where :func:`save_training_state` left it and return its progress.
    Raises ValueError naming every difference when the model flags, the alphabet, the optimizer
    or the training data differ from the run being resumed."""
    differences = config_differences(state["config"], config)
    if state["optimizer_name"] != optimizer_name:
        differences.append(f"optimizer: {state['optimizer_name']} then, {optimizer_name} now")
    if differences:
        raise ValueError(f"--resume {source}: this command differs from the run being resumed "
                         f"({'; '.join(differences)}); resume with the run's own flags")
    data.load_state_dict(state["data"], source)
    weights = {_strip_prefix(key): value for key, value in state["model"].items()}
    unwrap_model(model).load_state_dict(weights)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    if state["scaler"] and scaler.is_enabled():  # a run may switch --amp on or off when resumed
        scaler.load_state_dict(state["scaler"])
    _set_rng_state(state["rng"])
    return dict(state["progress"])
