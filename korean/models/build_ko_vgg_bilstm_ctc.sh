#!/usr/bin/env bash
# Builds korean/models/ko_vgg_bilstm_ctc.pth (stage 13) and ko_vgg_bilstm_ctc_h64.pth (stage 15), the
# shipped pair read together with --ensemble, each with its .json configuration, with the project's
# own commands, from the project's own synthetic data, on the CPU: held-out words and held-out fonts
# are never rendered for training. Fifteen stages:
#   1. 9,000 steps from scratch on document / caption / scene images (150,000 LMDB images);
#   2. fine-tuning of stage 1 on every style the generator has (signboard, cover, headline,
#      score bug and licence plate added), each style paired with the text it carries, with
#      --augment, for STAGE2_MINUTES of wall time (--time_limit);
#   3. fine-tuning of stage 2 on new images of the same recipe, read 256 pixels wide with their
#      aspect ratio kept (--imgW 256 --PAD): at 128 x 32 a score bug or headline line was squeezed
#      to a quarter of its width and CTC had 31 time steps for up to 25 characters; 256 gives 63.
#      More score bugs and headlines in each batch; STAGE3_MINUTES of wall time;
#   4. fine-tuning of stage 3 with random syllable strings five times as frequent as before in the
#      general images: in held-out fonts stage 3 read 98.5 % of its training words and 80.7 % of
#      held-out words, having learnt the small built-in vocabulary. Plates a fifth of each batch,
#      half the learning rate; STAGE4_MINUTES of wall time;
#   5. more of stage 4's recipe on new images (its validation still rose at its last step),
#      STAGE5_MINUTES of wall time;
#   6. the same again from stage 5 on new images (stage 5's validation too rose to its last
#      step), STAGE6_MINUTES of wall time;
#   7. fine-tuning of stage 6 with a vocabulary ten times larger: words, compounds and words with
#      endings from wordfreq's Korean list (text_sources.py lexicon_words) in the general images
#      and the headline lines, because unseen words cost stage 6 more than unseen fonts;
#      STAGE7_MINUTES of wall time;
#   8. fine-tuning of stage 7 on stage 7's recipe rendered in 54 training fonts instead of 40: the
#      Baedal-Minjok display fonts (fonts-woowa-bm: BM Hanna, Dohyeon, Jua, Yeonsung, Euljiro...,
#      common on Korean signs, captions and thumbnails) and Noto Sans / Serif CJK (fonts-noto-cjk)
#      join Nanum, Alee and Lexi, because held-out fonts cost stage 7 as much as held-out words
#      (neither package is related to the Un or Baekmuk test fonts); STAGE8_MINUTES of wall time,
#      keeping the weights the run ends with (its validation set is in the old fonts only);
#   9. fine-tuning of stage 8 on stage 8's recipe rendered in 64 fonts: the ten other weights of
#      Noto Sans / Serif CJK (fonts-noto-cjk-extra: Thin to Black) join, because held-out fonts
#      still cost stage 8 5.6 to 7.5 points; validated on a set rendered in all 64 training fonts
#      (valid9), so the best validated weights are kept again; STAGE9_MINUTES of wall time;
#  10. fine-tuning of stage 9 on stage 9's images read 48 pixels high and 384 wide (--imgH 48
#      --imgW 384), because score bugs lost strokes and digits at 32 pixels (키 read 기, a 1
#      dropped): first STAGE10A_MINUTES at lr 0.0003, in which the model adapts to the new size
#      (it read valid9 56 % at its first step), then STAGE10_MINUTES from that run's best weights
#      at stage 9's lr 0.0005;
#  11. fine-tuning of stage 10 at 48 x 384 on new images of stage 9's recipe whose score bugs carry
#      every team and place name the scorebugs source knows: stages 2 to 10 rendered score bugs with
#      the held-out words excluded, so the 12 names among them (키움, 롯데, ...) were never trained
#      on and stage 10 read every test score bug with 키움 wrong; STAGE11_MINUTES at lr 0.0003;
#  12. more of stage 11's recipe on new images (seeds 141 to 144), because stage 11's validation was
#      still near its best at its last step; STAGE12_MINUTES at lr 0.0002;
#  13. more of stage 12's recipe on new images (seeds 151 to 154) in 67 fonts: stage 9's 64 and three
#      new designs (fonts-naver-d2coding, and the Hangul of WenQuanYi Micro Hei and Zen Hei,
#      fonts-wqy-microhei and fonts-wqy-zenhei), because held-out fonts still cost stage 12 5.2 to
#      6.4 points; the general images lean to the styles read worst (signboards, covers, scenes:
#      $STAGE13_STYLES); STAGE13_MINUTES at lr 0.0002;
#  14. the second model of the shipped pair (korean/models/ko_vgg_bilstm_ctc_h64.pth, read beside
#      stage 13 with --ensemble): stage 13 fine-tuned to read 64 x 512 (--imgH 64 --imgW 512
#      --PAD), because the styles drawn large (covers, signboards, plates, score bugs) lose detail
#      shrunk to 48 pixels, on stage 13's recipe rendered on new seeds (171 to 174) in 105 fonts:
#      stage 13's 67 and 38 of 25 Google Fonts families no Debian package holds (serif, sans,
#      hand-written and display faces, fetched from the npm registry by korean/fetch_fonts.py into
#      $NPM_FONTS); STAGE14_MINUTES at lr 0.0003;
#  15. more of stage 14 from its best weights on the same images, STAGE15_MINUTES at lr 0.0002 with
#      2 torch threads (STAGE15_THREADS); its best weights are the 64-high model. Alone it reads the
#      test sets as stage 13 does on average (the large styles better, the small ones worse); each
#      image read by both, keeping the more confident reading, reads them better than either.
# Usage (from the repository root; 1 torch thread, niced, so other work on the machine goes on):
#   bash korean/models/build_ko_vgg_bilstm_ctc.sh                            # all fifteen stages
#   FROM=model.pth bash korean/models/build_ko_vgg_bilstm_ctc.sh             # stages 2 to 15, from model.pth
#   FROM=model.pth STAGES=13 bash korean/models/build_ko_vgg_bilstm_ctc.sh   # stage 13 only
#   FROM=stage13.pth STAGES="14 15" bash korean/models/build_ko_vgg_bilstm_ctc.sh   # the 64-high model
#   FIRST_MODEL=stage13.pth FROM=stage14.pth STAGES=15 bash korean/models/build_ko_vgg_bilstm_ctc.sh
# The last stage's model is evaluated per style at the end, and with stages 14 or 15 also the pair
# (FIRST_MODEL, stage 13 unless given, with --ensemble the last stage's model).
# Stages 8 to 15 need more font packages (as root: apt-get install fonts-woowa-bm fonts-noto-cjk,
# for stages 9 to 15 fonts-noto-cjk-extra, for stages 13 to 15 fonts-naver-d2coding fonts-wqy-microhei
# fonts-wqy-zenhei; not fonts-nanum-eco, which adds files to the nanum folder every stage reads);
# stages 14 and 15 fetch their Google Fonts families themselves (korean/fetch_fonts.py, from the npm registry);
# stage 10 renders stage 9's training images if they are missing, stages 10 to 15 its validation
# set (valid9).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
NUM_ITER=${NUM_ITER:-9000}
STAGE2_ITER=${STAGE2_ITER:-26000}
STAGE2_MINUTES=${STAGE2_MINUTES:-95}
STAGE3_ITER=${STAGE3_ITER:-20000}
STAGE3_MINUTES=${STAGE3_MINUTES:-115}
STAGE4_ITER=${STAGE4_ITER:-12000}
STAGE4_MINUTES=${STAGE4_MINUTES:-30}
STAGE5_ITER=${STAGE5_ITER:-15000}
STAGE5_MINUTES=${STAGE5_MINUTES:-60}
STAGE6_ITER=${STAGE6_ITER:-18000}
STAGE6_MINUTES=${STAGE6_MINUTES:-80}
STAGE7_ITER=${STAGE7_ITER:-18000}
STAGE7_MINUTES=${STAGE7_MINUTES:-65}
STAGE8_ITER=${STAGE8_ITER:-18000}
STAGE8_MINUTES=${STAGE8_MINUTES:-80}
STAGE9_ITER=${STAGE9_ITER:-18000}
STAGE9_MINUTES=${STAGE9_MINUTES:-85}
STAGE10A_ITER=${STAGE10A_ITER:-18000}
STAGE10A_MINUTES=${STAGE10A_MINUTES:-25}
STAGE10_ITER=${STAGE10_ITER:-18000}
STAGE10_MINUTES=${STAGE10_MINUTES:-95}
STAGE11_ITER=${STAGE11_ITER:-18000}
STAGE11_MINUTES=${STAGE11_MINUTES:-85}
STAGE12_ITER=${STAGE12_ITER:-18000}
STAGE12_MINUTES=${STAGE12_MINUTES:-85}
STAGE13_ITER=${STAGE13_ITER:-18000}
STAGE13_MINUTES=${STAGE13_MINUTES:-80}
STAGE13_STYLES=${STAGE13_STYLES:-document:1.5,caption:1.75,scene:1.5,signboard:2.5,cover:2}
STAGE14_ITER=${STAGE14_ITER:-18000}
STAGE14_MINUTES=${STAGE14_MINUTES:-100}
STAGE15_ITER=${STAGE15_ITER:-18000}
STAGE15_MINUTES=${STAGE15_MINUTES:-105}
STAGE15_THREADS=${STAGE15_THREADS:-2}
STAGES=${STAGES:-1 2 3 4 5 6 7 8 9 10 11 12 13 14 15}
WORKERS=${WORKERS:-2}
OUT=${OUT:-data/ko_vgg_bilstm_ctc}
FROM=${FROM:-}
FIRST_MODEL=${FIRST_MODEL:-}
ALPHABET=korean/alphabets/ksx1001_with_space.txt
TRAIN_FONTS="--font_dir /usr/share/fonts/truetype/nanum --font_dir /usr/share/fonts/truetype/alee --font_dir /usr/share/fonts/truetype/lexi"
# stage 8 adds these to $TRAIN_FONTS (the test fonts stay Un and Baekmuk): the woowa-bm folder and
# the four Noto CJK files of fonts-noto-cjk; stage 9 adds the ten of fonts-noto-cjk-extra too. The
# Noto files are named one by one because both packages install into the same folder, so that a
# stage's data does not depend on which of them is installed
NOTO=/usr/share/fonts/opentype/noto
STAGE8_EXTRA_FONTS="/usr/share/fonts/truetype/woowa-bm $NOTO/NotoSansCJK-Regular.ttc $NOTO/NotoSansCJK-Bold.ttc
  $NOTO/NotoSerifCJK-Regular.ttc $NOTO/NotoSerifCJK-Bold.ttc"
STAGE9_EXTRA_FONTS="$STAGE8_EXTRA_FONTS $NOTO/NotoSansCJK-Thin.ttc $NOTO/NotoSansCJK-Light.ttc
  $NOTO/NotoSansCJK-DemiLight.ttc $NOTO/NotoSansCJK-Medium.ttc $NOTO/NotoSansCJK-Black.ttc
  $NOTO/NotoSerifCJK-ExtraLight.ttc $NOTO/NotoSerifCJK-Light.ttc $NOTO/NotoSerifCJK-Medium.ttc
  $NOTO/NotoSerifCJK-SemiBold.ttc $NOTO/NotoSerifCJK-Black.ttc"
# stage 13 adds three Hangul designs no stage had (each file's first face is the one drawn)
STAGE13_EXTRA_FONTS="$STAGE9_EXTRA_FONTS /usr/share/fonts/truetype/naver-d2coding
  /usr/share/fonts/truetype/wqy/wqy-microhei.ttc /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
# stage 14 adds the 38 Google Fonts files korean/fetch_fonts.py writes into this folder
NPM_FONTS=${NPM_FONTS:-data/fonts}
STAGE14_EXTRA_FONTS="$STAGE13_EXTRA_FONTS $NPM_FONTS"
TEST_FONTS="--font_dir /usr/share/fonts/truetype/unfonts-core --font_dir /usr/share/fonts/truetype/baekmuk"
EXCLUDE="--exclude_file $OUT/heldout_valid_words.txt --exclude_file $OUT/heldout_test_words.txt"
MODEL="--Transformation None --FeatureExtraction VGG --SequenceModeling BiLSTM --Prediction CTC --output_channel 128 --hidden_size 128"
mkdir -p "$OUT"

# held out: 10 % of the built-in words for testing and 6 % of the rest for validation
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

GEN="$PY korean/generate_word_images.py --format lmdb --character $ALPHABET --workers $WORKERS --overwrite --quiet"
WORDS="words:8,syllables:1,captions:1,numbers:0.3,dates:0.3,scores:0.3,prices:0.3,digits:0.2"
SYLLABLE_WORDS="words:3,syllables:5,captions:1,numbers:0.3,dates:0.3,scores:0.3,prices:0.3,digits:0.2"
# stage 7: the built-in sources beside the lexicon file (--text_file LEXICON:4 in the general images)
LEXICON_MIX="words:2,syllables:3,captions:1,numbers:0.3,dates:0.3,scores:0.3,prices:0.3,digits:0.2"
LEXICON=$OUT/wordfreq_words.txt

# true when $STAGES holds any of the given stages
has_stage() {
  local stage
  for stage; do [[ " $STAGES " == *" $stage "* ]] && return 0; done
  return 1
}

# the --font_dir flags of $TRAIN_FONTS plus the fonts given after the stage number; a missing
# font fails with one line naming it (called before any stage runs, so a long build does not stop
# hours in)
styled_font_flags() {
  local stage=$1 flags=$TRAIN_FONTS font
  shift
  for font in "$@"; do
    if [ ! -e "$font" ]; then
      echo "stage $stage: font $font is missing; install fonts-woowa-bm, fonts-noto-cjk, (stage 9) fonts-noto-cjk-extra and (stage 13) fonts-naver-d2coding fonts-wqy-microhei fonts-wqy-zenhei (apt-get, as root)" >&2
      return 1
    fi
    flags="$flags --font_dir $font"
  done
  echo "$flags"
}
if has_stage 8; then STAGE8_FONTS=$(styled_font_flags 8 $STAGE8_EXTRA_FONTS); fi
if has_stage 9 10 11 12 13 14 15; then STAGE9_FONTS=$(styled_font_flags 9 $STAGE9_EXTRA_FONTS); fi
if has_stage 13; then STAGE13_FONTS=$(styled_font_flags 13 $STAGE13_EXTRA_FONTS); fi
# stage 15 renders stage 14's images if they are missing
RENDER_TRAIN14=
if has_stage 14 || { has_stage 15 && [ ! -d "$OUT/train14" ]; }; then RENDER_TRAIN14=1; fi
if [ -n "$RENDER_TRAIN14" ]; then
  "$PY" korean/fetch_fonts.py --output "$NPM_FONTS" --quiet
  STAGE14_FONTS=$(styled_font_flags 14 $STAGE14_EXTRA_FONTS)
fi

# training data of stages 2 to 8, each style with the text it carries, in four sub-folders that
# --select_data mixes: general (the stage-1 styles plus signboards and covers, with the stage-1
# text mix unless told another), headline lines, score bugs, licence plates.
# Arguments: folder, the four image counts, the stage number (seeds <stage>1 to <stage>4), and
# optionally the general images' text mix (default $WORDS) and seed, and a lexicon file drawn on
# beside the built-in sources (weight 4 in the general images, 2 in the headline lines).
# $STYLED_FONTS, when set, replaces $TRAIN_FONTS (stages 8 to 13); $SCOREBUG_EXCLUDE, when set
# (stages 11 to 13: empty), replaces the held-out-word flags of the score bugs; $GENERAL_STYLES,
# when set (stage 13), replaces the general images' style weights
make_styled_training_set() {
  local dir=$OUT/$1 stage=$6 general_text=${7:-$WORDS} general_seed=${8:-${6}1}
  local TRAIN_FONTS=${STYLED_FONTS:-$TRAIN_FONTS}
  local general_lexicon=() headline_lexicon=()
  if [ -n "${9:-}" ]; then
    general_lexicon=(--text_file "$9:4")
    headline_lexicon=(--text_file "$9:2" --text_split phrases)
  fi
  $GEN --output "$dir/general" --num_images "$2" --seed "$general_seed" $TRAIN_FONTS \
    --styles "${GENERAL_STYLES:-document:2,caption:1.5,scene:1,signboard:2,cover:1.5}" --source "$general_text" "${general_lexicon[@]}" $EXCLUDE
  $GEN --output "$dir/headline" --num_images "$3" --seed "${stage}2" $TRAIN_FONTS --styles headline:1 \
    --source captions:3,words:1 "${headline_lexicon[@]}" $EXCLUDE
  $GEN --output "$dir/scorebug" --num_images "$4" --seed "${stage}3" $TRAIN_FONTS --styles scorebug:1 \
    --source scorebugs:1 ${SCOREBUG_EXCLUDE-$EXCLUDE}
  $GEN --output "$dir/plate" --num_images "$5" --seed "${stage}4" $TRAIN_FONTS --styles plate:1 --source plates:1
}

# validation of stages 3 to 8 (valid3): the held-out validation words in six styles, score bugs
# and plates, so the best model is picked over every style. Arguments (stage 9): folder name and
# the number of general images; $STYLED_FONTS, when set, replaces $TRAIN_FONTS
make_validation_set() {
  local dir=$OUT/${1:-valid3} TRAIN_FONTS=${STYLED_FONTS:-$TRAIN_FONTS}
  $GEN --output "$dir/heldout_words" --num_images "${2:-800}" --seed 25 $TRAIN_FONTS \
    --styles document:1,caption:1,scene:1,signboard:1,cover:1,headline:1 --text_file "$OUT/heldout_valid_words.txt"
  $GEN --output "$dir/scorebug" --num_images 200 --seed 35 $TRAIN_FONTS --styles scorebug:1 --source scorebugs:1
  $GEN --output "$dir/plate" --num_images 200 --seed 36 $TRAIN_FONTS --styles plate:1 --source plates:1
}

# fine-tuning at --imgW 256 --PAD (stages 3 to 9; $IMG_H and $IMG_W, when set, give another size)
# from $FROM on $OUT/train<stage> ($TRAIN, when set, names another folder), validated on $VALID
# (valid3 unless told another) every $VAL_EVERY steps (1,000 unless told), one DataLoader worker
# decoding and augmenting beside the training thread ($THREADS torch threads, 1 unless told).
# Arguments: stage, batch ratio, learning rate, --num_iter, minutes of wall time, seed, and
# optionally "last": go on from the weights the run ended with (--save_last) instead of its best
# validated ones
fine_tune_wide() {
  local keep=best_accuracy save_last=()
  if [ "${7:-}" = last ]; then keep=last; save_last=(--save_last); fi
  nice -n 19 "$PY" train.py --exp_name "ko_vgg_bilstm_ctc_stage$1" --train_data "$OUT/${TRAIN:-train$1}" --valid_data "$OUT/${VALID:-valid3}" \
    --select_data general-headline-scorebug-plate --batch_ratio "$2" --character $ALPHABET \
    --imgH "${IMG_H:-32}" --imgW "${IMG_W:-256}" --PAD $MODEL --saved_model "$FROM" --adam --lr "$3" --lr_schedule cosine \
    --batch_size 64 --num_iter "$4" --valInterval "${VAL_EVERY:-1000}" --time_limit "$5" --augment --workers 1 \
    --num_threads "${THREADS:-1}" --amp --manualSeed "$6" "${save_last[@]}"
  FROM=saved_models/ko_vgg_bilstm_ctc_stage$1/$keep.pth
}

if [ -z "$FROM" ] && has_stage 1; then
  # stage 1 data: words, every KS X 1001 syllable, captions, numbers, dates, scores, prices
  $GEN --output "$OUT/train/synth" --num_images 150000 --seed 11 $TRAIN_FONTS --styles document:2,caption:1,scene:1 \
    --source "$WORDS" $EXCLUDE
  $GEN --output "$OUT/valid/heldout_words" --num_images 600 --seed 12 $TRAIN_FONTS --text_file "$OUT/heldout_valid_words.txt"
  # stage 1: None-VGG-BiLSTM-CTC at 128/128, bfloat16 autocast on the CPU (--amp), cosine schedule
  nice -n 19 "$PY" train.py --exp_name ko_vgg_bilstm_ctc --train_data "$OUT/train" --valid_data "$OUT/valid" \
    --select_data / --batch_ratio 1 --character $ALPHABET --imgW 128 $MODEL \
    --adam --lr 0.002 --lr_schedule cosine --batch_size 64 --num_iter "$NUM_ITER" --valInterval 1000 \
    --workers 0 --num_threads 1 --amp --manualSeed 7
  FROM=saved_models/ko_vgg_bilstm_ctc/best_accuracy.pth
fi

# test data: held-out fonts in every style; held-out words (headlines: runs of 1-4 held-out
# words), and for score bugs and plates the texts those sources write (new numbers, known teams)
for style in document caption scene signboard cover; do
  $GEN --output "$OUT/test/$style" --num_images 500 --seed 13 $TEST_FONTS --styles "$style:1" \
    --text_file "$OUT/heldout_test_words.txt"
done
$GEN --output "$OUT/test/headline" --num_images 500 --seed 13 $TEST_FONTS --styles headline:1 \
  --text_file "$OUT/heldout_test_words.txt" --text_split phrases
$GEN --output "$OUT/test/scorebug" --num_images 500 --seed 13 $TEST_FONTS --styles scorebug:1 --source scorebugs:1
$GEN --output "$OUT/test/plate" --num_images 500 --seed 13 $TEST_FONTS --styles plate:1 --source plates:1
# vertical signs of the held-out words, read with --vertical 1.2 (no stage trains on them)
$GEN --output "$OUT/test/vertical" --num_images 500 --seed 13 $TEST_FONTS --styles vertical:1 \
  --text_file "$OUT/heldout_test_words.txt"

if has_stage 2; then
  # stage 2 data: each new style with the text it carries, plus the stage-1 styles so they are kept
  make_styled_training_set train2 90000 25000 15000 15000 2
  $GEN --output "$OUT/valid2/heldout_words" --num_images 800 --seed 25 $TRAIN_FONTS \
    --styles document:1,caption:1,scene:1,signboard:1,cover:1,headline:1 --text_file "$OUT/heldout_valid_words.txt"

  # stage 2: fine-tune from stage 1 (same alphabet and model) with --augment, capped by wall time
  nice -n 19 "$PY" train.py --exp_name ko_vgg_bilstm_ctc_stage2 --train_data "$OUT/train2" --valid_data "$OUT/valid2" \
    --select_data general-headline-scorebug-plate --batch_ratio 0.55-0.2-0.125-0.125 --character $ALPHABET --imgW 128 $MODEL \
    --saved_model "$FROM" --adam --lr 0.001 --lr_schedule cosine --batch_size 64 --num_iter "$STAGE2_ITER" \
    --valInterval 1000 --time_limit "$STAGE2_MINUTES" --augment --workers 0 --num_threads 1 --amp --manualSeed 8
  FROM=saved_models/ko_vgg_bilstm_ctc_stage2/best_accuracy.pth
fi

# rendered once for whichever of stages 3 to 8 run
if has_stage 3 4 5 6 7 8; then
  make_validation_set
fi

if has_stage 3; then
  # stage 3 data: new images (new seeds) of the stage-2 recipe, with more score bugs and headlines
  make_styled_training_set train3 110000 35000 35000 20000 3

  # stage 3: fine-tune from stage 2 at --imgW 256 --PAD (the same weights read any width)
  fine_tune_wide 3 0.5-0.2-0.2-0.1 0.001 "$STAGE3_ITER" "$STAGE3_MINUTES" 9
fi

if has_stage 4; then
  # stage 4 data: general images with syllables 5 : words 3 (was 1 : 8), new seeds throughout (the
  # general images of the run that became stage 4 were seed 51)
  make_styled_training_set train4 60000 30000 30000 30000 4 "$SYLLABLE_WORDS" 51

  # stage 4: fine-tune from stage 3 at the same input size, half its learning rate
  fine_tune_wide 4 0.5-0.15-0.15-0.2 0.0005 "$STAGE4_ITER" "$STAGE4_MINUTES" 10
fi

if has_stage 5; then
  # stage 5 data: stage 4's recipe, new seeds (general 55, the others 52 to 54), more images for a
  # run twice as long
  make_styled_training_set train5 120000 40000 40000 40000 5 "$SYLLABLE_WORDS" 55

  # stage 5: fine-tune from stage 4 with stage 4's settings, for longer
  fine_tune_wide 5 0.5-0.15-0.15-0.2 0.0005 "$STAGE5_ITER" "$STAGE5_MINUTES" 11
fi

if has_stage 6; then
  # stage 6 data: stage 5's recipe, new seeds (general 65, the others 62 to 64)
  make_styled_training_set train6 120000 40000 40000 40000 6 "$SYLLABLE_WORDS" 65

  # stage 6: fine-tune from stage 5 with the same settings, for longer again
  fine_tune_wide 6 0.5-0.15-0.15-0.2 0.0005 "$STAGE6_ITER" "$STAGE6_MINUTES" 12
fi

# the lexicon file of stages 7 to 15: 400,000 word-like labels from wordfreq's Korean list,
# held-out words left out, written once for whichever of them run
if has_stage 7 8 9 10 11 12 13 14 15; then
  "$PY" korean/text_sources.py lexicon_words --output "$LEXICON" --seed 91 \
    --exclude_file "$OUT/heldout_valid_words.txt" --exclude_file "$OUT/heldout_test_words.txt"
fi

if has_stage 7; then
  # stage 7 data: the lexicon file drawn on by the general images (lexicon 4 : words 2 :
  # syllables 3 : captions 1 : ...) and the headline lines (captions 3 : lexicon phrases 2 :
  # words 1). Seeds 91 to 94: the run that became stage 7 was named exp9_wordfreq
  make_styled_training_set train7 120000 40000 40000 40000 9 "$LEXICON_MIX" 91 "$LEXICON"

  # stage 7: fine-tune from stage 6 with stage 6's settings
  fine_tune_wide 7 0.5-0.15-0.15-0.2 0.0005 "$STAGE7_ITER" "$STAGE7_MINUTES" 13
fi

if has_stage 8; then
  # stage 8 data: stage 7's recipe and lexicon file, new seeds (111 to 114), rendered in the
  # training fonts plus the woowa-bm and Noto CJK fonts
  STYLED_FONTS="$STAGE8_FONTS" make_styled_training_set train8 120000 40000 40000 40000 11 "$LEXICON_MIX" 111 "$LEXICON"

  # stage 8: fine-tune from stage 7 with stage 7's settings, keeping the last weights: valid3 is
  # rendered in the 40 fonts stages 1 to 7 trained on, where the run's first step validated best
  # (86.7 %, then 83.0 to 86.2 %), while the last weights read the held-out fonts better
  fine_tune_wide 8 0.5-0.15-0.15-0.2 0.0005 "$STAGE8_ITER" "$STAGE8_MINUTES" 14 last
fi

if has_stage 9 || { has_stage 10 && [ ! -d "$OUT/train9" ]; }; then
  # stage 9 data: stage 8's recipe and lexicon file, new seeds (121 to 124), in 64 fonts: stage 8's
  # and the other ten Noto CJK weights
  STYLED_FONTS="$STAGE9_FONTS" make_styled_training_set train9 120000 40000 40000 40000 12 "$LEXICON_MIX" 121 "$LEXICON"
fi
if has_stage 9 || { has_stage 10 11 12 13 14 15 && [ ! -d "$OUT/valid9" ]; }; then
  # the validation set of stages 9 to 13 (valid9), in the same 64 fonts: 1,200 images of held-out
  # words (valid3 has 800), score bugs and plates
  STYLED_FONTS="$STAGE9_FONTS" make_validation_set valid9 1200
fi

if has_stage 9; then
  # stage 9: fine-tune from stage 8 with stage 8's settings, keeping the best validated weights
  VALID=valid9 fine_tune_wide 9 0.5-0.15-0.15-0.2 0.0005 "$STAGE9_ITER" "$STAGE9_MINUTES" 15
fi

if has_stage 10; then
  # stage 10: stage 9's images and validation set read at 48 x 384; a first run at a lower
  # learning rate, validated every 500 steps, while the model adapts to the size (the run that
  # made it was named exp_imgH48), then stage 9's settings from its best weights
  IMG_H=48 IMG_W=384 TRAIN=train9 VALID=valid9 VAL_EVERY=500 \
    fine_tune_wide 10a 0.5-0.15-0.15-0.2 0.0003 "$STAGE10A_ITER" "$STAGE10A_MINUTES" 16
  IMG_H=48 IMG_W=384 TRAIN=train9 VALID=valid9 \
    fine_tune_wide 10 0.5-0.15-0.15-0.2 0.0005 "$STAGE10_ITER" "$STAGE10_MINUTES" 17
fi

if has_stage 11; then
  # stage 11 data: stage 9's recipe, fonts and lexicon file, new seeds (131 to 134), score bugs
  # rendered with every team and place name (no held-out exclusion: a score bug's teams are a
  # closed list a reader must know); validated on valid9
  SCOREBUG_EXCLUDE= STYLED_FONTS="$STAGE9_FONTS" make_styled_training_set train11 120000 40000 40000 40000 13 "$LEXICON_MIX" 131 "$LEXICON"

  # stage 11: fine-tune from stage 10 at 48 x 384, lr 0.0003, validated every 500 steps
  IMG_H=48 IMG_W=384 VALID=valid9 VAL_EVERY=500 \
    fine_tune_wide 11 0.5-0.15-0.15-0.2 0.0003 "$STAGE11_ITER" "$STAGE11_MINUTES" 18
fi

if has_stage 12; then
  # stage 12 data: stage 11's recipe on new seeds (141 to 144)
  SCOREBUG_EXCLUDE= STYLED_FONTS="$STAGE9_FONTS" make_styled_training_set train12 120000 40000 40000 40000 14 "$LEXICON_MIX" 141 "$LEXICON"

  # stage 12: fine-tune from stage 11 at 48 x 384, lr 0.0002, validated every 500 steps
  IMG_H=48 IMG_W=384 VALID=valid9 VAL_EVERY=500 \
    fine_tune_wide 12 0.5-0.15-0.15-0.2 0.0002 "$STAGE12_ITER" "$STAGE12_MINUTES" 19
fi

if has_stage 13; then
  # stage 13 data: stage 12's recipe on new seeds (151 to 154) in 67 fonts, the general images
  # weighted to signboards, covers and scenes
  SCOREBUG_EXCLUDE= STYLED_FONTS="$STAGE13_FONTS" GENERAL_STYLES="$STAGE13_STYLES" \
    make_styled_training_set train13 120000 40000 40000 40000 15 "$LEXICON_MIX" 151 "$LEXICON"

  # stage 13: fine-tune from stage 12 at 48 x 384, lr 0.0002, validated every 500 steps on valid9
  # (rendered in stage 9's 64 fonts)
  IMG_H=48 IMG_W=384 VALID=valid9 VAL_EVERY=500 \
    fine_tune_wide 13 0.5-0.15-0.15-0.2 0.0002 "$STAGE13_ITER" "$STAGE13_MINUTES" 20
fi

if [ -n "$RENDER_TRAIN14" ]; then
  # stage 14 data: stage 13's recipe on new seeds (171 to 174) in 105 fonts: stage 13's 67 and the
  # 38 Google Fonts files of $NPM_FONTS
  SCOREBUG_EXCLUDE= STYLED_FONTS="$STAGE14_FONTS" GENERAL_STYLES="$STAGE13_STYLES" \
    make_styled_training_set train14 120000 40000 40000 40000 17 "$LEXICON_MIX" 171 "$LEXICON"
fi

if has_stage 14; then
  # the pair's first model: the 48-high stage 13 that stage 14 starts from
  FIRST_MODEL=${FIRST_MODEL:-$FROM}
  # stage 14: fine-tune from stage 13 at 64 x 512, lr 0.0003, validated every 500 steps on valid9
  # (the run that made it was named ko_vgg_bilstm_ctc_stage14_h64)
  IMG_H=64 IMG_W=512 VALID=valid9 VAL_EVERY=500 \
    fine_tune_wide 14 0.5-0.15-0.15-0.2 0.0003 "$STAGE14_ITER" "$STAGE14_MINUTES" 22
fi

if has_stage 15; then
  # stage 15: more of stage 14 from its best weights on the same images (train14), lr 0.0002, 2
  # torch threads (the run that made it was named ko_vgg_bilstm_ctc_stage15_h64)
  IMG_H=64 IMG_W=512 TRAIN=train14 VALID=valid9 VAL_EVERY=500 THREADS=$STAGE15_THREADS \
    fine_tune_wide 15 0.5-0.15-0.15-0.2 0.0002 "$STAGE15_ITER" "$STAGE15_MINUTES" 23
fi

# evaluate the last stage's model per style with no model flags: the checkpoint describes itself;
# after stages 14 or 15, the pair too (stage 13 first, each image's more confident reading kept)
for style in document caption scene signboard cover headline scorebug plate vertical; do
  reading=()
  if [ "$style" = vertical ]; then reading=(--vertical 1.2); fi
  "$PY" test.py --eval_data "$OUT/test/$style" --saved_model "$FROM" --workers 0 "${reading[@]}"
  if [ -n "$FIRST_MODEL" ]; then
    "$PY" test.py --eval_data "$OUT/test/$style" --saved_model "$FIRST_MODEL" --ensemble "$FROM" --workers 0 \
      "${reading[@]}"
  fi
done
