"""Step 1 of the AIHub pipeline: real AIHub-shaped label files in, train/valid/test JSON-lines out."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from korean.dataset_preprocess import (
    AnnotationFormatError,
    Record,
    preprocess,
    split_by_image,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
FONT_PATH = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def render(path: Path, text: str, size: tuple[int, int] = (120, 48)) -> None:
    """Draw Hangul ``text`` with a real Korean font and save it (format from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((4, 4), text, fill="black", font=ImageFont.truetype(str(FONT_PATH), 24))
    image.save(path)


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def read_split(output_dir: Path, name: str) -> list[dict]:
    lines = (output_dir / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def read_all(output_dir: Path) -> list[dict]:
    return [r for name in ("train", "valid", "test") for r in read_split(output_dir, name)]


def wild_json(path: Path) -> Path:
    """A Text-in-the-wild file: 2 images, words, a character, an ignored box, an NFD word."""
    return write_json(path, {
        "info": {"name": "Text in the wild"}, "licenses": [],
        "images": [
            {"id": "00000001", "file_name": "00000001.jpg", "width": 200, "height": 100, "type": "book"},
            {"id": "00000002", "file_name": "00000002.jpg", "width": 200, "height": 100, "type": "sign"},
        ],
        "annotations": [
            {"id": 1, "image_id": "00000001", "text": "한국어", "bbox": [10, 10, 60, 30],
             "attributes": {"class": "word"}},
            {"id": 2, "image_id": "00000001", "text": "가", "bbox": [80, 10, 20, 30],
             "attributes": {"class": "character"}},
            {"id": 3, "image_id": "00000001", "text": None, "bbox": [5, 50, 20, 20],
             "attributes": {"class": "ignored"}},
            {"id": 4, "image_id": "00000002", "text": nfd(" 서울역 "), "bbox": [0.5, 1.5, 80, 40],
             "attributes": {"class": "word"}},
            {"id": 5, "image_id": "00000002", "text": None, "bbox": [1, 1, 5, 5],
             "attributes": {"class": "word"}},
            {"id": 6, "image_id": "00000002", "text": "글씨", "bbox": [1, 1, "5", 5],
             "attributes": {"class": "word"}},
        ],
    })


def single_item_json(path: Path, printed: bool) -> Path:
    """A printed (with font/is_aug) or handwriting file: one text item per image."""
    items = [("글자(음절)", "가", False), ("단어(어절)", "나무", False), ("단어(어절)", "하늘", True),
             ("문장", "나는 학교에 간다", False), ("단어(어절)", nfd("바다"), False)]
    images, annotations = [], []
    for index, (item_type, text, is_aug) in enumerate(items, start=1):
        images.append({"id": f"{index:08d}", "file_name": f"{index:08d}.png", "width": 120, "height": 48,
                       "type": "printed" if printed else "handwriting"})
        attributes = {"type": item_type}
        if printed:
            attributes.update(font="나눔고딕", is_aug=is_aug)
        annotations.append({"id": f"{index:08d}", "image_id": f"{index:08d}", "text": text,
                            "attributes": attributes})
    return write_json(path, {"info": {}, "licenses": [], "images": images, "annotations": annotations})


def outdoor_file(root: Path, split: str, subclass: str, number: int, texts: list[str],
                 orientation: str = "가로", cls: str = "간판") -> Path:
    """One 야외 실제 촬영 label JSON (and its photo) in the [라벨]/[원천] folder layout."""
    stem = f"{cls}_{subclass}_{number:06d}"
    render(root / split / f"[원천]{split}_{cls}_{subclass}" / f"{stem}.jpg", texts[0], (200, 100))
    annotations = [{"id": k + 1, "text": text, "bbox": [10 + 40 * k, 20, 36, 30]} for k, text in enumerate(texts)]
    return write_json(root / split / f"[라벨]{split}_{cls}_{subclass}" / f"{stem}.json", {
        "images": [{"file_name": f"{stem}.jpg", "width": 200, "height": 100}],
        "annotations": annotations,
        "metadata": [{"wordorientation": orientation, "class": cls, "subclass": subclass,
                      "date": "2021-09-01"}],
    })


# --------------------------------------------------------------------------- wild

def test_wild_keeps_words_with_nfc_text_and_counts_drops(tmp_path: Path) -> None:
    label = wild_json(tmp_path / "labels" / "textinthewild_data_info.json")
    summary = preprocess("wild", label, tmp_path / "out", split="1,0,0", show_progress=False)

    records = read_split(tmp_path / "out", "train")
    assert [(r["image"], r["text"], r["bbox"]) for r in records] == [
        ("00000001.jpg", "한국어", [10, 10, 60, 30]),
        ("00000002.jpg", "서울역", [0.5, 1.5, 80, 40]),
    ]
    assert records[1]["text"] == unicodedata.normalize("NFC", "서울역")
    assert records[0]["source"] == "textinthewild_data_info.json#1"
    assert records[0]["image_size"] == [200, 100]
    assert summary["dropped"] == {"class_not_selected": 2, "null_text": 1, "malformed_bbox": 1}
    assert summary["kept"] == {"train": 2, "valid": 0, "test": 0}
    assert read_split(tmp_path / "out", "test") == []


def test_wild_character_class_can_be_selected(tmp_path: Path) -> None:
    label = wild_json(tmp_path / "info.json")
    summary = preprocess("wild", label, tmp_path / "out", classes="word,character", split="1,0,0",
                         show_progress=False)
    assert [r["text"] for r in read_all(tmp_path / "out")] == ["한국어", "가", "서울역"]
    assert summary["dropped"]["class_not_selected"] == 1


# --------------------------------------------------------------------------- printed / handwriting

def test_printed_selects_words_and_drops_augmented(tmp_path: Path) -> None:
    label = single_item_json(tmp_path / "printed_data_info.json", printed=True)
    summary = preprocess("printed", label, tmp_path / "out", split="1,0,0", show_progress=False)
    records = read_split(tmp_path / "out", "train")
    assert [(r["image"], r["text"], r["bbox"]) for r in records] == [
        ("00000002.png", "나무", None), ("00000005.png", "바다", None)]
    assert records[1]["text"] == unicodedata.normalize("NFC", "바다")
    assert summary["dropped"] == {"augmented": 1, "type_not_selected": 2}


def test_printed_keep_aug_and_english_type_aliases(tmp_path: Path) -> None:
    label = single_item_json(tmp_path / "printed_data_info.json", printed=True)
    preprocess("printed", label, tmp_path / "out", types="word,sentence", keep_aug=True, split="1,0,0",
               show_progress=False)
    assert [r["text"] for r in read_all(tmp_path / "out")] == ["나무", "하늘", "나는 학교에 간다", "바다"]


def test_handwriting_syllables_by_korean_short_name(tmp_path: Path) -> None:
    label = single_item_json(tmp_path / "handwriting_data_info.json", printed=False)
    summary = preprocess("handwriting", label, tmp_path / "out", types="글자", split="1,0,0",
                         show_progress=False)
    assert [r["text"] for r in read_all(tmp_path / "out")] == ["가"]
    assert summary["dropped"] == {"type_not_selected": 4}


# --------------------------------------------------------------------------- outdoor

def outdoor_tree(root: Path) -> None:
    outdoor_file(root, "Training", "가로형간판", 1, ["우리 약국", "xxx약국"])
    outdoor_file(root, "Training", "가로형간판", 2, [nfd("빵집"), "   "])
    outdoor_file(root, "Training", "세로형간판", 3, ["세로글씨"], orientation="세로")
    outdoor_file(root, "Training", "돌출간판", 4, ["카페"])
    outdoor_file(root, "Training", "표지", 5, ["도서"], cls="책표지")


def test_outdoor_maps_label_folders_to_image_folders_and_filters(tmp_path: Path) -> None:
    outdoor_tree(tmp_path / "data")
    summary = preprocess("outdoor", tmp_path / "data", tmp_path / "out", split="1,0,0", show_progress=False)
    records = read_all(tmp_path / "out")
    assert [(r["image"], r["text"]) for r in records] == [
        ("Training/[원천]Training_간판_가로형간판/간판_가로형간판_000001.jpg", "우리 약국"),
        ("Training/[원천]Training_간판_가로형간판/간판_가로형간판_000002.jpg", "빵집"),
        ("Training/[원천]Training_간판_돌출간판/간판_돌출간판_000004.jpg", "카페"),
        ("Training/[원천]Training_책표지_표지/책표지_표지_000005.jpg", "도서"),
    ]
    assert all((tmp_path / "data" / r["image"]).is_file() for r in records)
    assert records[1]["text"] == unicodedata.normalize("NFC", "빵집")
    assert records[0]["bbox"] == [10, 20, 36, 30] and records[0]["image_size"] == [200, 100]
    assert records[0]["source"] == "Training/[라벨]Training_간판_가로형간판/간판_가로형간판_000001.json#1"
    assert summary["dropped"] == {"empty_text": 1, "illegible": 1, "vertical": 1}
    assert summary["label_files"] == 5


def test_outdoor_keep_flags_and_class_filters(tmp_path: Path) -> None:
    outdoor_tree(tmp_path / "data")
    summary = preprocess("outdoor", tmp_path / "data", tmp_path / "out", classes="간판",
                         subclasses="가로형간판,세로형간판", keep_illegible=True, keep_vertical=True,
                         split="1,0,0", show_progress=False)
    assert [r["text"] for r in read_all(tmp_path / "out")] == ["우리 약국", "xxx약국", "빵집", "세로글씨"]
    assert summary["dropped"] == {"class_not_selected": 1, "empty_text": 1, "subclass_not_selected": 1}


def test_outdoor_single_label_folder_gives_paths_relative_to_its_image_folder(tmp_path: Path) -> None:
    outdoor_tree(tmp_path / "data")
    label_folder = tmp_path / "data" / "Training" / "[라벨]Training_간판_돌출간판"
    preprocess("outdoor", label_folder, tmp_path / "out", split="1,0,0", show_progress=False)
    assert [r["image"] for r in read_all(tmp_path / "out")] == ["간판_돌출간판_000004.jpg"]


# --------------------------------------------------------------------------- splitting

def many_photos(root: Path, count: int) -> None:
    """``count`` outdoor label files of three boxes each (no photos needed for step 1)."""
    for number in range(1, count + 1):
        write_json(root / "[라벨]Training_간판_가로형간판" / f"간판_가로형간판_{number:06d}.json", {
            "images": [{"file_name": f"간판_가로형간판_{number:06d}.jpg", "width": 90, "height": 40}],
            "annotations": [{"id": k, "text": f"간판{number}-{k}", "bbox": [k * 30, 0, 30, 40]} for k in range(3)],
            "metadata": [{"wordorientation": "가로", "class": "간판", "subclass": "가로형간판"}],
        })


def test_split_is_by_photo_seeded_and_sized_by_ratio(tmp_path: Path) -> None:
    many_photos(tmp_path / "labels", 30)
    first = preprocess("outdoor", tmp_path / "labels", tmp_path / "a", show_progress=False)
    again = preprocess("outdoor", tmp_path / "labels", tmp_path / "b", seed=42, show_progress=False)
    other = preprocess("outdoor", tmp_path / "labels", tmp_path / "c", seed=7, show_progress=False)

    assert first["images"] == {"train": 24, "valid": 3, "test": 3}
    assert first["kept"] == {"train": 72, "valid": 9, "test": 9}
    for name in ("train", "valid", "test"):
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
    images = {name: {r["image"] for r in read_split(tmp_path / "a", name)} for name in ("train", "valid", "test")}
    assert not images["train"] & images["valid"] and not images["train"] & images["test"]
    assert not images["valid"] & images["test"]
    test_other = {r["image"] for r in read_split(tmp_path / "c", "test")}
    assert len(test_other) == 3 and test_other != images["test"]
    assert other["images"] == first["images"]


def test_split_does_not_depend_on_record_order() -> None:
    records = [Record(f"photo{i % 10}.jpg", f"t{i}", [0, 0, 1, 1], f"s#{i}") for i in range(40)]
    forward = split_by_image(records, (0.6, 0.2, 0.2), seed=3)
    backward = split_by_image(list(reversed(records)), (0.6, 0.2, 0.2), seed=3)
    for name in ("train", "valid", "test"):
        assert {r.source for r in forward[name]} == {r.source for r in backward[name]}
    assert [len({r.image for r in forward[n]}) for n in ("train", "valid", "test")] == [6, 2, 2]


# --------------------------------------------------------------------------- errors and safety

def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "labels" / "[라벨]x" / "broken.json"
    bad.parent.mkdir(parents=True)
    bad.write_text('{"images": [],\n  "annotations": [,]}', encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=r"broken\.json: invalid JSON at line 2, column 19"):
        preprocess("outdoor", tmp_path / "labels", tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()


def test_wrong_format_names_missing_key_and_suggests_the_right_one(tmp_path: Path) -> None:
    label = wild_json(tmp_path / "info.json")
    with pytest.raises(AnnotationFormatError,
                       match=r"info\.json: not a 'outdoor' annotation file: missing top-level key 'metadata' "
                             r"\(it looks like the 'wild' format"):
        preprocess("outdoor", label, tmp_path / "out", show_progress=False)
    with pytest.raises(AnnotationFormatError, match=r"annotations\[0\]\.attributes has no key 'type'"):
        preprocess("printed", label, tmp_path / "out", show_progress=False)


def test_missing_annotation_key_is_named(tmp_path: Path) -> None:
    label = write_json(tmp_path / "info.json", {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [
        {"id": 1, "image_id": 1, "text": "가", "bbox": [0, 0, 1, 1], "attributes": {"class": "word"}},
        {"id": 2, "image_id": 1, "text": "나", "attributes": {"class": "word"}}]})
    with pytest.raises(AnnotationFormatError, match=r"info\.json: .*annotations\[1\] has no key 'bbox'"):
        preprocess("wild", label, tmp_path / "out", show_progress=False)


@pytest.mark.parametrize("options, message", [
    ({"split": "0.8,0.1"}, "three non-negative numbers"),
    ({"split": "0.8,0.3,0.1"}, "must sum to 1"),
    ({"split": "a,b,c"}, "expected three numbers"),
    ({"types": "word"}, "--types applies only to"),
    ({"classes": "letters"}, "unknown class 'letters'"),
])
def test_bad_options_are_explained(tmp_path: Path, options: dict, message: str) -> None:
    label = wild_json(tmp_path / "info.json")
    with pytest.raises(ValueError, match=message):
        preprocess("wild", label, tmp_path / "out", show_progress=False, **options)


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path) -> None:
    label = wild_json(tmp_path / "info.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "train.jsonl").write_text("hand-edited\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="train.jsonl already exists; pass --overwrite"):
        preprocess("wild", label, out, show_progress=False)
    assert (out / "train.jsonl").read_text(encoding="utf-8") == "hand-edited\n"
    preprocess("wild", label, out, overwrite=True, split="1,0,0", show_progress=False)
    assert len(read_split(out, "train")) == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "preprocess_summary.json", "test.jsonl", "train.jsonl", "valid.jsonl"]


# --------------------------------------------------------------------------- command line

def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "korean/dataset_preprocess.py", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, encoding="utf-8", timeout=60)


def test_command_line_help_run_and_error(tmp_path: Path) -> None:
    assert "--label_path" in run_script("--help").stdout

    outdoor_tree(tmp_path / "data")
    done = run_script("--format", "outdoor", "--label_path", str(tmp_path / "data"),
                      "--output_dir", str(tmp_path / "out"), "--split", "0.5,0.25,0.25")
    assert done.returncode == 0, done.stderr
    assert "Read 5 label file(s) (outdoor)" in done.stdout
    assert "vertical text, 세로 (use --keep_vertical to keep)" in done.stdout
    assert len(read_all(tmp_path / "out")) == 4

    failed = run_script("--format", "wild", "--label_path", str(tmp_path / "data"),
                        "--output_dir", str(tmp_path / "out2"))
    assert failed.returncode == 2
    assert "error:" in failed.stderr and "images[0] has no key 'id'" in failed.stderr
    assert "try --format outdoor" in failed.stderr
