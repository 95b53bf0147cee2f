import shutil

import numpy as np
import pytest

from calibration_data import build_calibration_set, calibration_images, list_images
from calibration_data.calibration import sample_representative
from models.families.scrfd import scrfd_spec
from tests.conftest import SAMPLE_CALIBRATION

SPEC = scrfd_spec("s", 96, 128, landmarks=False)


@pytest.fixture
def image_folder(tmp_path):
    """Ten real WIDER train images (the committed samples) from two events, one sub-folder each."""
    folder = tmp_path / "images"
    for event in ("0_Parade", "1_Handshaking"):
        (folder / event).mkdir(parents=True)
        for image in sorted(SAMPLE_CALIBRATION.glob(f"{event}_*.jpg"))[:5]:
            shutil.copy(image, folder / event / image.name)
    return folder


def test_empty_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no images.*it is empty"):
        calibration_images(tmp_path, 10)


def test_a_folder_with_one_image_is_too_small_to_calibrate(image_folder, tmp_path):
    single = tmp_path / "one"
    single.mkdir()
    shutil.copy(next(image_folder.rglob("*.jpg")), single / "face.jpg")
    with pytest.raises(ValueError, match="1 usable calibration images; INT8 needs at least 8"):
        calibration_images(single, 100)
    with pytest.raises(ValueError, match="too small"):
        calibration_images(image_folder, 1)


def test_folder_without_images_names_what_it_found(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="notes.txt"):
        list_images(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image folder"):
        calibration_images(tmp_path / "nope", 10)


def test_unreadable_image_is_named_and_nothing_is_cached(image_folder, tmp_path):
    bad = image_folder / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 this is not a jpeg \xff\xd9")  # has JPEG's end marker, so only decoding finds it
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="broken.jpg"):
        build_calibration_set(calibration_images(image_folder, 10), SPEC, cache_dir=cache)
    assert not cache.exists() or not any(cache.iterdir())


def test_truncated_images_are_dropped_and_counted(image_folder, tmp_path, caplog):
    """OpenCV decodes the first 70% of a JPEG and fills the rest with grey: such files must not calibrate."""
    whole = sorted(image_folder.rglob("*.jpg"))[0].read_bytes()
    (image_folder / "0_Parade" / "cut.jpg").write_bytes(whole[: len(whole) * 7 // 10])
    with caplog.at_level("WARNING", logger="facekit"):
        images = list_images(image_folder)
    assert len(images) == 10 and all(p.name != "cut.jpg" for p in images)
    assert "dropped 1 of 11 images that are truncated" in caplog.text and "cut.jpg" in caplog.text
    only_cut = tmp_path / "cut"
    only_cut.mkdir()
    (only_cut / "cut.jpg").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError, match="all 1 images are truncated"):
        list_images(only_cut)


def test_calibration_set_is_deterministic_preprocessed_and_cached(image_folder, tmp_path):
    cache = tmp_path / "cache"
    first = build_calibration_set(calibration_images(image_folder, 8), SPEC, cache_dir=cache)
    cached = list(cache.iterdir())
    second = build_calibration_set(calibration_images(image_folder, 8), SPEC, cache_dir=cache)
    assert first.sha256 == second.sha256 and first.paths == second.paths
    assert [p.name for p in cache.iterdir()] == [p.name for p in cached]
    assert first.canvases.shape == (8, 96, 128, 3) and first.canvases.dtype == np.uint8
    np.testing.assert_array_equal(first.canvases, second.canvases)
    normalized = first.normalized(SPEC)
    assert normalized.shape == (8, 3, 96, 128)
    np.testing.assert_allclose(normalized[0, :, 0, 0], (first.canvases[0, 0, 0] - 127.5) / 128)


def test_sampling_spreads_over_subfolders(tmp_path):
    paths = [tmp_path / event / f"{i}.jpg" for event in ("a", "b", "c") for i in range(10)]
    chosen = sample_representative(paths, 6, seed=0)
    assert sorted(p.parent.name for p in chosen) == ["a", "a", "b", "b", "c", "c"]
    assert chosen == sample_representative(paths, 6, seed=0)
    assert len(sample_representative(paths, 100)) == 30
