"""korean/quickstart.py's wall-time budget: the step time measured by real timed train.py runs
on a real LMDB, and the number of steps sized from it; reading test.py's accuracy."""
from __future__ import annotations

import sys

import pytest

from conftest import LEARNED_WORDS, TINY_CTC
from korean import quickstart


def test_a_machine_half_as_fast_gets_fewer_steps_and_still_ends_within_the_budget():
    budget = 15 * 60
    ours = quickstart.StepTiming(step_s=0.174, fixed_s=6.0, probe_s=20.0)
    slower = quickstart.StepTiming(step_s=2 * ours.step_s, fixed_s=2 * ours.fixed_s, probe_s=40.0)
    for timing, elapsed in ((ours, 90.0), (slower, 180.0)):  # data generation is slower too
        steps = quickstart.size_num_iter(budget, elapsed, timing)
        evaluations = 1 + quickstart.EXTRA_VALIDATIONS + quickstart.EVALUATION_PROCESSES
        predicted = elapsed + steps * timing.step_s + evaluations * timing.fixed_s
        assert predicted <= budget
        assert predicted >= 0.85 * budget  # the budget is used, not wasted
    fast, slow = (quickstart.size_num_iter(budget, e, t) for t, e in ((ours, 90.0), (slower, 180.0)))
    # at most half: its data generation also took twice as long, leaving less time to train
    assert 0.35 * fast < slow <= 0.5 * fast


def test_a_budget_already_spent_still_trains_one_step():
    timing = quickstart.StepTiming(step_s=0.2, fixed_s=5.0, probe_s=12.0)
    assert quickstart.size_num_iter(60, 120, timing) == quickstart.MIN_STEPS


def test_timed_probes_run_train_py_and_leave_no_model_behind(tmp_path, make_lmdb):
    data = tmp_path / 'data'
    lmdb = make_lmdb(data / 'train', list(LEARNED_WORDS) * 2)
    alphabet = tmp_path / 'alphabet.txt'
    alphabet.write_text('\n'.join('가나다라마바사-AaBb7') + '\n', encoding='utf-8')
    train_cmd = [sys.executable, 'train.py', *TINY_CTC, '--character', str(alphabet), '--sensitive',
                 '--train_data', str(data), '--valid_data', lmdb, '--select_data', '/', '--batch_ratio', '1',
                 '--batch_size', '4', '--workers', '0', '--num_threads', '1']
    exp_name = f'quickstart_probe_test_{tmp_path.name}'
    timing = quickstart.measure_step_time(train_cmd, exp_name, steps=(2, 12))
    assert 0 < timing.step_s < timing.probe_s
    assert 0 <= timing.fixed_s < timing.probe_s
    assert not (quickstart.REPO_ROOT / 'saved_models' / exp_name).exists()


def test_parse_accuracy_reads_upstreams_line_before_the_korean_metrics():
    out = ('dataset_root:    data/test\t dataset: /\nsub-directory:\t/.\t num samples: 1000\n'
           '44.800\nCER 0.1830\t jamo_1-NED 0.8710\n')
    assert quickstart.parse_accuracy(out) == 44.8
    with pytest.raises(ValueError, match='no accuracy line'):
        quickstart.parse_accuracy('CER 0.1830\t jamo_1-NED 0.8710\n')
