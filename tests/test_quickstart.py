"""korean/quickstart.py's wall-time budget (train.py's --time_limit gets what rendering and the
reserve for evaluation leave), its two data modes' train.py flags, and reading what train.py and
test.py printed."""
from __future__ import annotations

import subprocess
import time

import pytest

from conftest import REPO
from korean import quickstart
from korean.text_sources import parse_weighted_list


def test_training_gets_the_budget_less_rendering_and_the_reserve():
    budget = 15 * 60
    assert quickstart.training_time_limit(budget, 60.0) == pytest.approx((900 - 60 - 90) / 60)
    # a machine half as fast renders for twice as long and so trains for less wall time
    assert quickstart.training_time_limit(budget, 120.0) < quickstart.training_time_limit(budget, 60.0)
    # a budget already spent still trains a little
    assert quickstart.training_time_limit(60, 120) == quickstart.MIN_TRAIN_S / 60


def test_the_budget_counts_from_setup_when_readmes_first_command_ran_it_just_before(tmp_path):
    now = 1_000_000.0
    times = tmp_path / 'setup_times'
    times.write_text(f'{now - 100:.0f} {now - 5:.0f}\n')
    assert quickstart.setup_started_just_before(times, now) == now - 100
    # setup run long before, a clock that went back, no setup, or another file: the budget starts now
    times.write_text(f'{now - 400:.0f} {now - quickstart.SETUP_CHAIN_GAP_S - 1:.0f}\n')
    assert quickstart.setup_started_just_before(times, now) is None
    times.write_text(f'{now - 100:.0f} {now + 5:.0f}\n')
    assert quickstart.setup_started_just_before(times, now) is None
    assert quickstart.setup_started_just_before(tmp_path / 'missing', now) is None
    times.write_text('setup done\n')
    assert quickstart.setup_started_just_before(times, now) is None
    # the 100 s of setup count as a stage and leave training 100 s less
    clock = quickstart.StageClock()
    alone = quickstart.training_time_limit(900, clock.total())
    clock.count_from(clock.started - 100, 'setup.sh')
    assert clock.stages[0][0] == 'setup.sh' and clock.stages[0][1] == pytest.approx(100, abs=1)
    assert quickstart.training_time_limit(900, clock.total()) == pytest.approx(alone - 100 / 60, abs=0.05)


def test_setup_sh_writes_the_times_the_quickstart_reads():
    before = time.time()
    run = subprocess.run(['bash', 'scripts/setup.sh'], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    started = quickstart.setup_started_just_before(quickstart.SETUP_TIMES, time.time())
    assert started is not None and before - 1 <= started <= time.time()


def test_lmdb_and_render_modes_train_on_the_same_fonts_styles_and_texts(tmp_path):
    held_out = [tmp_path / 'valid.txt', tmp_path / 'test.txt']
    lexicon = tmp_path / 'lexicon_labels.txt'
    lmdb = quickstart.training_data_flags('lmdb', tmp_path, held_out, lexicon)
    assert lmdb == ['--train_data', str(tmp_path / 'train'), '--select_data', '/', '--batch_ratio', '1']
    render = quickstart.training_data_flags('render', tmp_path, held_out, lexicon)
    assert render[render.index('--select_data') + 1] == f'render:{quickstart.TRAIN_STYLES}'
    # the built-in sources and the lexicon file at its weight, as the LMDB was rendered with
    generated = quickstart.generate_cmd(tmp_path / 'train' / 'synth', 10, 1, 1, quickstart.TRAIN_FONT_DIRS,
                                        quickstart.TRAIN_STYLES, sources=quickstart.TRAIN_SOURCES,
                                        text_file=quickstart.lexicon_text_source(lexicon))
    rendered_texts = parse_weighted_list(render[render.index('--render_text') + 1])
    generated_texts = parse_weighted_list(generated[generated.index('--source') + 1])
    generated_texts += parse_weighted_list(generated[generated.index('--text_file') + 1])
    assert rendered_texts == generated_texts
    assert (str(lexicon), quickstart.LEXICON_WEIGHT) in rendered_texts
    assert [render[i + 1] for i, f in enumerate(render) if f == '--render_font_dir'] == quickstart.TRAIN_FONT_DIRS
    assert [render[i + 1] for i, f in enumerate(render) if f == '--render_exclude_file'] == [str(p) for p in held_out]


def test_lexicon_labels_leave_the_held_out_words_out(tmp_path):
    held_out = tmp_path / 'heldout.txt'
    # frequent wordfreq words, so the lexicon would surely draw them
    held_out.write_text('학교\n사람\n시간\n')
    output = tmp_path / 'lexicon_labels.txt'
    cmd = quickstart.lexicon_labels_cmd(output, 5, [held_out])
    cmd[cmd.index('--num') + 1] = '20000'
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    labels = output.read_text(encoding='utf-8').split('\n')
    assert len(set(labels) - {''}) == 20000
    assert not {'학교', '사람', '시간'} & set(labels)


def test_auto_precision_trains_with_amp_only_where_the_hardware_computes_it():
    assert quickstart.precision_flags('auto', has_cuda=False, cpu_bfloat16=True) == ['--amp']
    assert quickstart.precision_flags('auto', has_cuda=True, cpu_bfloat16=False) == ['--amp']
    assert quickstart.precision_flags('auto', has_cuda=False, cpu_bfloat16=False) == []
    assert quickstart.precision_flags('float32', has_cuda=True, cpu_bfloat16=True) == []
    assert quickstart.precision_flags('amp', has_cuda=False, cpu_bfloat16=False) == ['--amp']


def test_parse_steps_run_reads_where_the_time_limit_ended_training():
    assert quickstart.parse_steps_run('end the training\n', 4000) == 4000
    lowered = ('end the training\n--time_limit 12.3 min: --num_iter lowered from 50000 to 3911 at the '
               'measured speed, so the learning-rate schedule ends in time\n')
    assert quickstart.parse_steps_run(lowered, 50000) == 3911
    stopped = lowered + ('stopped by --time_limit 12.3 min at iteration 3870 of 3911; continue with '
                         '--resume ./saved_models/x\n')
    assert quickstart.parse_steps_run(stopped, 50000) == 3870


def test_parse_accuracy_reads_upstreams_line_before_the_korean_metrics():
    out = ('dataset_root:    data/test\t dataset: /\nsub-directory:\t/.\t num samples: 1000\n'
           '44.800\nCER 0.1830\t jamo_1-NED 0.8710\n')
    assert quickstart.parse_accuracy(out) == 44.8
    with pytest.raises(ValueError, match='no accuracy line'):
        quickstart.parse_accuracy('CER 0.1830\t jamo_1-NED 0.8710\n')
