"""README.md stays true: its commands run, as a user would type them, in a copy of the repository.

Each test copies the git-tracked files into a temporary folder, parses README.md, and runs the
commands of one section in order with ``subprocess`` from the copy's root (``python`` replaced
by this interpreter). Commands are only scaled down, never changed in meaning: an argparse flag
given twice keeps its last value, so sizes are appended (or a value replaced in place), and the
Naver crawler is pointed at a local HTTP server serving Naver-like pages. The data a command
expects to find (AIHub photos, DTRB's LMDB folders, an English checkpoint) is made here, from
images rendered with a real Korean font. The internet is never contacted.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import lmdb
import pytest
from PIL import Image, ImageDraw, ImageFont

from conftest import REPO, NaverStub, Reply, accuracy_line, headline_page
from korean.hangul import is_hangul_syllable

README = Path(REPO) / 'README.md'
CI_SCRIPT = Path(REPO) / '.ci' / 'run'
NAVER_PAGES = Path(REPO) / 'tests' / 'data' / 'naver'
KOREAN_SECTION = '한국어 파이프라인 / The Korean pipeline'
DTRB_SECTION = 'Using it like DTRB'
# copied beside the tracked files: the alphabets and the vocabulary every step reads
EXTRA_FOLDERS = ('korean/alphabets', 'korean/data')

# the only changes made to a README command: sizes (see the module docstring)
TINY_MODEL = ['--output_channel', '32', '--hidden_size', '32']
TRAIN_SCALE = ['--num_iter', '2', '--valInterval', '1', '--batch_size', '8', '--workers', '0', *TINY_MODEL]
EVAL_SCALE = ['--workers', '0', *TINY_MODEL]
NUM_IMAGES = '48'
LEXICON_LABELS = '5000'
COMMAND_TIMEOUT = 300  # seconds; every command here takes a few
SHELL_OPERATORS = {'&&', '||', '|', ';', '>', '>>', '<', '&'}

DTRB_ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz'  # the default --character
BENCHMARKS = ('IIIT5k_3000', 'SVT', 'IC03_860', 'IC03_867', 'IC13_857', 'IC13_1015',
              'IC15_1811', 'IC15_2077', 'SVTP', 'CUTE80')
STAGE_FLAGS = ('--Transformation', '--FeatureExtraction', '--SequenceModeling', '--Prediction')
ENGLISH_WORDS = ('coffee', 'street', 'hotel', 'bank', 'open', 'sale', 'taxi', 'metro', 'park',
                 'store', 'bus7', 'exit2')
BACKUP_NAME = re.compile(r'^\d{6}_\d{4}(_\d+)?\.txt$')
FT_SUMMARY = re.compile(r'^Loaded (\d+) tensors from (.+) \(fine-tuning, non-strict\); skipped (\d+)\.$',
                        re.MULTILINE)

# Naver: page 2 of each section holds one headline of its own (page 1 is the shared fixture page)
PAGE_TWO_HEADLINES = {
    '100': '여야 원내대표 오늘 회동',
    '101': '수출 석 달 연속 증가세',
    '102': '주말 전국 곳곳에 비 소식',
    '103': '봄꽃 축제 이번 주말 개막',
    '104': '국제 유가 이틀째 하락',
    '105': '새 반도체 공장 착공식 열려',
}
PAGE_ONE_HEADLINE = '지하철 요금 내달부터 인상'  # section_normal.html's '（서울=연합뉴스） 지하철 …', cleaned

# AIHub "outdoor" fixture: 12 horizontal signboard photos of three words each, plus text the
# README says step 1 drops (an illegible 'xxx' box, and a photo of vertical text)
SIGN_WORDS = ('약국', '빵집', '카페', '식당', '서점', '꽃집', '안경원', '병원', '치킨', '분식',
              '세탁소', '문구', '우체국', '은행', '마트', '노래방', '미용실', '주유소', '정육점', '과일',
              '철물점', '학원', '사진관', '목욕탕', '떡집', '한의원', '치과', '편의점', '만두', '국수',
              '냉면', '호텔', '모텔', '공원', '시장', '상회')
AIHUB_PHOTOS = 12
VERTICAL_WORD = '세로간판'


# ------------------------------------------------------------------------------ README parsing

HEADING = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')
FENCE = re.compile(r'^\s*```\s*(\w*)\s*$')


def markdown_lines_outside_code(text: str) -> Iterator[tuple[int, str, bool]]:
    """(index, line, inside a fenced block) for every line; fence lines count as inside."""
    inside = False
    for index, line in enumerate(text.splitlines()):
        if FENCE.match(line):
            yield index, line, True
            inside = not inside
            continue
        yield index, line, inside


def readme_section(text: str, title: str) -> str:
    """The Markdown under the heading ``title``, up to the next heading of the same or a
    higher level (sub-sections included). Fails, listing the headings, when it is missing."""
    lines = text.splitlines()
    headings = [(i, len(m.group(1)), m.group(2)) for i, line, code in markdown_lines_outside_code(text)
                if not code and (m := HEADING.match(line))]
    for position, (start, level, name) in enumerate(headings):
        if name == title:
            end = next((i for i, lvl, _ in headings[position + 1:] if lvl <= level), len(lines))
            return '\n'.join(lines[start + 1:end])
    raise AssertionError(f'README.md has no heading {title!r}; its headings are: '
                         f'{[name for _, _, name in headings]}')


def bash_blocks(markdown: str) -> list[list[str]]:
    """The commands of every ```bash block, in order: lines ending in a backslash joined to the
    next, blank lines and ``#`` comment lines dropped. Other fenced blocks are ignored."""
    blocks: list[list[str]] = []
    block: list[str] | None = None  # lines of the open bash block
    in_other_block = False
    for line in markdown.splitlines():
        fence = FENCE.match(line)
        if fence and block is not None:
            blocks.append(join_continuations(block))
            block = None
        elif fence and in_other_block:
            in_other_block = False
        elif fence:
            block, in_other_block = ([], False) if fence.group(1) == 'bash' else (None, True)
        elif block is not None:
            block.append(line)
    return blocks


def join_continuations(lines: list[str]) -> list[str]:
    commands, pending = [], ''
    for line in lines:
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith('#')):
            continue
        if stripped.endswith('\\'):
            pending += stripped[:-1].rstrip() + ' '
            continue
        commands.append(pending + stripped)
        pending = ''
    if pending:
        raise AssertionError(f'README.md: a bash block ends in a continuation line: {pending!r}')
    return commands


def section_commands(title: str) -> list[str]:
    """Every command of the ```bash blocks of README section ``title``, in order."""
    commands = [c for block in bash_blocks(readme_section(README.read_text(encoding='utf-8'), title))
                for c in block]
    assert commands, f'README.md section {title!r} holds no ```bash command'
    return commands


# ------------------------------------------------------------------------------ running commands

def flag_values(argv: list[str], flag: str) -> list[str]:
    """Every value given to ``flag``, in order (a repeatable flag's list)."""
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == flag]


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value argparse would keep for ``flag`` (its last occurrence), or None."""
    values = flag_values(argv, flag)
    return values[-1] if values else None


def with_flag(argv: list[str], flag: str, value: str) -> list[str]:
    """``argv`` with every value of ``flag`` set to ``value`` (appended when absent)."""
    argv = list(argv)
    if flag not in argv:
        return argv + [flag, value]
    for i, token in enumerate(argv[:-1]):
        if token == flag:
            argv[i + 1] = value
    return argv


def script_of(argv: list[str]) -> str:
    return argv[1].replace('\\', '/')


def python_argv(command: str) -> list[str]:
    """A README command as an argv list run by this interpreter; only ``python SCRIPT ...``
    commands without shell operators can be run faithfully without a shell."""
    argv = shlex.split(command)
    operators = SHELL_OPERATORS.intersection(argv)
    assert not operators, f'README command uses shell operators {operators}: {command}'
    assert len(argv) >= 2 and argv[0] == 'python', \
        f'README command is not "python SCRIPT ...", which this test runs with sys.executable: {command}'
    return [sys.executable] + argv[1:]


def user_environment(cache_dir: Path) -> dict[str, str]:
    """The environment of a user's shell, made hermetic: one torch thread per process (two
    cores are shared), no proxy between the crawler and 127.0.0.1, the font ink cache in a
    temporary folder, and no PYTHONPATH that could import the real repository instead of the
    copy."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in {'http_proxy', 'https_proxy', 'all_proxy', 'pythonpath'}}
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', NO_PROXY='127.0.0.1,localhost',
               no_proxy='127.0.0.1,localhost', KOREAN_STR_CACHE=str(cache_dir),
               PYTHONIOENCODING='utf-8', PYTHONUNBUFFERED='1')
    return env


@dataclass
class Workspace:
    """A copied repository that README commands run in (``run`` keeps a transcript for failure
    messages), with what its commands need from outside: the Naver stand-in and a font."""
    root: Path
    env: dict[str, str]
    naver: NaverStub | None = None
    font: ImageFont.FreeTypeFont | None = None
    transcript: list[str] = field(default_factory=list)

    def run(self, readme_command: str, argv: list[str]) -> str:
        shown = shlex.join([Path(argv[0]).name] + argv[1:])
        try:
            result = subprocess.run(argv, cwd=self.root, env=self.env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, encoding='utf-8', errors='replace',
                                    timeout=COMMAND_TIMEOUT)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f'README command still running after {COMMAND_TIMEOUT} s:\n'
                                 f'  {readme_command}\nran as: {shown}') from e
        self.transcript.append(shown)
        assert result.returncode == 0, (
            f'README command failed (exit {result.returncode}):\n  {readme_command}\n'
            f'ran as: {shown}\nafter: {self.transcript[:-1]}\noutput (last 4000 characters):\n'
            f'{result.stdout[-4000:]}')
        return result.stdout


def copy_repository(destination: Path) -> Path:
    """Copy the git-tracked files of the working tree (and the alphabet and vocabulary
    folders) to ``destination``, as a fresh clone would hold them."""
    listed = subprocess.run(['git', 'ls-files', '-z'], cwd=REPO, stdout=subprocess.PIPE, check=True).stdout
    for relative in filter(None, listed.decode('utf-8').split('\0')):
        source = Path(REPO) / relative
        if source.is_file():  # a tracked file deleted in the working tree is not part of it
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for folder in EXTRA_FOLDERS:
        shutil.copytree(Path(REPO) / folder, destination / folder, dirs_exist_ok=True)
    return destination


# ------------------------------------------------------------------------------ reading results

def lmdb_labels(folder: Path) -> list[str]:
    """The labels of the LMDB dataset at ``folder``, read with the lmdb package itself."""
    assert (folder / 'data.mdb').is_file(), f'{folder} is not an LMDB dataset (no data.mdb)'
    env = lmdb.open(str(folder), readonly=True, lock=False, readahead=False, meminit=False)
    try:
        with env.begin() as txn:
            count = int(txn.get(b'num-samples'))
            return [txn.get(b'label-%09d' % i).decode('utf-8') for i in range(1, count + 1)]
    finally:
        env.close()


def lmdb_leaves(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob('data.mdb'))


def demo_rows(output: str) -> dict[str, tuple[str, float]]:
    """{image path: (prediction, confidence)} from demo.py's printed table, whose every batch
    starts with a dashed line, the header and a dashed line."""
    lines = output.splitlines()
    header = [i for i, line in enumerate(lines) if line.split('\t')[0].strip() == 'image_path']
    assert header, f'demo.py printed no result table:\n{output[-2000:]}'
    for i in header:
        assert lines[i - 1] == '-' * 80 and lines[i + 1] == '-' * 80, lines[i - 1:i + 2]
        assert [part.strip() for part in lines[i].split('\t')] == \
            ['image_path', 'predicted_labels', 'confidence score']
    rows = {}
    for line in lines:
        parts = line.split('\t')
        if len(parts) == 3 and parts[0].strip() != 'image_path' and re.fullmatch(r'\d\.\d{4}', parts[2]):
            rows[parts[0].strip()] = (parts[1].rstrip(), float(parts[2]))
    return rows


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob('*') if p.suffix.lower() in {'.jpg', '.jpeg', '.png'})


def assert_demo_read_every_image(output: str, ws: Workspace, folder: str) -> None:
    rows = demo_rows(output)
    printed = {(ws.root / path).resolve() for path in rows}
    expected = {p.resolve() for p in image_files(ws.root / folder)}
    assert expected and printed == expected, (sorted(printed), sorted(expected))
    assert all(0.0 <= confidence <= 1.0 for _, confidence in rows.values())
    log = (ws.root / 'log_demo_result.txt').read_text(encoding='utf-8')
    assert all(path in log for path in rows)


def checkpoint_keys(path: Path) -> list[str]:
    import torch
    return list(torch.load(path, map_location='cpu', weights_only=True))


# ------------------------------------------------------------------------------ fixtures made here

def write_english_checkpoint(path: Path, stage_flags: list[str]) -> int:
    """An English DTRB-style checkpoint (the default 36-character alphabet, keys prefixed
    ``module.``) of the model ``stage_flags`` describe, at the tiny test size. Returns its
    class count."""
    import torch

    import train
    from model import Model, save_checkpoint
    from utils import finish_common_options, make_converter

    torch.set_num_threads(1)
    opt = finish_common_options(train.build_parser().parse_args(
        stage_flags + TINY_MODEL + ['--train_data', 'unused', '--valid_data', 'unused']))
    assert opt.character == DTRB_ALPHABET
    make_converter(opt)  # sets opt.num_class
    torch.manual_seed(0)
    save_checkpoint(Model(opt), path)
    assert all(key.startswith('module.') for key in checkpoint_keys(path))
    return opt.num_class


def stage_flags_of(argv: list[str]) -> list[str]:
    flags = []
    for flag in STAGE_FLAGS:
        value = flag_value(argv, flag)
        assert value is not None, f'README command lacks {flag}: {shlex.join(argv[1:])}'
        flags += [flag, value]
    return flags


def write_outdoor_photo(root: Path, stem: str, words: list[str], font: ImageFont.FreeTypeFont,
                        subclass: str = '가로형간판', orientation: str = '가로') -> None:
    """One AIHub 야외 실제 촬영 photo (JPEG, the words drawn side by side on a signboard) and
    its label JSON, in the [원천] / [라벨] folder layout."""
    width, height = 12 + 90 * len(words), 56
    image = Image.new('RGB', (width, height), (28, 64, 140))
    draw = ImageDraw.Draw(image)
    annotations = []
    for k, word in enumerate(words):
        left, top, right, bottom = draw.textbbox((10 + 90 * k, 14), word, font=font)
        draw.rectangle((left - 3, top - 3, right + 3, bottom + 3), fill=(250, 250, 240))
        draw.text((10 + 90 * k, 14), word, fill=(10, 10, 10), font=font)
        annotations.append({'id': k + 1, 'text': word,
                            'bbox': [left - 3, top - 3, right - left + 6, bottom - top + 6]})
    images = root / f'[원천]Training_간판_{subclass}'
    labels = root / f'[라벨]Training_간판_{subclass}'
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    image.save(images / f'{stem}.jpg', quality=92)
    record = {'images': [{'file_name': f'{stem}.jpg', 'width': width, 'height': height}],
              'annotations': annotations,
              'metadata': [{'wordorientation': orientation, 'class': '간판', 'subclass': subclass}]}
    (labels / f'{stem}.json').write_text(json.dumps(record, ensure_ascii=False), encoding='utf-8')


def write_aihub_outdoor(root: Path, font: ImageFont.FreeTypeFont) -> set[str]:
    """AIHUB_PHOTOS horizontal signboard photos (three words each; the last photo's third box
    is the illegible mark 'xxx') and one vertical one. Returns the words step 1 must keep."""
    kept = set()
    for n in range(AIHUB_PHOTOS):
        words = list(SIGN_WORDS[3 * n:3 * n + 3])
        if n == AIHUB_PHOTOS - 1:
            words[2] = 'xxx'
        write_outdoor_photo(root, f'간판_가로형간판_{n + 1:06d}', words, font)
        kept.update(w for w in words if w != 'xxx')
    write_outdoor_photo(root, '간판_세로형간판_000001', [VERTICAL_WORD], font,
                        subclass='세로형간판', orientation='세로')
    return kept


@pytest.fixture
def naver_site() -> Iterator[NaverStub]:
    """Naver-like news sections on 127.0.0.1: ``/section/<sid>`` serves the fixture page
    tests/data/naver/section_normal.html and ``/section/<sid>?page=2`` one headline of
    PAGE_TWO_HEADLINES in the same markup; anything else is a 404."""
    page_one = (NAVER_PAGES / 'section_normal.html').read_text(encoding='utf-8')
    with NaverStub() as site:
        site.routes.update({f'/section/{sid}': Reply(200, page_one) for sid in PAGE_TWO_HEADLINES})
        site.routes.update({f'/section/{sid}?page=2': Reply(200, headline_page(title))
                            for sid, title in PAGE_TWO_HEADLINES.items()})
        yield site


@pytest.fixture(scope='module')
def font_cache(tmp_path_factory) -> Path:
    """One font ink cache for every command of this file (checking the fonts costs seconds)."""
    return tmp_path_factory.mktemp('font_cache')


# ------------------------------------------------------------------------------ running a section

# a step runs one README command (scaled) in the workspace and checks what it left
Step = Callable[[str, list[str], Workspace], None]


def run_section(title: str, steps: dict[str, Step], ws: Workspace) -> list[str]:
    """Run every command of README section ``title`` in order with the step for its script;
    return the scripts run."""
    ran = []
    for command in section_commands(title):
        argv = python_argv(command)
        script = script_of(argv)
        assert script in steps, f'test_readme.py does not know how to scale {script}: {command}'
        steps[script](command, argv, ws)
        ran.append(script)
    return ran


def test_readme_parser_reads_sections_blocks_and_continuations():
    markdown = (
        '# Title\n```bash\n# a comment, not a heading\npython a.py\n```\n'
        '## Wanted\ntext\n```bash\npython b.py --x 1 \\\n  --y "two words"\n\npython c.py\n```\n'
        '```\npython not_bash.py\n```\n### Sub\n```bash\npython d.py\n```\n'
        '## Next\n```bash\npython e.py\n```\n')
    section = readme_section(markdown, 'Wanted')
    assert bash_blocks(section) == [['python b.py --x 1 --y "two words"', 'python c.py'], ['python d.py']]
    assert bash_blocks(markdown)[0] == ['python a.py']
    assert python_argv('python b.py --y "two words"') == [sys.executable, 'b.py', '--y', 'two words']
    assert with_flag(['p', 's.py', '--n', '5'], '--n', '2') == ['p', 's.py', '--n', '2']
    assert with_flag(['p', 's.py'], '--w', '1') == ['p', 's.py', '--w', '1']
    with pytest.raises(AssertionError, match='no heading'):
        readme_section(markdown, 'a comment, not a heading')
    with pytest.raises(AssertionError, match='shell operators'):
        python_argv('python a.py && rm -rf data')


# ------------------------------------------------------------------------------ 1. Korean pipeline

def test_korean_pipeline_commands_run_as_written(tmp_path, font_cache, naver_site, korean_font):
    ws = Workspace(copy_repository(tmp_path / 'repo'), user_environment(font_cache),
                   naver=naver_site, font=korean_font)
    ran = run_section(KOREAN_SECTION, KOREAN_STEPS, ws)
    # the section walks the whole pipeline; losing a step would silently test less
    assert set(KOREAN_STEPS) <= set(ran), set(KOREAN_STEPS) - set(ran)


def crawl_step(command: str, argv: list[str], ws: Workspace) -> None:
    """naver_crawling.py against the local Naver stand-in: every section and page asked
    for once, cleaned NFC headlines (both pages) in headlines.txt, their words, one backup file."""
    ws.run(command, argv + ['--base_url', ws.naver.url, '--delay', '0'])
    output_dir = ws.root / flag_value(argv, '--output_dir')
    max_pages = int(flag_value(argv, '--max_pages') or 1)
    # every section, each page up to --max_pages, nothing else
    expected = sorted(f'/section/{sid}' + (f'?page={page}' if page > 1 else '')
                      for sid in PAGE_TWO_HEADLINES for page in range(1, max_pages + 1))
    assert sorted(ws.naver.paths()) == expected
    headlines = (output_dir / 'headlines.txt').read_text(encoding='utf-8').splitlines()
    assert PAGE_ONE_HEADLINE in headlines
    if max_pages > 1:
        assert set(PAGE_TWO_HEADLINES.values()) <= set(headlines)
    assert len(headlines) == len(set(headlines))
    assert all(unicodedata.is_normalized('NFC', h) and not set(h) & set('[]()（）【】<>') for h in headlines)
    words = (output_dir / 'words.txt').read_text(encoding='utf-8').splitlines()
    assert set(words) == {w for h in headlines for w in h.split()}
    backups = list((output_dir / 'backup').iterdir())
    assert len(backups) == 1 and BACKUP_NAME.match(backups[0].name), backups
    assert set(backups[0].read_text(encoding='utf-8').splitlines()) == set(headlines)


def lexicon_step(command: str, argv: list[str], ws: Workspace) -> None:
    """text_sources.py lexicon_words, LEXICON_LABELS labels: distinct NFC Hangul words, the
    same file again for the same seed."""
    argv = with_flag(argv, '--num', LEXICON_LABELS)
    ws.run(command, argv)
    output = ws.root / flag_value(argv, '--output')
    labels = output.read_text(encoding='utf-8').splitlines()
    assert len(labels) == len(set(labels)) == int(LEXICON_LABELS)
    assert all(unicodedata.is_normalized('NFC', w) and all(map(is_hangul_syllable, w)) for w in labels)
    first = output.read_bytes()
    ws.run(command, argv)
    assert output.read_bytes() == first


def dictionary_step(command: str, argv: list[str], ws: Workspace) -> None:
    """text_sources.py dictionary: wordfreq's Korean words, distinct, NFC Hangul, as many as
    the module's own list."""
    from korean.text_sources import wordfreq_korean_words
    out = ws.run(command, argv)
    words = (ws.root / flag_value(argv, '--output')).read_text(encoding='utf-8').splitlines()
    assert out.strip() == f'{len(words)} words written to {flag_value(argv, "--output")}'
    assert words == wordfreq_korean_words() and len(words) > 20000
    assert all(unicodedata.is_normalized('NFC', w) and all(map(is_hangul_syllable, w)) for w in words)


def text_sources_step(command: str, argv: list[str], ws: Workspace) -> None:
    steps = {'lexicon_words': lexicon_step, 'dictionary': dictionary_step}
    assert argv[2] in steps, f'README runs text_sources.py {argv[2]}, which this test does not check: {command}'
    steps[argv[2]](command, argv, ws)


def generate_step(command: str, argv: list[str], ws: Workspace) -> None:
    """generate_word_images.py, NUM_IMAGES images with one worker: an LMDB of that many
    labelled images, drawing on the --text_file words too."""
    argv = with_flag(with_flag(argv, '--num_images', NUM_IMAGES), '--workers', '1')
    ws.run(command, argv)
    output = ws.root / flag_value(argv, '--output')
    assert flag_value(argv, '--format') == 'lmdb'
    labels = lmdb_labels(output)
    assert len(labels) == int(NUM_IMAGES) and all(labels)
    for text_file in flag_values(argv, '--text_file'):
        # the crawled words are one of the sources: some of them made it into the images
        assert set(labels) & set((ws.root / text_file).read_text(encoding='utf-8').split())


def preprocess_step(command: str, argv: list[str], ws: Workspace) -> None:
    """dataset_preprocess.py on an outdoor fixture written first at --label_path: every
    legible horizontal word in exactly one split, no photo in two splits, train non-empty."""
    label_path = ws.root / flag_value(argv, '--label_path')
    kept_words = write_aihub_outdoor(label_path, ws.font)
    ws.run(command, argv)
    output_dir = ws.root / flag_value(argv, '--output_dir')
    splits = {}
    for name in ('train', 'valid', 'test'):
        lines = (output_dir / f'{name}.jsonl').read_text(encoding='utf-8').splitlines()
        splits[name] = [json.loads(line) for line in lines]
    assert splits['train'], 'the 0.8/0.1/0.1 split left no training record'
    texts = [r['text'] for records in splits.values() for r in records]
    # illegible 'xxx' and vertical text dropped, everything else kept once, photos never split
    assert sorted(texts) == sorted(kept_words)
    photos = [{r['image'] for r in records} for records in splits.values()]
    assert not (photos[0] & photos[1] or photos[0] & photos[2] or photos[1] & photos[2])
    assert all((label_path / r['image']).is_file() for records in splits.values() for r in records)


def crop_step(command: str, argv: list[str], ws: Workspace) -> None:
    """dataset_preprocess_2.py: one readable crop and gt.txt line per annotation record."""
    ws.run(command, argv)
    records = (ws.root / flag_value(argv, '--annotation_file')).read_text(encoding='utf-8').splitlines()
    output_dir = ws.root / flag_value(argv, '--output_dir')
    gt = (output_dir / 'gt.txt').read_text(encoding='utf-8').splitlines()
    assert len(gt) == len(records)
    for line in gt:
        path, label = line.split('\t')
        with Image.open(output_dir / path) as crop:
            assert crop.width > 8 and crop.height > 8
    assert sorted(line.split('\t')[1] for line in gt) == sorted(json.loads(r)['text'] for r in records)


def create_lmdb_step(command: str, argv: list[str], ws: Workspace) -> None:
    """create_lmdb_dataset.py: an LMDB holding the gt.txt labels in order (NFC)."""
    ws.run(command, argv)
    gt_labels = [line.split('\t', 1)[1] for line in
                 (ws.root / flag_value(argv, '--gtFile')).read_text(encoding='utf-8').splitlines() if line]
    assert lmdb_labels(ws.root / flag_value(argv, '--outputPath')) == \
        [unicodedata.normalize('NFC', label) for label in gt_labels]


def build_alphabet_step(command: str, argv: list[str], ws: Workspace) -> None:
    """build_alphabet.py: the --check report counts every label of the --lmdb / --gt
    inputs, and an --output alphabet holds every character of them (lower-cased, one a line)."""
    out = ws.run(command, argv)
    labels = [label for root in flag_values(argv, '--lmdb')
              for leaf in lmdb_leaves(ws.root / root) for label in lmdb_labels(leaf)]
    for gt in flag_values(argv, '--gt'):
        labels += [line.split('\t', 1)[1] for line in
                   (ws.root / gt).read_text(encoding='utf-8').splitlines() if line]
    check = flag_value(argv, '--check')
    if check:
        report = rf'^--check {re.escape(check)}: keeps \d+ of {len(labels)} labels'
        assert re.search(report, out, re.MULTILINE), out
    output = flag_value(argv, '--output')
    if output:
        alphabet = (ws.root / output).read_text(encoding='utf-8').splitlines()
        assert set(''.join(labels).lower()) - {' '} <= set(alphabet)
        assert all(len(ch) == 1 for ch in alphabet)


def train_step(command: str, argv: list[str], ws: Workspace) -> None:
    """train.py, TRAIN_SCALE appended (for --FT an English checkpoint is written first):
    the files of saved_models/<exp_name>/, every --select_data set used, and for --FT the
    printed summary skipping only the prediction layer sized for 37 classes."""
    checkpoint = flag_value(argv, '--saved_model')
    if '--FT' in argv:
        assert checkpoint, f'--FT without --saved_model: {command}'
        num_class = write_english_checkpoint(ws.root / checkpoint, stage_flags_of(argv))
    out = ws.run(command, argv + TRAIN_SCALE)
    default_name = '-'.join(flag_value(argv, flag) for flag in STAGE_FLAGS) + \
        f'-Seed{flag_value(argv, "--manualSeed") or 1111}'
    exp_name = flag_value(argv, '--exp_name') or default_name
    exp_dir = ws.root / 'saved_models' / exp_name
    for name in ('log_dataset.txt', 'opt.txt', 'log_train.txt', 'best_accuracy.pth', 'best_norm_ED.pth'):
        assert (exp_dir / name).is_file(), f'{command}\ndid not write {exp_dir / name}'
    # the batch mixes every --select_data set: each name is a dataset of its own
    log = (exp_dir / 'log_dataset.txt').read_text(encoding='utf-8')
    for name in (flag_value(argv, '--select_data') or 'MJ-ST').split('-'):
        used = rf'^sub-directory:\t/.*{re.escape(name)}.*\t num samples: [1-9]'
        assert re.search(used, log, re.MULTILINE), log
    if '--FT' in argv:
        summary = FT_SUMMARY.search(out)
        assert summary, f'--FT printed no load summary:\n{out[-3000:]}'
        loaded, skipped = int(summary.group(1)), int(summary.group(3))
        after = out[summary.end():].lstrip('\n').splitlines()
        assert after[0] == 'Skipped:', after[:3]
        skipped_lines = after[1:1 + skipped]
        skipped_keys = [line.strip().split(':')[0] for line in skipped_lines]
        # only the prediction layer, sized for DTRB's classes, starts fresh
        assert skipped_keys and all(key.startswith('Prediction.') for key in skipped_keys), skipped_lines
        assert all(f'[{num_class}' in line for line in skipped_lines), skipped_lines
        assert loaded + skipped == len(checkpoint_keys(ws.root / checkpoint))


def eval_step(command: str, argv: list[str], ws: Workspace) -> None:
    """test.py: the final accuracy line (or, with --benchmark_all_eval, the line of the ten
    benchmarks and the total), also logged under result/."""
    out = ws.run(command, argv + EVAL_SCALE)
    if '--benchmark_all_eval' in argv:
        final = [line for line in out.splitlines() if line.startswith('accuracy: ')]
        assert len(final) == 1, out[-3000:]
        for name in BENCHMARKS:
            assert re.search(rf'\b{name}: \d+\.\d{{3}}\t', final[0]), final[0]
        assert re.search(r'total_accuracy: \d+\.\d{3}\t', final[0]), final[0]
        logs = list((ws.root / 'result').glob('*/log_all_evaluation.txt'))
    else:
        accuracy_line(out)  # then the CER / jamo 1-NED line, both also the log's last two lines
        logs = list((ws.root / 'result').glob('*/log_evaluation.txt'))
        assert len(logs) == 1
        assert logs[0].read_text(encoding='utf-8').splitlines()[-2:] == out.strip().splitlines()[-2:]
    assert len(logs) == 1, logs


def demo_step(command: str, argv: list[str], ws: Workspace) -> None:
    """demo.py: its table, one row per image under --image_folder, also in log_demo_result.txt;
    with --pattern, every reading in the pattern's form."""
    out = ws.run(command, argv + EVAL_SCALE)
    assert_demo_read_every_image(out, ws, flag_value(argv, '--image_folder'))
    if '--pattern' in argv:
        texts = [text for text, _ in demo_rows(out).values()]
        assert all(re.fullmatch(flag_value(argv, '--pattern'), text) for text in texts), texts


KOREAN_STEPS: dict[str, Step] = {
    'korean/naver_crawling.py': crawl_step,
    'korean/text_sources.py': text_sources_step,
    'korean/generate_word_images.py': generate_step,
    'korean/dataset_preprocess.py': preprocess_step,
    'korean/dataset_preprocess_2.py': crop_step,
    'create_lmdb_dataset.py': create_lmdb_step,
    'korean/build_alphabet.py': build_alphabet_step,
    'train.py': train_step,
    'test.py': eval_step,
    'demo.py': demo_step,
}


# ------------------------------------------------------------------------------ 2. DTRB usage

def write_dtrb_data(root: Path, render_word: Callable[..., bytes], make_lmdb: Callable[..., str]) -> None:
    """What DTRB's commands expect to find: data/ (images + gt.txt, and an LMDB at data/lmdb
    for the alphabet example), data_lmdb_release/ with MJ and ST training sets, a validation
    set and the ten benchmarks, and demo_image/."""
    data = root / 'data'
    (data / 'images').mkdir(parents=True)
    gt_words = ['서울역', 'coffee', '부산항', 'taxi', '한글', 'metro7']
    gt_lines = []
    for i, word in enumerate(gt_words):
        fmt, suffix = ('JPEG', 'jpg') if i % 2 else ('PNG', 'png')
        name = f'images/word_{i + 1}.{suffix}'
        (data / name).write_bytes(render_word(word, fmt=fmt))
        gt_lines.append(f'{name}\t{word}\n')
    (data / 'gt.txt').write_text(''.join(gt_lines), encoding='utf-8')
    make_lmdb(data / 'lmdb', ['간판', '약국', 'open'])

    release = root / 'data_lmdb_release'
    make_lmdb(release / 'training' / 'MJ' / 'MJ_train', ENGLISH_WORDS[:8])
    make_lmdb(release / 'training' / 'ST', ENGLISH_WORDS[4:])
    make_lmdb(release / 'validation', ENGLISH_WORDS[:6])
    for k, name in enumerate(BENCHMARKS):
        words = [ENGLISH_WORDS[(k + j) % len(ENGLISH_WORDS)] for j in range(3)]
        make_lmdb(release / 'evaluation' / name, words)
    (root / 'demo_image').mkdir()
    for i, word in enumerate(ENGLISH_WORDS[:4]):
        fmt, suffix = ('JPEG', 'jpg') if i % 2 else ('PNG', 'png')
        (root / 'demo_image' / f'demo_{i + 1}.{suffix}').write_bytes(render_word(word, fmt=fmt))


def test_dtrb_commands_run_as_written(tmp_path, font_cache, render_word, make_lmdb):
    ws = Workspace(copy_repository(tmp_path / 'repo'), user_environment(font_cache))
    write_dtrb_data(ws.root, render_word, make_lmdb)
    ran = run_section(DTRB_SECTION, DTRB_STEPS, ws)
    assert {'create_lmdb_dataset.py', 'train.py', 'test.py', 'demo.py'} <= set(ran), ran
    assert any('--benchmark_all_eval' in c for c in section_commands(DTRB_SECTION))


def released_model_demo_step(command: str, argv: list[str], ws: Workspace) -> None:
    """demo.py on DTRB's released English model: written here first (default alphabet)."""
    checkpoint = ws.root / flag_value(argv, '--saved_model')
    assert write_english_checkpoint(checkpoint, stage_flags_of(argv)) == len(DTRB_ALPHABET) + 2  # + [GO], [s]
    demo_step(command, argv, ws)


DTRB_STEPS: dict[str, Step] = {
    'create_lmdb_dataset.py': create_lmdb_step,
    'korean/build_alphabet.py': build_alphabet_step,
    'train.py': train_step,
    'test.py': eval_step,
    'demo.py': released_model_demo_step,
}


# ------------------------------------------------------------------------------ 2b. training at scale

SCALE_SECTION = 'Training at scale / 대규모 학습'
SCALE_WORDS = ('서울', '부산', '대구', '인천', '광주', '대전', '울산', '세종')


def scaled_training_argv(argv: list[str]) -> list[str]:
    """train.py at the test size; a resumed run goes on to twice the first run's iterations."""
    argv = with_flag(argv, '--num_iter', '4' if '--resume' in argv else '2')
    argv = with_flag(argv, '--batch_size', '4')
    return argv + ['--valInterval', '1', '--workers', '0', *TINY_MODEL]


def torchrun_argv(command: str) -> list[str]:
    argv = shlex.split(command)
    assert argv[0] == 'torchrun' and not SHELL_OPERATORS.intersection(argv), command
    return [sys.executable, '-m', 'torch.distributed.run'] + argv[1:]


def test_training_at_scale_commands_run_as_written(tmp_path, font_cache, make_lmdb, render_word):
    ws = Workspace(copy_repository(tmp_path / 'repo'), user_environment(font_cache))
    for split in ('train', 'valid', 'test'):
        make_lmdb(ws.root / 'data' / 'lmdb' / split / 'synth', SCALE_WORDS)
    (ws.root / 'data' / 'images').mkdir(parents=True)
    for i, word in enumerate(SCALE_WORDS[:3]):
        (ws.root / 'data' / 'images' / f'{i}.png').write_bytes(render_word(word))
    first_node = None
    ran = []
    for command in section_commands(SCALE_SECTION):
        argv = torchrun_argv(command) if command.startswith('torchrun') else python_argv(command)
        script = next(a for a in argv if a.endswith('.py'))
        ran.append(script)
        if script == 'train.py':
            argv = scaled_training_argv(argv)
        else:
            argv = argv + ['--workers', '0']
        if flag_value(argv, '--node_rank') == '0':  # the first machine waits for the second
            first_node = subprocess.Popen(argv, cwd=ws.root, env=ws.env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, encoding='utf-8', errors='replace')
            continue
        out = ws.run(command, argv)
        if '--resume' in argv:
            assert 'resuming from saved_models/korean_vgg_ctc/train_state.pth: iteration 2' in out, out[-3000:]
        if script == 'test.py':
            accuracy_line(out)
        if script == 'demo.py':
            assert_demo_read_every_image(out, ws, 'data/images')
        if flag_value(argv, '--node_rank') == '1':
            first_out, _ = first_node.communicate(timeout=COMMAND_TIMEOUT)
            assert first_node.returncode == 0, first_out[-4000:]
            assert 'end the training' in first_out + out
    assert ran == ['train.py'] * 2 + ['test.py', 'demo.py', 'export.py', 'demo.py'] + ['train.py'] * 3, ran
    assert (ws.root / 'korean_vgg_ctc.onnx').is_file() and (ws.root / 'korean_vgg_ctc.json').is_file()
    exp = ws.root / 'saved_models'
    assert (exp / 'korean_vgg_ctc' / 'train_state.pth').is_file()
    assert (exp / 'korean_ddp' / 'best_accuracy.json').is_file()
    assert (exp / 'korean_2nodes' / 'best_accuracy.pth').is_file()


# ------------------------------------------------------------------------------ 3. quickstart

QUICKSTART_SCALE = ['--exp_name', 'qs_test', '--train_images', '200', '--valid_images', '24',
                    '--test_images', '24', '--num_iter', '4', '--demo_images', '4', '--workers', '1']
QUICKSTART_ACCURACY = re.compile(
    r'^word accuracy, unseen words in (unseen|training) fonts \((test|valid)\): +(\d+\.\d{3}) %$',
    re.MULTILINE)


def test_quickstart_runs_and_writes_its_contact_sheet(tmp_path, font_cache):
    ws = Workspace(copy_repository(tmp_path / 'repo'), user_environment(font_cache))
    output_dir = tmp_path / 'quickstart_output'
    out = ws.run('python korean/quickstart.py',
                 [sys.executable, 'korean/quickstart.py', '--output_dir', str(output_dir), *QUICKSTART_SCALE])
    assert 'Korean quickstart finished' in out
    accuracies = QUICKSTART_ACCURACY.findall(out)
    assert [(fonts, split) for fonts, split, _ in accuracies] == [('unseen', 'test'), ('training', 'valid')], \
        out[-2000:]
    assert all(0.0 <= float(value) <= 100.0 for _, _, value in accuracies)
    with_words = re.search(r'^  the same with a Korean word list \(test\.py --lexicon\): +(\d+\.\d{3}) %$', out,
                           re.MULTILINE)
    assert with_words and 0.0 <= float(with_words.group(1)) <= 100.0, out[-2000:]
    assert len((output_dir / 'ko_words.txt').read_text(encoding='utf-8').splitlines()) > 20000
    with Image.open(output_dir / 'contact_sheet.png') as sheet:
        assert sheet.format == 'PNG' and sheet.width > 100 and sheet.height > 32
    assert (ws.root / 'saved_models' / 'qs_test' / 'best_accuracy.pth').is_file()
    assert len(image_files(output_dir / 'demo_images')) == 4


# ------------------------------------------------------------------------------ 4. CI runs README

def test_ci_runs_the_readme_test_command():
    readme = README.read_text(encoding='utf-8')
    first_block = bash_blocks(readme)[0]
    assert len(first_block) == 2, first_block
    quickstart, tests = first_block
    ci_lines = [line.strip() for line in CI_SCRIPT.read_text(encoding='utf-8').splitlines() if line.strip()]
    assert tests == ci_lines[-1]
    setup = ['bash', 'scripts/setup.sh', '&&']
    assert shlex.split(tests) == setup + ['.venv/bin/python', '-m', 'pytest', '-q', 'tests']
    # the other command sets up the same way and runs the quickstart tested above
    assert shlex.split(quickstart) == setup + ['.venv/bin/python', 'korean/quickstart.py']
    syntax = subprocess.run(['bash', '-n', str(Path(REPO) / 'scripts' / 'setup.sh')],
                            capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
