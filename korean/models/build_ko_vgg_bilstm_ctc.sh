#!/usr/bin/env bash
# Builds korean/models/ko_vgg_bilstm_ctc.pth (and its .json configuration) with the project's own
# commands, from the project's own synthetic data, on the CPU: held-out words and held-out fonts
# are never rendered for training. Usage: bash korean/models/build_ko_vgg_bilstm_ctc.sh [NUM_ITER]
# (run from the repository root; 1 torch thread, niced, so other work on the machine goes on).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
NUM_ITER=${1:-9000}
OUT=${OUT:-data/ko_vgg_bilstm_ctc}
ALPHABET=korean/alphabets/ksx1001_with_space.txt
TRAIN_FONTS="--font_dir /usr/share/fonts/truetype/nanum --font_dir /usr/share/fonts/truetype/alee --font_dir /usr/share/fonts/truetype/lexi"
TEST_FONTS="--font_dir /usr/share/fonts/truetype/unfonts-core --font_dir /usr/share/fonts/truetype/baekmuk"
mkdir -p "$OUT"

# 1. hold out 10 % of the built-in words for testing and 6 % of the rest for validation
"$PY" - "$OUT" <<'PYTHON'
import sys
from pathlib import Path
sys.path.insert(0, '.')
from korean.text_sources import builtin_words, split_words, write_lines_atomically
out = Path(sys.argv[1])
rest, test_words = split_words(builtin_words(), test_fraction=0.1, seed=7)
train_words, valid_words = split_words(rest, test_fraction=0.06, seed=8)
write_lines_atomically(out / 'heldout_valid_words.txt', valid_words)
write_lines_atomically(out / 'heldout_test_words.txt', test_words)
print(f'{len(train_words)} training words, {len(valid_words)} validation, {len(test_words)} test')
PYTHON

GEN="$PY korean/generate_word_images.py --format lmdb --character $ALPHABET --workers 1 --overwrite"
# 2. training data: words, every KS X 1001 syllable, captions, numbers, dates, scores, prices
$GEN --output "$OUT/train/synth" --num_images 150000 --seed 11 $TRAIN_FONTS --styles document:2,caption:1,scene:1 \
  --source words:8,syllables:1,captions:1,numbers:0.3,dates:0.3,scores:0.3,prices:0.3,digits:0.2 \
  --exclude_file "$OUT/heldout_valid_words.txt" --exclude_file "$OUT/heldout_test_words.txt"
$GEN --output "$OUT/valid/heldout_words" --num_images 600 --seed 12 $TRAIN_FONTS --text_file "$OUT/heldout_valid_words.txt"
# 3. test data: held-out words in held-out fonts, one set per style
for style in document caption scene; do
  $GEN --output "$OUT/test/$style" --num_images 500 --seed 13 $TEST_FONTS --styles "$style:1" \
    --text_file "$OUT/heldout_test_words.txt"
done

# 4. train: None-VGG-BiLSTM-CTC at 128/128, bfloat16 autocast on the CPU (--amp), cosine schedule
nice -n 19 "$PY" train.py --exp_name ko_vgg_bilstm_ctc --train_data "$OUT/train" --valid_data "$OUT/valid" \
  --select_data / --batch_ratio 1 --character $ALPHABET --imgW 128 \
  --Transformation None --FeatureExtraction VGG --SequenceModeling BiLSTM --Prediction CTC --output_channel 128 --hidden_size 128 \
  --adam --lr 0.002 --lr_schedule cosine --batch_size 64 --num_iter "$NUM_ITER" --valInterval 1000 \
  --workers 0 --num_threads 1 --amp --manualSeed 7

# 5. evaluate per style with no model flags: the checkpoint describes itself
for style in document caption scene; do
  "$PY" test.py --eval_data "$OUT/test/$style" --saved_model saved_models/ko_vgg_bilstm_ctc/best_accuracy.pth --workers 0
done
