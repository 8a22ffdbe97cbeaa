"""Step 2 of the AIHub pipeline: step-1 records + real photos in, crops and gt.txt out."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from korean.dataset_preprocess import AnnotationFormatError, preprocess
from korean.dataset_preprocess_2 import crop_dataset

REPO_ROOT = Path(__file__).resolve().parent.parent
FONT_PATH = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")
SOURCE = "Training/[원천]Training_간판_가로형간판"
LABELS = "Training/[라벨]Training_간판_가로형간판"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def render(path: Path, text: str, size: tuple[int, int] = (200, 100), **save_options) -> Path:
    """Draw Hangul ``text`` with a real Korean font on a gradient and save it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    ImageDraw.Draw(image).text((8, 8), text, fill="red", font=ImageFont.truetype(str(FONT_PATH), 28))
    image.save(path, **save_options)
    return path


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def write_records(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def outdoor_label(root: Path, number: int, boxes: list[tuple[str, list[float]]]) -> str:
    stem = f"간판_가로형간판_{number:06d}"
    write_json(root / LABELS / f"{stem}.json", {
        "images": [{"file_name": f"{stem}.jpg", "width": 200, "height": 100}],
        "annotations": [{"id": k, "text": text, "bbox": bbox} for k, (text, bbox) in enumerate(boxes)],
        "metadata": [{"wordorientation": "가로", "class": "간판", "subclass": "가로형간판"}],
    })
    return f"{stem}.jpg"


def read_gt(output_dir: Path) -> list[tuple[str, str]]:
    """Parse gt.txt exactly as create_lmdb_dataset does: one path<TAB>label per line."""
    lines = (output_dir / "gt.txt").read_text(encoding="utf-8").strip("\n").split("\n")
    pairs = [tuple(line.split("\t")) for line in lines if line]
    assert all(len(pair) == 2 for pair in pairs)
    return pairs  # type: ignore[return-value]


def pixels(image: Image.Image) -> bytes:
    return image.convert("RGB").tobytes()


# --------------------------------------------------------------------------- outdoor end to end

def test_outdoor_photos_to_crops_and_gt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    photo = render(data / SOURCE / outdoor_label(data, 1, [
        ("약국", [10, 20, 60, 30]),
        ("모서리", [170, 80, 50, 40]),       # reaches past the bottom-right corner
        ("왼쪽위", [-10, -5, 30, 20]),       # starts before the top-left corner
        ("소수점", [10.5, 50.2, 20, 10.3]),  # fractional box: covers every touched pixel
        ("빈상자", [5, 5, 0, 10]),
        ("음수", [50, 50, -10, 10]),
        ("바깥", [300, 10, 20, 20]),
        (nfd("빵집"), [100, 10, 40, 40]),
    ]), "약국 빵집")
    outdoor_label(data, 2, [("사진없음", [0, 0, 10, 10]), ("사진없음2", [10, 0, 10, 10])])
    corrupt = data / SOURCE / outdoor_label(data, 3, [("깨짐", [0, 0, 10, 10])])
    corrupt.write_bytes(b"this is not a jpeg")
    truncated = data / SOURCE / outdoor_label(data, 4, [("잘림", [0, 0, 10, 10])])
    truncated.write_bytes(render(tmp_path / "whole.jpg", "잘림").read_bytes()[:600])

    preprocess("outdoor", data, tmp_path / "ann", split="1,0,0", show_progress=False)
    summary = crop_dataset(tmp_path / "ann" / "train.jsonl", data, tmp_path / "crops", workers=0,
                           show_progress=False)

    gt = read_gt(tmp_path / "crops")
    assert [label for _, label in gt] == ["약국", "모서리", "왼쪽위", "소수점", "빵집"]
    assert gt[0][0] == "images/0000/000000001.png"
    assert gt[4][1] == unicodedata.normalize("NFC", "빵집")
    expected_boxes = [(10, 20, 70, 50), (170, 80, 200, 100), (0, 0, 20, 15), (10, 50, 31, 61), (100, 10, 140, 50)]
    with Image.open(photo) as original:
        for (path, _), box in zip(gt, expected_boxes):
            with Image.open(tmp_path / "crops" / path) as crop:
                assert crop.format == "PNG"
                assert crop.size == (box[2] - box[0], box[3] - box[1])
                assert pixels(crop) == pixels(original.crop(box))

    assert summary["written"] == summary["crops"] == 5
    assert summary["skipped"] == {"box_outside_image": 1, "corrupt_image": 2, "empty_or_negative_box": 2,
                                  "missing_image": 2}
    assert summary["boxes_clipped"] == 2
    assert summary["images"]["total"] == 4 and summary["images"]["read"] == 1
    assert summary["images"]["missing"] == 1 and summary["images"]["corrupt"] == 2
    assert summary["examples"]["missing_image"] == [f"{SOURCE}/간판_가로형간판_000002.jpg"]
    skipped = (tmp_path / "crops" / "skipped.tsv").read_text(encoding="utf-8").splitlines()
    assert len(skipped) == 7 and skipped[0].split("\t")[:3] == ["5", f"{SOURCE}/간판_가로형간판_000001.jpg",
                                                               "empty_or_negative_box"]
    assert json.loads((tmp_path / "crops" / "crop_summary.json").read_text(encoding="utf-8")) == summary
    assert not list((tmp_path / "crops").rglob(".*tmp*"))


def test_pool_workers_give_the_same_output_as_one_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for number in range(1, 7):
        stem = outdoor_label(data, number, [(f"글자{number}{k}", [k * 50, 10, 45, 60]) for k in range(4)])
        render(data / SOURCE / stem, f"간판 {number}")
    preprocess("outdoor", data, tmp_path / "ann", split="1,0,0", show_progress=False)

    single = crop_dataset(tmp_path / "ann" / "train.jsonl", data, tmp_path / "one", workers=0,
                          show_progress=False)
    pooled = crop_dataset(tmp_path / "ann" / "train.jsonl", data, tmp_path / "pool", workers=2,
                          show_progress=False)
    assert pooled["written"] == single["written"] == 24
    assert read_gt(tmp_path / "pool") == read_gt(tmp_path / "one")
    for path, _ in read_gt(tmp_path / "one"):
        assert (tmp_path / "pool" / path).read_bytes() == (tmp_path / "one" / path).read_bytes()


# --------------------------------------------------------------------------- whole-image items

def test_printed_items_keep_the_original_file_bytes(tmp_path: Path) -> None:
    images = tmp_path / "printed_images"
    render(images / "syllable" / "00000001.png", "가", (48, 48))
    render(images / "word" / "00000002.jpg", "나무", (96, 48), quality=80)
    write_json(tmp_path / "printed_data_info.json", {
        "info": {}, "licenses": [],
        "images": [{"id": "00000001", "file_name": "00000001.png", "width": 48, "height": 48},
                   {"id": "00000002", "file_name": "00000002.jpg", "width": 96, "height": 48}],
        "annotations": [
            {"id": "1", "image_id": "00000001", "text": "가",
             "attributes": {"type": "글자(음절)", "font": "나눔고딕", "is_aug": False}},
            {"id": "2", "image_id": "00000002", "text": nfd("나무"),
             "attributes": {"type": "단어(어절)", "font": "나눔고딕", "is_aug": False}},
        ],
    })
    preprocess("printed", tmp_path / "printed_data_info.json", tmp_path / "ann", types="syllable,word",
               split="1,0,0", show_progress=False)
    # The images sit in per-type folders the JSON does not mention: found by file name.
    summary = crop_dataset(tmp_path / "ann" / "train.jsonl", images, tmp_path / "out", workers=0,
                           show_progress=False)

    gt = read_gt(tmp_path / "out")
    assert gt == [("images/0000/000000001.png", "가"), ("images/0000/000000002.jpg", "나무")]
    assert (tmp_path / "out" / gt[0][0]).read_bytes() == (images / "syllable" / "00000001.png").read_bytes()
    assert (tmp_path / "out" / gt[1][0]).read_bytes() == (images / "word" / "00000002.jpg").read_bytes()
    assert summary["copies"] == 2 and summary["images"]["found_by_name"] == 2


# --------------------------------------------------------------------------- paths, labels, orientation

def test_hangul_names_stored_decomposed_on_disk_are_found(tmp_path: Path) -> None:
    # macOS writes Hangul file names decomposed (NFD); the annotations say NFC.
    folder = tmp_path / "root" / nfd("[원천]Training_간판_가로형간판")
    render(folder / nfd("간판_가로형간판_000009.jpg"), "간판")
    annotation = write_records(tmp_path / "train.jsonl", [
        {"image": "[원천]Training_간판_가로형간판/간판_가로형간판_000009.jpg", "text": "간판",
         "bbox": [0, 0, 50, 40], "source": "x#1", "image_size": [200, 100]}])
    summary = crop_dataset(annotation, tmp_path / "root", tmp_path / "out", workers=0, show_progress=False)
    assert read_gt(tmp_path / "out") == [("images/0000/000000001.png", "간판")]
    assert summary["images"]["found_by_name"] == 1


def test_labels_with_tabs_or_newlines_are_sanitised_or_skipped(tmp_path: Path) -> None:
    render(tmp_path / "root" / "사진.png", "가나다")
    records = [{"image": "사진.png", "text": text, "bbox": [0, 0, 20, 20]}
               for text in ("가\t나", "다\n라", " \t ", nfd("마바"))]
    annotation = write_records(tmp_path / "ann.jsonl", records)

    sanitised = crop_dataset(annotation, tmp_path / "root", tmp_path / "a", workers=0, show_progress=False)
    assert [label for _, label in read_gt(tmp_path / "a")] == ["가 나", "다 라", "마바"]
    assert sanitised["labels_sanitised"] == 3 and sanitised["skipped"] == {"empty_label": 1}

    skipped = crop_dataset(annotation, tmp_path / "root", tmp_path / "b", label_policy="skip", workers=0,
                           show_progress=False)
    assert read_gt(tmp_path / "b") == [("images/0000/000000004.png", "마바")]
    assert skipped["skipped"] == {"label_has_tab_or_newline": 3}


def test_exif_orientation_applied_only_when_it_matches_the_annotated_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: 40 wide, 100 high; shown rotated to 100 x 40
    photo = render(tmp_path / "root" / "폰사진.jpg", "가", (40, 100), exif=exif, quality=95)
    records = [{"image": "폰사진.jpg", "text": "회전", "bbox": [0, 0, 50, 40], "image_size": [100, 40]},
               {"image": "폰사진.jpg", "text": "회전", "bbox": [0, 0, 50, 40], "image_size": [300, 300]}]
    write_records(tmp_path / "a.jsonl", records[:1])
    write_records(tmp_path / "b.jsonl", records[1:])

    rotated = crop_dataset(tmp_path / "a.jsonl", tmp_path / "root", tmp_path / "a", workers=0, show_progress=False)
    with Image.open(photo) as original, Image.open(tmp_path / "a" / "images/0000/000000001.png") as crop:
        assert crop.size == (50, 40)
        assert pixels(crop) == pixels(ImageOps.exif_transpose(original).crop((0, 0, 50, 40)))
    assert rotated["images"]["exif_rotated"] == 1

    mismatch = crop_dataset(tmp_path / "b.jsonl", tmp_path / "root", tmp_path / "b", workers=0, show_progress=False)
    with Image.open(tmp_path / "b" / "images/0000/000000001.png") as crop:
        assert crop.size == (40, 40)
    assert mismatch["images"]["size_mismatch"] == 1


# --------------------------------------------------------------------------- errors and atomicity

def test_failed_run_leaves_no_gt_txt(tmp_path: Path) -> None:
    render(tmp_path / "root" / "a.png", "가")
    annotation = write_records(tmp_path / "ann.jsonl", [{"image": "a.png", "text": "가", "bbox": [0, 0, 9, 9]}])
    out = tmp_path / "out"
    (out / "images").mkdir(parents=True)
    (out / "gt.txt").write_text("images/old.png\t옛날\n", encoding="utf-8")
    (out / "skipped.tsv").write_text("1\told.png\tmissing_image\t\n", encoding="utf-8")
    (out / "images" / "0000").write_text("a file where the crop folder must go", encoding="utf-8")

    with pytest.raises(FileExistsError):
        crop_dataset(annotation, tmp_path / "root", out, overwrite=True, workers=0, show_progress=False)
    assert not (out / "gt.txt").exists() and not (out / "skipped.tsv").exists()
    assert not list(out.rglob(".*tmp*"))


def test_existing_gt_is_kept_without_overwrite(tmp_path: Path) -> None:
    render(tmp_path / "root" / "a.png", "가")
    annotation = write_records(tmp_path / "ann.jsonl", [{"image": "a.png", "text": "가", "bbox": [0, 0, 9, 9]}])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "gt.txt").write_text("keep me\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="gt.txt already exists; pass --overwrite"):
        crop_dataset(annotation, tmp_path / "root", tmp_path / "out", workers=0, show_progress=False)
    assert (tmp_path / "out" / "gt.txt").read_text(encoding="utf-8") == "keep me\n"


@pytest.mark.parametrize("content, message", [
    ('{"image": "a.png", "text": "가", "bbox": null}\n{"image": "a.png", "text": }\n',
     r"ann\.jsonl, line 2, column 28: invalid JSON"),
    ('{"image": "a.png", "bbox": null}\n', r"ann\.jsonl, line 1: missing key 'text'"),
    ('{"image": "a.png", "text": "가", "bbox": [1, 2, 3]}\n', r"line 1: 'bbox' must be null or \[x, y, w, h\]"),
    ('{"image": "../a.png", "text": "가", "bbox": null}\n', r"line 1: 'image' '../a.png' must stay inside"),
])
def test_bad_annotation_lines_are_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "ann.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationFormatError, match=message):
        crop_dataset(tmp_path / "ann.jsonl", tmp_path / "root", tmp_path / "out", workers=0, show_progress=False)
    assert not (tmp_path / "out" / "gt.txt").exists()


def test_command_line_help_and_run(tmp_path: Path) -> None:
    script = [sys.executable, "korean/dataset_preprocess_2.py"]
    shown = subprocess.run([*script, "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--image_root" in shown.stdout

    render(tmp_path / "[원천]사진" / "한글.jpg", "한글")
    annotation = write_records(tmp_path / "ann.jsonl", [
        {"image": "[원천]사진/한글.jpg", "text": "한글", "bbox": [0, 0, 60, 40]},
        {"image": "[원천]사진/없음.jpg", "text": "없음", "bbox": [0, 0, 60, 40]}])
    done = subprocess.run([*script, "--annotation_file", str(annotation), "--image_root", str(tmp_path),
                           "--output_dir", str(tmp_path / "out"), "--workers", "2"],
                          cwd=REPO_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Wrote 1 of 2 items" in done.stdout
    assert "image file not found under --image_root  e.g. [원천]사진/없음.jpg" in done.stdout
    assert read_gt(tmp_path / "out") == [("images/0000/000000001.png", "한글")]

    again = subprocess.run([*script, "--annotation_file", str(annotation), "--image_root", str(tmp_path),
                            "--output_dir", str(tmp_path / "out")],
                           cwd=REPO_ROOT, capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert again.returncode == 2 and "pass --overwrite" in again.stderr
