"""Every command against hostile input (issue 18): one table of command, crafted input, exit code, words the
message must hold, and the files that must and must not exist (or stay byte for byte) afterwards.

Inputs are real and small: the shipped default artifacts, the committed sample images, short MJPG clips, a
WIDER val root of four images. Commands run in this process through `run_cli`, as `python -m` runs them, so a
traceback fails the case; SIGTERM cases run as child processes.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.default import DEFAULT_MODEL
from runtimes.cli import run_cli
from tests.conftest import REPO, SAMPLE_CALIBRATION, SAMPLE_VERIFICATION
from tests.wider_fixture import event_of, write_wider_val

NAMES = ["3_Riot_Riot_3_240", "3_Riot_Riot_3_178", "4_Dancing_Dancing_4_91", "4_Dancing_Dancing_4_905"]
MAIN = {"eval": "eval.__main__", "benchmarks": "benchmarks.__main__", "train_light": "train_light.__main__"}


@dataclass(frozen=True)
class Case:
    """`args` and the paths below are formatted with the crafted inputs ({video}, {onnx}, {tmp}, ...)."""

    command: str  # the module users run with python -m
    args: str
    code: int
    words: tuple[str, ...] = ()  # in what the command printed, case-insensitive
    exists: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # files whose bytes must be as they were
    before: str = ""  # a command that must succeed first (same module), e.g. a run whose results are then reused


CASES = {
    # --- runtimes.run
    "run: output is the source": Case("runtimes.run", "{video} --out {video}", 2, ("is what", "nothing was written"),
                                      unchanged=("{video}",)),
    "run: json is the source": Case("runtimes.run", "{video} --json {video}", 2, ("is what",), unchanged=("{video}",)),
    "run: impossible nms": Case("runtimes.run", "{video} --nms -1", 2, ("--nms", "an iou above 0")),
    "run: negative fps": Case("runtimes.run", "{folder} --fps -5", 2, ("--fps", "a number above 0")),
    "run: score above 1": Case("runtimes.run", "{video} --score-thr 1.5", 2, ("--score-thr", "from 0 to 1")),
    "run: zero every": Case("runtimes.run", "{video} --every 0", 2, ("--every", "1 or more")),
    "run: truncated video says so": Case("runtimes.run", "{cut_video} --json {tmp}/cut.jsonl --reference-runs 0", 0,
                                         ("the stream ended early", "of the 120 frames"),
                                         exists=("{tmp}/cut.jsonl", "{tmp}/cut.summary.json")),
    "run: video suffix checked first": Case("runtimes.run", "{video} --out {tmp}/v.xyz --json {tmp}/v.jsonl", 2,
                                            ("unsupported suffix",), absent=("{tmp}/v.xyz", "{tmp}/v.jsonl")),
    "run: unwritable output": Case("runtimes.run", "{video} --json /proc/facekit/f.jsonl", 2, ("cannot write",)),
    "run: missing source": Case("runtimes.run", "{tmp}/nothing.mp4", 2, ("no such video",)),
    "run: zero-byte video": Case("runtimes.run", "{empty_video}", 2, ("cannot be read as a video",)),
    "run: model.json of another size": Case("runtimes.run", "{video} --model {onnx_320}", 2,
                                            ("model.json says the input is 320x640", "takes 480x640")),
    "run: corrupt model": Case("runtimes.run", "{video} --model {corrupt_onnx}", 2, ("cannot load this model",)),
    # --- runtimes.detect
    "detect: output suffix first": Case("runtimes.detect", "{image} --out {tmp}/a.xyz", 2,
                                        ("no image format", ".xyz"), absent=("{tmp}/a.xyz",)),
    "detect: output is the image": Case("runtimes.detect", "{image} --out {image}", 2, ("is the input image",),
                                        unchanged=("{image}",)),
    "detect: score above 1": Case("runtimes.detect", "{image} --score-thr 1.5", 2, ("from 0 to 1",)),
    "detect: zero threads": Case("runtimes.detect", "{image} --threads 0", 2, ("--threads", "1 or more")),
    "detect: tflite model.json of another size": Case("runtimes.detect", "{image} --model {tflite_320}", 2,
                                                      ("model.json says the input is 320x640",)),
    "detect: not an image": Case("runtimes.detect", "{text_jpg}", 2, ("cannot be read as an image",)),
    "detect: clean run": Case("runtimes.detect", "{image} --out {tmp}/faces.png", 0, ("faces; annotated image",),
                              exists=("{tmp}/faces.png",)),
    # --- eval
    "eval: score above 1": Case("eval", "--model {onnx} --data {wider} --score-thr 2", 2, ("from 0 to 1",)),
    "eval: impossible nms": Case("eval", "--model {onnx} --data {wider} --nms -1", 2, ("an iou above 0",)),
    "eval: one number for hw": Case("eval", "--model {onnx} --data {wider} --hw 480", 2, ("H,W",)),
    "eval: shard past the count": Case("eval", "--model {onnx} --data {wider} --shard 3/2", 2, ("--shard", "3/2")),
    "eval: shard zero": Case("eval", "--model {onnx} --data {wider} --shard 0/0", 2, ("--shard",)),
    "eval: zero threads": Case("eval", "--model {onnx} --data {wider} --threads 0", 2, ("1 or more",)),
    "eval: unwritable out": Case("eval", "--model {onnx} --data {wider} --out /proc/facekit", 2, ("cannot write",)),
    "eval: out is a file": Case("eval", "--model {onnx} --data {wider} --out {image}", 2, ("is a file",),
                                unchanged=("{image}",)),
    "eval: truncated face mat": Case("eval", "--model {onnx} --data {wider_cut_face} --out {tmp}/e1", 2,
                                     ("wider_face_val.mat", "truncated or damaged")),
    "eval: truncated easy mat": Case("eval", "--model {onnx} --data {wider_cut_easy} --out {tmp}/e2", 2,
                                     ("wider_easy_val.mat",)),
    "eval: missing predictions refused": Case("eval", "--pred {partial_pred} --data {wider} --out {tmp}/e3", 2,
                                              ("2 of 4 evaluated images have no prediction file", "--allow-missing"),
                                              absent=("{tmp}/e3/report.json",)),
    "eval: missing predictions allowed": Case("eval", "--pred {partial_pred} --data {wider} --out {tmp}/e4 "
                                              "--allow-missing", 0, ("scored as images without detections",),
                                              exists=("{tmp}/e4/report.json",)),
    "eval: reuse with other settings": Case("eval", "--model {onnx} --data {wider} --out {tmp}/e5 --nms 0.3", 2,
                                            ("other settings", "nms_threshold", "--overwrite"),
                                            before="--model {onnx} --data {wider} --out {tmp}/e5"),
    "eval: model.json of another size": Case("eval", "--model {onnx_320} --data {wider} --out {tmp}/e6", 2,
                                             ("model.json says the input is 320x640",)),
    # --- eval.anonymisation
    "audit: absent video": Case("eval.anonymisation", "{video} {tmp}/none.avi --reference {onnx}", 2,
                                ("none.avi", "no such video")),
    "audit: an image is no video": Case("eval.anonymisation", "{video} {image} --reference {onnx}", 2,
                                        ("photo.jpg", "not a frame-for-frame copy")),
    "audit: report would overwrite the video": Case("eval.anonymisation", "{video} {video} --reference {onnx} "
                                                    "--out {video}", 2, ("unsupported suffix",),
                                                    unchanged=("{video}",)),
    # --- converters (each refused before any export: nothing appears in --out)
    "convert: weights without model": Case("converters.onnx", "--weights {weights} --out {tmp}/c1", 2,
                                           ("needs --model",), absent=("{tmp}/c1",)),
    "convert: unknown model": Case("converters.onnx", "--model not_a_model --out {tmp}/c2", 2,
                                   ("unknown model", "ultraface_slim"), absent=("{tmp}/c2",)),
    "convert: out is a file": Case("converters.tflite", "--hw 160,160 --out {image}", 2, ("is a file",),
                                   unchanged=("{image}",)),
    "convert: one calibration image": Case("converters.tflite", "--int --hw 160,160 --calib {one_image} "
                                           "--out {tmp}/c3", 2, ("1 usable calibration images",),
                                           absent=("{tmp}/c3",)),
    "convert: missing calibration folder": Case("converters.tflite", "--int --hw 160,160 --calib {tmp}/nope "
                                                "--out {tmp}/c4", 2, ("no such image folder",), absent=("{tmp}/c4",)),
    "convert: empty calibration folder": Case("converters.ncnn", "--int --hw 160,160 --calib {empty_dir} "
                                              "--out {tmp}/c5", 2, ("it is empty",), absent=("{tmp}/c5",)),
    "convert: truncated calibration images": Case("converters.mnn", "--int --hw 160,160 --calib {cut_jpegs} "
                                                  "--out {tmp}/c6", 2, ("truncated",), absent=("{tmp}/c6",)),
    "convert: zero calibration count": Case("converters.tflite", "--int --calib-count 0 --out {tmp}/c7", 2,
                                            ("--calib-count", "1 or more"), absent=("{tmp}/c7",)),
    "convert: missing verification folder": Case("converters.ort", "--int --hw 160,160 --verify-images {tmp}/nope "
                                                 "--out {tmp}/c8", 2, ("no held-out images",), absent=("{tmp}/c8",)),
    "convert: hw not divisible by 32": Case("converters.tflite", "--hw 481,640 --out {tmp}/c9", 2, ("32",)),
    "convert: opset out of range": Case("converters.onnx", "--opset 5 --out {tmp}/c10", 2, ("from 11 to 20",)),
    "convert: agreement above 1": Case("converters.ncnn", "--min-agreement 2 --out {tmp}/c11", 2, ("from 0 to 1",)),
    "convert: missing onnx": Case("converters.onnx", "--onnx {tmp}/none.onnx --family scrfd --out {tmp}/c12", 2,
                                  ("no such ONNX file",), absent=("{tmp}/c12",)),
    "convert: int-io without int": Case("converters.tflite", "--int-io --out {tmp}/c13", 2, ("needs --int",),
                                        absent=("{tmp}/c13",)),
    # --- train_light
    "train: zero epochs": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 0", 2,
                               ("--epochs", "1 or more")),
    "train: zero batch": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 1 --batch 0", 2,
                              ("--batch", "1 or more")),
    "train: negative lr": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 1 --lr -1", 2,
                               ("--lr", "above 0")),
    "train: out is a file": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 1 "
                                 "--out {image}", 2, ("is a file",), unchanged=("{image}",)),
    "train: damaged checkpoint": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 2 "
                                      "--size 128,128 --out {cut_run} --resume", 2, ("damaged", "last.pth"),
                                      unchanged=("{cut_run}/last.pth",)),
    "train: resume with another batch": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 2 "
                                             "--size 128,128 --batch 2 --workers 0 --out {tmp}/t1 --resume", 2,
                                             ("--batch 4 (now 2)",), unchanged=("{tmp}/t1/last.pth",),
                                             before="--model ultraface_slim --data {train_data} --epochs 2 --size "
                                                    "128,128 --batch 4 --workers 0 --out {tmp}/t1"),
    "train: a new run over a checkpoint": Case("train_light", "--model ultraface_slim --data {train_data} --epochs 1 "
                                               "--size 128,128 --batch 4 --workers 0 --out {tmp}/t2", 2,
                                               ("earlier run's checkpoint", "--resume"),
                                               unchanged=("{tmp}/t2/last.pth",),
                                               before="--model ultraface_slim --data {train_data} --epochs 1 --size "
                                                      "128,128 --batch 4 --workers 0 --out {tmp}/t2"),
    # --- benchmarks
    "bench: corrupt hub onnx": Case("benchmarks", "--model {bench}/tflite-int8 --model {bench}/onnx --threads 1 "
                                    "--runs 3 --warmup 1 --image {image} --image {image} --out {tmp}/b1", 0,
                                    ("cannot be read as onnx", "cannot load this model"),
                                    exists=("{tmp}/b1/results.json",)),
    "bench: no onnx beside": Case("benchmarks", "--model {lone_tflite} --threads 1 --runs 3 --warmup 1 "
                                  "--image {image} --image {image} --out {tmp}/b2", 0, ("no hub onnx/",),
                                  exists=("{tmp}/b2/results.json",)),
    "bench: zero runs": Case("benchmarks", "--model {onnx} --runs 0", 2, ("--runs", "1 or more")),
}


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_mjpg(path: Path, frames: int, image: np.ndarray) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, image.shape[1::-1])
    for i in range(frames):
        writer.write(np.roll(image, 3 * i, axis=1))
    writer.release()
    return path


def copy_with_input_h(artifact: Path, destination: Path, input_h: int) -> str:
    shutil.copytree(artifact, destination)
    spec = json.loads((destination / "model.json").read_text())
    (destination / "model.json").write_text(json.dumps({**spec, "input_h": input_h}))
    return str(destination)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """The crafted inputs every case is formatted with."""
    root = tmp_path_factory.mktemp("hostile")
    photo = cv2.resize(cv2.imread(str(SAMPLE_VERIFICATION / f"{NAMES[0]}.jpg")), (640, 480))
    made = {"tmp": root / "work", "image": root / "photo.jpg", "weights": DEFAULT_MODEL.weights}
    made["tmp"].mkdir()
    shutil.copy(SAMPLE_VERIFICATION / f"{NAMES[0]}.jpg", made["image"])
    made["video"] = write_mjpg(root / "clip.avi", 12, photo)
    whole = write_mjpg(root / "whole.avi", 120, photo).read_bytes()
    made["cut_video"], made["empty_video"], made["text_jpg"] = root / "cut.avi", root / "empty.mp4", root / "notes.jpg"
    made["cut_video"].write_bytes(whole[: len(whole) * 3 // 10])
    made["empty_video"].write_bytes(b"")
    made["text_jpg"].write_text("not an image")
    made["folder"] = root / "frames"
    made["folder"].mkdir()
    for i in range(3):
        cv2.imwrite(str(made["folder"] / f"{i}.jpg"), photo)
    made["onnx"], made["tflite"] = DEFAULT_MODEL.artifact("onnx"), DEFAULT_MODEL.artifact("tflite-int8")
    made["onnx_320"] = copy_with_input_h(made["onnx"], root / "onnx_320", 320)
    made["tflite_320"] = copy_with_input_h(made["tflite"], root / "tflite_320", 320)
    made["corrupt_onnx"] = corrupt = root / "corrupt_onnx"
    shutil.copytree(made["onnx"], corrupt)
    (corrupt / "model.onnx").write_bytes((corrupt / "model.onnx").read_bytes()[:3000])
    made["bench"] = root / "bench"  # an artifact set whose hub ONNX is damaged
    shutil.copytree(made["tflite"], made["bench"] / "tflite-int8")
    shutil.copytree(corrupt, made["bench"] / "onnx")
    made["lone_tflite"] = root / "lone" / "tflite-int8"
    shutil.copytree(made["tflite"], made["lone_tflite"])
    made["one_image"] = root / "one"
    made["one_image"].mkdir()
    shutil.copy(made["image"], made["one_image"] / "face.jpg")
    made["empty_dir"] = root / "empty"
    made["empty_dir"].mkdir()
    made["cut_jpegs"] = root / "cut_jpegs"
    made["cut_jpegs"].mkdir()
    for path in sorted(SAMPLE_CALIBRATION.glob("*.jpg"))[:10]:
        data = path.read_bytes()
        (made["cut_jpegs"] / path.name).write_bytes(data[: len(data) * 85 // 100])
    made.update(wider_roots(root))
    made["train_data"] = train_set(root / "train")
    made["cut_run"] = root / "cut_run"
    made["cut_run"].mkdir()
    (made["cut_run"] / "last.pth").write_bytes(DEFAULT_MODEL.weights.read_bytes()[:40000])
    return {k: str(v) for k, v in made.items()}


def wider_roots(root: Path) -> dict[str, Path]:
    """A WIDER val root of four sample images (boxes: the shipped model's own confident detections), copies of it
    with a cut .mat, and a prediction folder missing two images."""
    from runtimes.detection.detector import Detector

    detector = Detector.from_artifact(DEFAULT_MODEL.artifact("onnx"), score_threshold=0.5)
    keys = [f"{event_of(n)}/{n}" for n in NAMES]
    faces, predictions = {}, root / "partial_pred"
    for name, key in zip(NAMES, keys):
        found = detector(cv2.imread(str(SAMPLE_VERIFICATION / f"{name}.jpg")))
        faces[key] = np.concatenate([found.boxes[:, :2], found.boxes[:, 2:] - found.boxes[:, :2]], axis=1)
        if key in keys[:2]:
            (predictions / key).parent.mkdir(parents=True, exist_ok=True)
            rows = [f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} 0.9" for x, y, w, h in faces[key]]
            (predictions / f"{key}.txt").write_text("\n".join([Path(key).name, str(len(rows)), *rows]) + "\n")
    wider = root / "widerface"
    write_wider_val(wider, {k: SAMPLE_VERIFICATION / f"{n}.jpg" for n, k in zip(NAMES, keys)}, faces,
                    {"easy": 30, "medium": 15, "hard": 0})
    made = {"wider": wider, "partial_pred": predictions}
    for setting, mat in (("face", "wider_face_val.mat"), ("easy", "wider_easy_val.mat")):
        copy = root / f"wider_cut_{setting}"
        shutil.copytree(wider, copy)
        data = (copy / "ground_truth" / mat).read_bytes()
        (copy / "ground_truth" / mat).write_bytes(data[: len(data) // 2])
        made[f"wider_cut_{setting}"] = copy
    return made


def train_set(root: Path) -> Path:
    """The official WIDER train layout over eight committed sample images, one labelled face each."""
    lines = []
    for path in sorted(SAMPLE_CALIBRATION.glob("*.jpg"))[:8]:
        key = f"{event_of(path.stem)}/{path.name}"
        (root / "WIDER_train" / "images" / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / "WIDER_train" / "images" / key)
        lines += [key, "1", "40 40 60 60 0 0 0 0 0 0"]
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return root


def call(command: str, args: str, capsys) -> tuple[int, str]:
    """Run `python -m command args` in this process; (exit code, everything it printed)."""
    main = importlib.import_module(MAIN.get(command, command)).main
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as exit_:
            run_cli(main, args.split())
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
    printed = capsys.readouterr()
    return exit_.value.code, printed.out + printed.err


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name, inputs, capsys, caplog):
    case = CASES[name]
    paths = {k: v.format(**inputs) for k, v in (("before", case.before), ("args", case.args))}
    if case.before:
        code, printed = call(case.command, paths["before"], capsys)
        assert code == 0, printed[-3000:]
    unchanged = {p.format(**inputs): sha(p.format(**inputs)) for p in case.unchanged}
    code, printed = call(case.command, paths["args"], capsys)
    printed += caplog.text
    assert code == case.code, printed[-3000:]
    assert "Traceback" not in printed
    for word in case.words:
        assert word.lower() in printed.lower(), f"{word!r} not in:\n{printed[-3000:]}"
    for path in case.exists:
        assert Path(path.format(**inputs)).exists(), path
    for path in case.absent:
        assert not Path(path.format(**inputs)).exists(), path
    for path, digest in unchanged.items():
        assert sha(path) == digest, f"{path} was changed"


def stop_with_sigterm(command: list[str], started, tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """Start `python -m ...` with TMPDIR=tmp, SIGTERM it once started() is true, and wait for it."""
    process = subprocess.Popen([sys.executable, "-m", *command], cwd=REPO, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp)})
    deadline = time.monotonic() + timeout
    while not started():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, "", stderr)


def leftovers(*folders: Path) -> list[str]:
    """Temp and partial files of ours (other tools' own files in TMPDIR are not ours to judge)."""
    return [str(p) for folder in folders for p in folder.rglob("*")
            if p.name.startswith("facekit-") or p.name.endswith((".tmp", ".probe")) or ".partial" in p.name]


def test_sigterm_stops_a_conversion_and_removes_its_work_folder(tmp_path):
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    done = stop_with_sigterm(["converters.tflite", "--hw", "160,160", "--out", str(out)],
                             lambda: any(tmp.glob("facekit-tflite-*")), tmp)
    assert done.returncode == 143, done.stderr[-3000:]
    assert "stopped by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    assert leftovers(tmp, tmp_path) == [] and not (out / "tflite-fp32").exists()


def test_sigterm_stops_an_evaluation_leaving_only_whole_prediction_files_to_resume_from(tmp_path):
    samples = sorted([*SAMPLE_CALIBRATION.glob("*.jpg"), *SAMPLE_VERIFICATION.glob("*.jpg")])
    images = {f"{event_of(p.stem)}/{p.stem}": p for p in samples}  # 56 images: long enough to stop midway
    write_wider_val(tmp_path / "wider", images, {}, {"easy": 30, "medium": 15, "hard": 0})
    out, model = tmp_path / "eval", str(DEFAULT_MODEL.artifact("onnx"))
    command = ["eval", "--model", model, "--data", str(tmp_path / "wider"), "--out", str(out), "--threads", "1"]
    done = stop_with_sigterm(command, lambda: any(out.rglob("*.txt")), tmp_path)
    assert done.returncode == 143, done.stderr[-3000:]
    assert leftovers(tmp_path) == [] and not (out / "report.json").exists()
    written = list(out.rglob("*.txt"))
    assert 0 < len(written) < len(images)
    for path in written:
        lines = path.read_text().splitlines()
        assert len(lines) == 2 + int(lines[1])  # whole submission files only
    again = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    record = out / f"{DEFAULT_MODEL.shipped_dir.name}-onnx" / "run.json"
    assert json.loads(record.read_text())["reused"] == len(written)


def test_sigterm_stops_training_keeping_the_last_whole_checkpoint(inputs, tmp_path):
    out = tmp_path / "run"
    done = stop_with_sigterm(["train_light", "--model", "ultraface_slim", "--data", inputs["train_data"],
                              "--epochs", "50", "--size", "128,128", "--batch", "4", "--workers", "1",
                              "--out", str(out)], lambda: (out / "last.pth").is_file(), tmp_path)
    assert done.returncode == 143, done.stderr[-3000:]
    assert "stopped by SIGTERM" in done.stderr and "Traceback" not in done.stderr
    assert leftovers(tmp_path) == []
    from train_light.engine import load_checkpoint

    assert load_checkpoint(out / "last.pth")["epoch"] >= 1
