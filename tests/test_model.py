"""Tests for model.py and modules/: DTRB checkpoint layout, forward shapes, numerics and
checkpoint loading as a user meets them (real files in tmp_path, real rendered images)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from model import (  # noqa: E402
    CheckpointMismatchError,
    LoadReport,
    Model,
    checkpoint_state_dict,
    init_weights,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from modules.feature_extraction import GRCL  # noqa: E402
from modules.prediction import EOS_INDEX, Attention  # noqa: E402
from modules.transformation import (  # noqa: E402
    GridGenerator,
    TPSSpatialTransformer,
    initial_fiducial_points,
    target_fiducial_points,
)

torch.set_num_threads(1)

SHARED_MANIFEST = Path(__file__).resolve().parents[2] / "shared/spec/state_dict_keys.json"
LOCAL_MANIFEST = Path(__file__).resolve().parent / "data/state_dict_keys.json"
MANIFEST_PATH = SHARED_MANIFEST if SHARED_MANIFEST.exists() else LOCAL_MANIFEST
MANIFEST: dict[str, list] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))

KOREAN_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")

ALL_COMBOS = [
    f"{t}-{f}-{s}-{p}"
    for t in ("None", "TPS")
    for f in ("VGG", "RCNN", "ResNet")
    for s in ("None", "BiLSTM")
    for p in ("CTC", "Attn")
]


def make_opt(combo: str, **overrides) -> argparse.Namespace:
    """DTRB's option namespace for a combination, at DTRB's default sizes unless overridden."""
    transformation, features, sequence, prediction = combo.split("-")
    opt = argparse.Namespace(
        Transformation=transformation,
        FeatureExtraction=features,
        SequenceModeling=sequence,
        Prediction=prediction,
        num_fiducial=20,
        imgH=32,
        imgW=100,
        input_channel=1,
        output_channel=512,
        hidden_size=256,
        num_class=37 if prediction == "CTC" else 38,
        batch_max_length=25,
    )
    for name, value in overrides.items():
        setattr(opt, name, value)
    return opt


def small_model(combo: str, seed: int = 0, **overrides) -> Model:
    torch.manual_seed(seed)
    sizes = dict(output_channel=32, hidden_size=32, num_fiducial=6)
    sizes.update(overrides)
    return Model(make_opt(combo, **sizes))


def render_korean(text: str, size: tuple[int, int] = (100, 32)) -> torch.Tensor:
    """Render ``text`` in black on white with a real Korean font; return [1, 1, H, W] in [-1, 1]."""
    assert KOREAN_FONT.exists(), f"Korean font missing: {KOREAN_FONT} (install fonts-nanum)"
    width, height = size
    image = Image.new("L", size, 255)
    font = ImageFont.truetype(str(KOREAN_FONT), 22)
    ImageDraw.Draw(image).text((4, 3), text, fill=0, font=font)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
    return ((pixels - 0.5) / 0.5).view(1, 1, height, width)


# --------------------------------------------------------------------------- layout


def test_manifest_covers_all_24_combinations():
    assert sorted(MANIFEST) == sorted(ALL_COMBOS)


@pytest.mark.parametrize("combo", ALL_COMBOS)
def test_state_dict_matches_dtrb_checkpoint_layout(combo):
    # Built on the meta device: names, shapes and dtypes are what matter here, not values.
    with torch.device("meta"):
        model = Model(make_opt(combo))
    got = [
        ["module." + key, list(tensor.shape), str(tensor.dtype).removeprefix("torch.")]
        for key, tensor in model.state_dict().items()
    ]
    assert got == MANIFEST[combo]


def test_checkpoint_state_dict_of_real_default_model_matches_manifest():
    torch.manual_seed(0)
    model = Model(make_opt("TPS-ResNet-BiLSTM-Attn"))
    state = checkpoint_state_dict(model)
    got = [[k, list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in state.items()]
    assert got == MANIFEST["TPS-ResNet-BiLSTM-Attn"]
    assert all(v.device.type == "cpu" for v in state.values())


@pytest.mark.parametrize(
    "flag, value",
    [
        ("Transformation", "tps"),
        ("FeatureExtraction", "VGG16"),
        ("SequenceModeling", "LSTM"),
        ("Prediction", "Softmax"),
    ],
)
def test_unknown_stage_name_raises_naming_flag_and_choices(flag, value):
    opt = make_opt("None-VGG-None-CTC", **{flag: value})
    with pytest.raises(ValueError) as excinfo:
        Model(opt)
    message = str(excinfo.value)
    assert f"--{flag}" in message and repr(value) in message
    allowed = {
        "Transformation": ["None", "TPS"],
        "FeatureExtraction": ["VGG", "RCNN", "ResNet"],
        "SequenceModeling": ["None", "BiLSTM"],
        "Prediction": ["CTC", "Attn"],
    }[flag]
    assert all(choice in message for choice in allowed)


def test_optional_stages_are_absent_when_not_selected():
    model = small_model("None-VGG-None-CTC")
    assert not hasattr(model, "Transformation") and not hasattr(model, "SequenceModeling")
    assert isinstance(model.Prediction, nn.Linear)
    assert model.Prediction.in_features == 32  # output_channel when there is no BiLSTM
    model = small_model("TPS-VGG-BiLSTM-Attn", hidden_size=24)
    assert isinstance(model.Transformation, TPSSpatialTransformer)
    assert model.Prediction.attention_cell.i2h.in_features == 24  # hidden_size after a BiLSTM


# --------------------------------------------------------------------------- forward


@pytest.mark.parametrize("combo", ALL_COMBOS)
def test_forward_shapes(combo):
    model = small_model(combo)
    images = torch.randn(2, 1, 32, 100)
    steps = 24 if "-VGG-" in combo else 26  # the feature map's width at imgW 100
    if combo.endswith("CTC"):
        outputs = [model(images, None)]
        expected_shape = (2, steps, 37)
    else:
        text = torch.randint(2, 38, (2, 26))
        text[:, 0] = 0  # [GO]
        outputs = [model(images, text, is_train=True)]
        model.eval()
        with torch.no_grad():
            outputs.append(model(images, text, is_train=False))
        expected_shape = (2, 26, 38)
    for logits in outputs:
        assert logits.shape == expected_shape and logits.isfinite().all()


def test_modules_follow_input_dtype_float64():
    model = small_model("TPS-RCNN-BiLSTM-Attn").double()
    images = torch.randn(2, 1, 32, 100, dtype=torch.float64)
    text = torch.zeros(2, 26, dtype=torch.long)
    assert model(images, text, is_train=True).dtype == torch.float64
    model.eval()
    with torch.no_grad():
        out = model(images, text, is_train=False)
    assert out.dtype == torch.float64 and out.isfinite().all()


def test_forward_runs_under_cpu_autocast():
    model = small_model("TPS-VGG-BiLSTM-Attn").eval()
    images = torch.randn(2, 1, 32, 100)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(images, None, is_train=False)
    assert out.shape == (2, 26, 38) and out.float().isfinite().all()


# --------------------------------------------------------------------------- init


def test_init_weights_follows_dtrb_rules():
    model = small_model("TPS-RCNN-BiLSTM-Attn")
    fc2 = model.Transformation.LocalizationNetwork.localization_fc2
    fc2_before = (fc2.weight.clone(), fc2.bias.clone())
    torch.manual_seed(1)
    init_weights(model)
    assert torch.equal(fc2.weight, fc2_before[0]) and torch.equal(fc2.bias, fc2_before[1])
    assert torch.equal(fc2.weight, torch.zeros_like(fc2.weight))  # TPS starts at its fiducials
    for name, param in model.named_parameters():
        if "localization_fc2" in name:
            continue
        if "bias" in name:
            assert torch.count_nonzero(param) == 0, name
        elif param.dim() == 1:
            assert torch.equal(param, torch.ones_like(param)), name
    # kaiming_normal_ (fan_in, gain sqrt(2)) on a weight with enough elements to measure
    conv = model.Transformation.LocalizationNetwork.conv[12].weight  # [512, 256, 3, 3]
    expected_std = (2.0 / (256 * 9)) ** 0.5
    assert abs(conv.std().item() / expected_std - 1) < 0.02
    assert abs(conv.mean().item()) < 0.1 * expected_std

    # Same seed, same weights: training runs are reproducible.
    other = small_model("TPS-RCNN-BiLSTM-Attn")
    torch.manual_seed(1)
    init_weights(other)
    for (name, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- TPS


def test_grid_generator_buffers_follow_the_contract():
    generator = GridGenerator(6, (2, 3))
    buffers = dict(generator.named_buffers())
    assert set(buffers) == {"inv_delta_C", "P_hat"}
    assert buffers["inv_delta_C"].dtype == torch.float32 and buffers["P_hat"].shape == (6, 9)
    target = target_fiducial_points(6)
    assert np.allclose(target, [[-1, -1], [0, -1], [1, -1], [-1, 1], [0, 1], [1, 1]])
    # Pixel centres (2i+1)/size - 1, x varying fastest; then r^2 log(r + 1e-6).
    xs, ys = [-2 / 3, 0.0, 2 / 3], [-0.5, 0.5]
    for row, (y, x) in enumerate((y, x) for y in ys for x in xs):
        r = np.hypot(x - target[:, 0], y - target[:, 1])
        expected = np.concatenate([[1.0, x, y], r**2 * np.log(r + 1e-6)])
        assert np.allclose(generator.P_hat[row].numpy(), expected, atol=1e-6), row


def test_tps_interpolates_fiducial_points_exactly():
    num_fiducial = 20
    generator = GridGenerator(num_fiducial, (32, 100))
    target = target_fiducial_points(num_fiducial)
    rng = np.random.default_rng(0)
    c_prime = target * 0.7 + rng.normal(0, 0.1, target.shape)
    transform = generator.inv_delta_C.double().numpy() @ np.concatenate([c_prime, np.zeros((3, 2))])
    # Evaluate the spline at the fiducial points themselves: R_ij = r^2 log r, R_ii = 0.
    r = np.linalg.norm(target[:, None] - target[None], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        radial = np.where(r > 0, r**2 * np.log(r), 0.0)
    basis = np.concatenate([np.ones((num_fiducial, 1)), target, radial], axis=1)
    assert np.allclose(basis @ transform, c_prime, atol=1e-4)


def test_tps_reproduces_affine_maps_on_the_pixel_grid():
    generator = GridGenerator(20, (8, 25))
    target = torch.from_numpy(target_fiducial_points(20)).float()
    matrix = torch.tensor([[0.8, 0.1], [-0.05, 0.5]])
    shift = torch.tensor([0.1, -0.2])
    c_prime = (target @ matrix.T + shift).unsqueeze(0)
    grid = generator.build_P_prime(c_prime)[0]  # [8*25, 2]
    pixels = generator.P_hat[:, 1:3]
    assert torch.allclose(grid, pixels @ matrix.T + shift, atol=1e-5)


def _bilinear_matrix(size: int) -> np.ndarray:
    """Rows that resample a line of ``size`` pixels at the pixel centres (2i+1)/size - 1
    mapped with align_corners=True, i.e. at source position (i + 0.5) * (size - 1) / size."""
    matrix = np.zeros((size, size))
    for i in range(size):
        position = (i + 0.5) * (size - 1) / size
        left = int(np.floor(position))
        frac = position - left
        matrix[i, left] += 1 - frac
        if frac:
            matrix[i, left + 1] += frac
    return matrix


def test_tps_with_target_fiducials_resamples_a_rendered_word_in_place():
    image = render_korean("한국어 인식")
    stn = TPSSpatialTransformer(20, (32, 100), (32, 100), 1).eval()
    with torch.no_grad():
        stn.LocalizationNetwork.localization_fc2.bias.copy_(
            torch.from_numpy(target_fiducial_points(20)).float().view(-1)
        )
        rectified = stn(image)
    expected = _bilinear_matrix(32) @ image[0, 0].double().numpy() @ _bilinear_matrix(100).T
    assert np.abs(rectified[0, 0].double().numpy() - expected).max() < 1e-3
    # and it is (almost) the image itself: bilinear, border padding, align_corners=True
    assert (rectified - image).abs().mean() < 0.1


def test_untrained_localisation_outputs_initial_fiducials():
    stn = TPSSpatialTransformer(20, (32, 100), (32, 100), 1).eval()
    images = torch.cat([render_korean("가나다"), render_korean("텍스트")])
    with torch.no_grad():
        points = stn.LocalizationNetwork(images)
    expected = torch.from_numpy(initial_fiducial_points(20)).float()
    assert torch.equal(points[0], expected) and torch.equal(points[1], expected)
    assert torch.allclose(expected[:10, 1], torch.linspace(0, -1, 10))  # top row y: 0 -> -1
    assert torch.allclose(expected[10:, 1], torch.linspace(1, 0, 10))  # bottom row y: 1 -> 0


# --------------------------------------------------------------------------- Attn decoding


def _contract_attention_step(cell, hidden, features, prev_chars, num_class):
    """One decoding step written straight from the contract (section 5), as a reference."""
    energy = cell.score(torch.tanh(cell.i2h(features) + cell.h2h(hidden[0]).unsqueeze(1)))
    alpha = torch.softmax(energy, dim=1)  # over the T encoder steps
    context = (alpha * features).sum(dim=1)
    onehot = nn.functional.one_hot(prev_chars, num_class).float()
    return cell.rnn(torch.cat([context, onehot], dim=1), hidden)


def test_attention_decoding_follows_the_contract_formulas():
    torch.manual_seed(0)
    num_class, steps = 7, 6
    decoder = Attention(12, 10, num_class).eval()
    init_weights(decoder)  # larger weights than the default init: decisions vary per step
    features = torch.randn(3, 9, 12)
    text = torch.randint(2, num_class, (3, steps))
    text[:, 0] = 0
    with torch.no_grad():
        forced = decoder(features, text, is_train=True, batch_max_length=steps - 1)
        greedy = decoder(features, None, is_train=False, batch_max_length=steps - 1, stop_at_eos=False)

        hidden = (torch.zeros(3, 10), torch.zeros(3, 10))
        reference_forced = []
        for step in range(steps):  # teacher forcing: text[:, i] at step i
            hidden = _contract_attention_step(decoder.attention_cell, hidden, features, text[:, step], num_class)
            reference_forced.append(decoder.generator(hidden[0]))
        hidden = (torch.zeros(3, 10), torch.zeros(3, 10))
        chars = torch.zeros(3, dtype=torch.long)  # [GO], then the previous argmax
        reference_greedy = []
        for step in range(steps):
            hidden = _contract_attention_step(decoder.attention_cell, hidden, features, chars, num_class)
            reference_greedy.append(decoder.generator(hidden[0]))
            chars = reference_greedy[-1].argmax(1)
    assert torch.allclose(forced, torch.stack(reference_forced, 1), atol=1e-6)
    assert torch.allclose(greedy, torch.stack(reference_greedy, 1), atol=1e-6)
    assert len({tuple(row) for row in greedy.argmax(2).tolist()}) > 1  # not a degenerate case


def test_grcl_follows_the_contract_formulas():
    torch.manual_seed(0)
    layer = GRCL(4, 6, num_iteration=5, kernel_size=3, pad=1)
    for module in layer.modules():  # non-trivial BatchNorm statistics, used in eval mode
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.5, 0.5)
    layer.eval()
    u = torch.randn(2, 4, 5, 7)
    with torch.no_grad():
        x = torch.relu(layer.BN_x_init(layer.wf_u(u)))
        for unit in layer.GRCL:
            gate = torch.sigmoid(unit.BN_gfu(layer.wgf_u(u)) + unit.BN_grx(layer.wgr_x(x)))
            x = torch.relu(unit.BN_fu(layer.wf_u(u)) + unit.BN_Gx(unit.BN_rx(layer.wr_x(x)) * gate))
        assert torch.allclose(layer(u), x, atol=1e-6)
    assert x.shape == (2, 6, 5, 7)


def _memorising_decoder(batch_max_length: int) -> tuple[Attention, torch.Tensor, torch.Tensor]:
    """An attention decoder trained (briefly, teacher-forced) to emit sequences of 1 to 6
    characters for six fixed feature sequences, so greedy decoding ends at varied steps."""
    torch.manual_seed(0)
    num_class = 10
    decoder = Attention(16, 32, num_class)
    features = torch.randn(6, 8, 16)
    text = torch.zeros(6, batch_max_length + 2, dtype=torch.long)  # [GO] chars [s] pad
    for row, length in enumerate(range(1, 7)):
        text[row, 1 : length + 1] = torch.randint(2, num_class, (length,))
        text[row, length + 1] = EOS_INDEX
    optimiser = torch.optim.Adam(decoder.parameters(), lr=1e-2)
    for _ in range(150):
        logits = decoder(features, text[:, :-1], is_train=True, batch_max_length=batch_max_length)
        loss = nn.functional.cross_entropy(
            logits.reshape(-1, num_class), text[:, 1:].reshape(-1), ignore_index=0
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return decoder.eval(), features, text


def _cut_after_first_eos(row: torch.Tensor) -> list[int]:
    indices = row.tolist()
    return indices[: indices.index(EOS_INDEX) + 1] if EOS_INDEX in indices else indices


def test_attn_early_stop_gives_the_same_predictions_as_a_full_run():
    batch_max_length = 12
    decoder, features, text = _memorising_decoder(batch_max_length)
    steps_run = []
    decoder.generator.register_forward_hook(lambda *_: steps_run.append(1))
    with torch.no_grad():
        full = decoder(features, None, is_train=False, batch_max_length=batch_max_length, stop_at_eos=False)
        full_steps = len(steps_run)
        steps_run.clear()
        early = decoder(features, None, is_train=False, batch_max_length=batch_max_length)
    assert full.shape == early.shape == (6, batch_max_length + 1, 10)
    assert full_steps == batch_max_length + 1
    assert len(steps_run) < full_steps  # it really stopped early

    full_pred, early_pred = full.argmax(2), early.argmax(2)
    first_eos = [row.tolist().index(EOS_INDEX) for row in full_pred]
    assert len(set(first_eos)) > 1  # sequences ended at different steps
    for row in range(6):
        assert _cut_after_first_eos(early_pred[row]) == _cut_after_first_eos(full_pred[row])
        # the steps that ran are the same computation, bit for bit
        assert torch.equal(early[row, : first_eos[row] + 1], full[row, : first_eos[row] + 1])
        # the filled steps repeat the [s] step, so they decode as [s]
        assert (early_pred[row, first_eos[row] :] == EOS_INDEX).all()
    # the decoder learned its task: predictions are the training labels
    assert [_cut_after_first_eos(r) for r in full_pred] == [_cut_after_first_eos(r) for r in text[:, 1:]]


def test_attn_training_needs_enough_text_columns():
    decoder = Attention(8, 8, 5)
    with pytest.raises(ValueError, match=r"\[batch, >= 26\]"):
        decoder(torch.randn(2, 4, 8), torch.zeros(2, 10, dtype=torch.long), is_train=True)


# --------------------------------------------------------------------------- checkpoints


def _eval_logits(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(images, None, is_train=False) if isinstance(model, Model) else model(images)


def test_save_writes_dtrb_prefixed_cpu_state_dict_atomically(tmp_path):
    model = small_model("None-VGG-BiLSTM-CTC")
    path = tmp_path / "saved_models" / "exp" / "best_accuracy.pth"
    save_checkpoint(nn.DataParallel(model), path)  # parent folders are created
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["module." + key for key in model.state_dict()]
    assert not any(key.startswith("module.module.") for key in raw)
    assert all(tensor.device.type == "cpu" for tensor in raw.values())
    # overwriting leaves no temporary files behind
    save_checkpoint(model, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_accuracy.pth"]
    assert list(torch.load(path, weights_only=True)) == list(raw)


@pytest.mark.parametrize("wrap_saved, wrap_loaded", [(False, False), (True, False), (False, True), (True, True)])
def test_round_trip_through_data_parallel(tmp_path, wrap_saved, wrap_loaded):
    source = small_model("TPS-ResNet-None-Attn", seed=1)
    images = torch.cat([render_korean("학습"), render_korean("모델")])
    expected = _eval_logits(source, images)
    path = tmp_path / "model.pth"
    save_checkpoint(nn.DataParallel(source) if wrap_saved else source, path)

    target = small_model("TPS-ResNet-None-Attn", seed=2)
    assert not torch.equal(_eval_logits(target, images), expected)
    report = load_checkpoint(nn.DataParallel(target) if wrap_loaded else target, path)
    assert isinstance(report, LoadReport) and report.skipped == []
    assert report.loaded == list(target.state_dict())
    assert torch.equal(_eval_logits(target, images), expected)


@pytest.mark.parametrize("layout", ["no_prefix", "state_dict_entry", "model_entry"])
def test_checkpoints_saved_by_users_in_other_layouts_load(tmp_path, layout):
    source = small_model("None-RCNN-None-CTC", seed=1)
    state = source.state_dict()
    content = {
        "no_prefix": state,
        "state_dict_entry": {"state_dict": {"module." + k: v for k, v in state.items()}, "iteration": 5},
        "model_entry": {"model": state},
    }[layout]
    path = tmp_path / "user.pth"
    torch.save(content, path)
    assert list(read_checkpoint(path)) == list(state)
    target = small_model("None-RCNN-None-CTC", seed=2)
    load_checkpoint(target, path)
    images = render_korean("글자")
    assert torch.equal(_eval_logits(target, images), _eval_logits(source, images))


def test_read_checkpoint_errors_name_the_file(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_checkpoint(missing)

    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("this is not a checkpoint\n", encoding="utf-8")
    with pytest.raises(ValueError, match="notes.pth.*expected") as excinfo:
        read_checkpoint(not_torch)
    assert not_torch.read_text(encoding="utf-8") == "this is not a checkpoint\n"  # untouched
    assert "state dict" in str(excinfo.value)

    pickled_options = tmp_path / "with_options.pth"
    torch.save({"opt": argparse.Namespace(lr=1.0), "model": {}}, pickled_options)
    with pytest.raises(ValueError, match="with_options.pth.*Python objects"):
        read_checkpoint(pickled_options)

    non_tensor = tmp_path / "mixed.pth"
    torch.save({"module.Prediction.weight": torch.zeros(2, 2), "iteration": 7}, non_tensor)
    with pytest.raises(ValueError, match=r"mixed.pth.*'iteration'.*int"):
        read_checkpoint(non_tensor)

    bare_tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), bare_tensor)
    with pytest.raises(ValueError, match="tensor.pth.*Tensor"):
        read_checkpoint(bare_tensor)


def test_strict_load_with_another_alphabet_explains_class_counts(tmp_path):
    path = tmp_path / "english.pth"
    save_checkpoint(small_model("None-VGG-BiLSTM-CTC", num_class=37), path)
    korean = small_model("None-VGG-BiLSTM-CTC", seed=3, num_class=2401)
    before = {k: v.clone() for k, v in korean.state_dict().items()}
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_checkpoint(korean, path)
    assert isinstance(excinfo.value, RuntimeError)
    message = str(excinfo.value)
    assert str(path) in message
    assert "Prediction.weight: shape [37, 32] in the checkpoint vs [2401, 32] in the model" in message
    assert "Prediction.bias" in message
    assert "the checkpoint predicts 37 classes, the model 2401" in message.lower()
    assert "--character" in message and "--FT" in message
    # nothing was loaded
    assert all(torch.equal(before[k], v) for k, v in korean.state_dict().items())


def test_strict_load_names_the_other_prediction_type_and_stages(tmp_path):
    path = tmp_path / "attn.pth"
    save_checkpoint(small_model("None-VGG-None-Attn"), path)
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_checkpoint(small_model("None-VGG-None-CTC"), path)
    message = str(excinfo.value)
    assert "Prediction.generator.weight: in the checkpoint, not in the model" in message
    assert "Prediction.weight: in the model, not in the checkpoint" in message
    assert "looks like a model with --Prediction Attn, but the options ask for --Prediction CTC" in message
    assert "38 classes, the model 37" in message

    resnet_path = tmp_path / "resnet.pth"
    save_checkpoint(small_model("TPS-ResNet-BiLSTM-CTC"), resnet_path)
    with pytest.raises(CheckpointMismatchError) as excinfo:
        load_checkpoint(small_model("None-VGG-None-CTC"), resnet_path)
    message = str(excinfo.value)
    assert "--Transformation TPS --FeatureExtraction ResNet --SequenceModeling BiLSTM --Prediction CTC" in message
    assert "--Transformation None --FeatureExtraction VGG --SequenceModeling None --Prediction CTC" in message
    listed = [line for line in message.splitlines() if line.startswith("  ") and ": " in line]
    assert len(listed) == 20  # the key list is capped ...
    assert "more" in message.splitlines()[21]  # ... with a count of the rest


def test_strict_load_names_input_channel_mismatch(tmp_path):
    path = tmp_path / "rgb.pth"
    save_checkpoint(small_model("None-VGG-None-CTC", input_channel=3), path)
    with pytest.raises(CheckpointMismatchError, match=r"3-channel images, the model 1.*--rgb"):
        load_checkpoint(small_model("None-VGG-None-CTC"), path)


def test_checkpoint_without_batchnorm_counters_loads_strictly(tmp_path):
    source = small_model("None-ResNet-None-CTC", seed=1)
    state = {k: v for k, v in checkpoint_state_dict(source).items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old_pytorch.pth"
    torch.save(state, path)
    target = small_model("None-ResNet-None-CTC", seed=2)
    report = load_checkpoint(target, path)
    assert report.skipped and all(reason == "not in the checkpoint" for _, reason in report.skipped)
    assert all(key.endswith("num_batches_tracked") for key, _ in report.skipped)
    images = render_korean("옛날")
    assert torch.equal(_eval_logits(target, images), _eval_logits(source, images))


@pytest.mark.parametrize(
    "combo, classes, skipped_keys",
    [
        ("TPS-VGG-BiLSTM-CTC", (37, 2400), ["Prediction.weight", "Prediction.bias"]),
        (
            "None-VGG-BiLSTM-Attn",
            (38, 2401),
            ["Prediction.attention_cell.rnn.weight_ih", "Prediction.generator.weight", "Prediction.generator.bias"],
        ),
    ],
)
def test_finetune_onto_a_korean_alphabet_loads_everything_else(tmp_path, combo, classes, skipped_keys):
    english = small_model(combo, seed=1, num_class=classes[0])
    path = tmp_path / "english.pth"
    save_checkpoint(english, path)
    korean = small_model(combo, seed=2, num_class=classes[1])
    korean_before = {k: v.clone() for k, v in korean.state_dict().items()}

    report = load_checkpoint(nn.DataParallel(korean), path, finetune=True)

    assert sorted(key for key, _ in report.skipped) == sorted(skipped_keys)
    assert sorted(report.loaded) == sorted(k for k in korean.state_dict() if k not in skipped_keys)
    english_state = english.state_dict()
    for key, tensor in korean.state_dict().items():
        expected = korean_before[key] if key in skipped_keys else english_state[key]
        assert torch.equal(tensor, expected), key
    summary = report.summary()
    assert f"Loaded {len(report.loaded)} tensors" in summary and str(path) in summary
    last_key = "Prediction.weight" if combo.endswith("CTC") else "Prediction.generator.weight"
    assert f"{last_key}: shape [{classes[0]}, 32] in the checkpoint vs [{classes[1]}, 32] in the model" in summary


def test_finetune_with_an_unrelated_file_refuses_to_start_from_scratch(tmp_path):
    path = tmp_path / "unrelated.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(CheckpointMismatchError, match="unrelated.pth.*none of its 1 tensors"):
        load_checkpoint(small_model("None-VGG-None-CTC"), path, finetune=True)


# --------------------------------------------------------------------------- model configuration


def _finished_opt(**overrides) -> argparse.Namespace:
    from utils import finish_common_options
    values = dict(Transformation="TPS", FeatureExtraction="ResNet", SequenceModeling="BiLSTM",
                  Prediction="Attn", character="가나다 ", sensitive=None, rgb=None, PAD=True,
                  imgW=160, batch_max_length=40)
    values.update(overrides)
    return finish_common_options(argparse.Namespace(**values))


def test_save_checkpoint_writes_the_configuration_beside_a_plain_state_dict(tmp_path):
    from model import config_path, read_model_config
    from utils import model_config
    opt = _finished_opt()
    model = small_model("None-VGG-None-CTC")
    path = tmp_path / "exp" / "best_accuracy.pth"
    save_checkpoint(model, path, model_config(opt))
    assert config_path(path) == tmp_path / "exp" / "best_accuracy.json"
    # the .pth stays what upstream DTRB loads: a state dict of tensors only
    state = torch.load(path, weights_only=True)
    assert all(key.startswith("module.") and isinstance(v, torch.Tensor) for key, v in state.items())
    config = read_model_config(path)
    assert config.pop("config_file") == str(config_path(path))
    assert config == model_config(opt)
    assert config["character"] == "가나다 " and config["imgW"] == 160 and config["PAD"] is True
    written = json.loads(config_path(path).read_text(encoding="utf-8"))
    assert written["num_class"] == 6  # 4 characters + [GO] + [s] and written["format"] == "dtrb-korean-model-config"
    assert sorted(p.name for p in path.parent.iterdir()) == ["best_accuracy.json", "best_accuracy.pth"]


def test_upstream_opt_txt_is_read_when_no_configuration_is_beside(tmp_path):
    from model import read_model_config
    # two runs appended to one opt.txt, as upstream writes it; the last describes the newest
    block = ("------------ Options -------------\nexp_name: x\nimgH: 32\nimgW: {imgW}\nrgb: False\n"
             "character: 0123456789abcdefghijklmnopqrstuvwxyz \nsensitive: False\nPAD: True\n"
             "Transformation: TPS\nFeatureExtraction: ResNet\nSequenceModeling: BiLSTM\n"
             "Prediction: Attn\nnum_fiducial: 20\ninput_channel: 1\noutput_channel: 512\n"
             "hidden_size: 256\nbatch_max_length: 25\nnum_class: 39\n"
             "---------------------------------------\n")
    (tmp_path / "opt.txt").write_text(block.format(imgW=100) + block.format(imgW=120), encoding="utf-8")
    config = read_model_config(tmp_path / "best_accuracy.pth")
    assert config["imgW"] == 120 and config["PAD"] is True and config["rgb"] is False
    assert config["character"].endswith("z ")  # a trailing space is a character, not padding
    assert config["config_file"] == str(tmp_path / "opt.txt")
    assert read_model_config(tmp_path / "sub" / "x.pth") is None  # a bare DTRB checkpoint


def test_broken_configuration_files_are_named(tmp_path):
    from model import read_model_config
    (tmp_path / "a.json").write_text('{"format": "dtrb-korean-model-config",\n "imgH": }', encoding="utf-8")
    with pytest.raises(ValueError, match=r"a\.json, line 2: not valid JSON"):
        read_model_config(tmp_path / "a.pth")
    (tmp_path / "b.json").write_text('{"some": "other json"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"b\.json: not a model configuration"):
        read_model_config(tmp_path / "b.pth")
    (tmp_path / "opt.txt").write_text("Transformation: TPS\nimgH: tall\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"opt\.txt: the model configuration has no 'FeatureExtraction'"):
        read_model_config(tmp_path / "c.pth")
