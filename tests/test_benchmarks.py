"""python -m benchmarks: the FLOPs counter against hand counts and published figures, the fresh-process harness,
reports, plots, merging devices, device records, and bad inputs."""
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.__main__ import main as bench_main
from benchmarks.device import cpuinfo_fields, simd_features
from benchmarks.flops import count
from benchmarks.report import pareto
from tests.conftest import SAMPLE_VERIFICATION, ULTRAFACE, requires_shared

PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08
"""
PI5_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU part\t: 0xd0b
"""
X86_CPUINFO = "model name\t: Some CPU\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni\ncpu MHz\t: 2600.0\n"


def tiny_graph(path):
    """Conv 3→8 3×3 (groups 1) → depthwise 3×3 → MaxPool 2×2 → Add → Flatten → Gemm 8·4·4 → 10, input 1×3×8×8."""
    rng = np.random.default_rng(0)
    weights = {"w1": rng.normal(size=(8, 3, 3, 3)), "w2": rng.normal(size=(8, 1, 3, 3)),
               "gw": rng.normal(size=(128, 10)), "gb": rng.normal(size=(10,))}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=[1, 1, 1, 1], group=8),
             helper.make_node("MaxPool", ["c2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Add", ["p", "p"], ["a"]),
             helper.make_node("Flatten", ["a"], ["f"]),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
                              [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_flops_of_a_hand_made_graph_are_counted_by_hand(tmp_path):
    tiny_graph(tmp_path / "tiny.onnx")
    cost = count(tmp_path / "tiny.onnx")
    conv = 8 * 8 * 8 * (3 * 3 * 3)  # output elements × Cin·kH·kW
    depthwise = 8 * 8 * 8 * (1 * 3 * 3)  # groups = channels: one input channel per output
    gemm = 10 * 128
    assert cost.macs == conv + depthwise + gemm
    assert cost.other_ops == 8 * 4 * 4 * 4 + 8 * 4 * 4  # max pool: kernel area per output; Add: one per output
    assert cost.flops == 2 * cost.macs + cost.other_ops
    assert cost.params == 8 * 27 + 8 * 9 + 1280 + 10


def test_a_graph_with_unknown_shapes_is_refused_rather_than_undercounted(tmp_path):
    tiny_graph(tmp_path / "tiny.onnx")
    model = onnx.load(str(tmp_path / "tiny.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "H"
    onnx.save(model, str(tmp_path / "dynamic.onnx"))
    with pytest.raises(ValueError, match="cannot be inferred"):
        count(tmp_path / "dynamic.onnx")


@requires_shared
def test_flops_agree_with_the_published_figures(scrfd_hub, tmp_path):
    import onnxsim
    import torch

    from models.registry import build

    kps = count(scrfd_hub / "model.onnx")  # SCRFD-500M-KPS at 480×640
    assert kps.flops == pytest.approx(1.113e9, rel=0.01)  # the figure listed for this model at 480×640
    net = build("scrfd_500m").eval()  # insightface's "0.5 GFLOPs" (mmcv MACs, 640×480), no landmark head
    torch.onnx.export(net, torch.zeros(1, 3, 480, 640), str(tmp_path / "s.onnx"), dynamo=False, opset_version=13)
    simplified, _ = onnxsim.simplify(onnx.load(str(tmp_path / "s.onnx")))
    onnx.save(simplified, str(tmp_path / "s.onnx"))
    assert count(tmp_path / "s.onnx").macs == pytest.approx(0.5e9, rel=0.05)
    assert kps.macs > count(tmp_path / "s.onnx").macs  # the landmark head costs 0.07 GMACs
    # Ultra-Light publishes "90~109 MFLOPs" at 320×240 (slim, RFB): our MACs are 8-10% lower (its counter also
    # counted BN/bias work); our FLOPs (2×MACs+) are ~1.9x those figures.
    for name, published in (("slim", 90e6), ("RFB", 109e6)):
        assert count(ULTRAFACE / f"version-{name}-320_without_postprocessing.onnx").macs == pytest.approx(
            published, rel=0.12)


def test_device_record_reads_simd_features_of_x86_and_both_pi_cores():
    assert simd_features(cpuinfo_fields(X86_CPUINFO)) == ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni"]
    assert simd_features(cpuinfo_fields(PI4_CPUINFO)) == ["asimd"]  # Cortex-A72: NEON only
    assert simd_features(cpuinfo_fields(PI5_CPUINFO)) == ["asimd", "asimddp", "fphp", "asimdhp"]  # A76: +dotprod


def test_pareto_front_keeps_only_unbeaten_points():
    assert pareto([(5, 90), (3, 85), (4, 80), (10, 92), (6, 89)]) == [(3, 85), (5, 90), (10, 92)]


@pytest.fixture(scope="module")
def bench_run(default_hub, tmp_path_factory):
    """One real benchmark of the shipped hub ONNX at 1 and 2 threads (99 is skipped), with an evaluation report for
    AP, on a 640x480 and a 1024x683 image made from a committed sample."""
    import cv2

    out = tmp_path_factory.mktemp("bench")
    report = out / "eval_report.json"
    report.write_text(json.dumps({"models": [{"label": "onnx", "source": str(default_hub),
                                              "ap": {"easy": 0.92, "medium": 0.90, "hard": 0.71}}]}))
    photo = cv2.imread(str(SAMPLE_VERIFICATION / "4_Dancing_Dancing_4_95.jpg"))
    images = []
    for w, h in ((640, 480), (1024, 683)):
        images += ["--image", str(out / f"photo_{w}x{h}.jpg")]
        cv2.imwrite(images[-1], cv2.resize(photo, (w, h)))
    assert bench_main(["--model", str(default_hub), "--threads", "1,2,99", "--runs", "5", "--warmup", "1",
                       "--eval", str(report), *images, "--out", str(out)]) == 0
    return out


def test_benchmark_writes_rows_report_csv_and_plots(bench_run):
    results = json.loads((bench_run / "results.json").read_text())
    rows = results[0]["rows"]
    assert [r["threads"] for r in rows] == [1, 2]
    assert any("99 threads skipped" in note for note in results[0]["notes"])
    for row in rows:
        assert len(row["cores"]) == row["threads"]  # really pinned
        assert row["forward"]["median_ms"] > 0 and row["rss_peak_mib"] >= row["rss_loaded_mib"] > 0
        assert [e["size"] for e in row["end_to_end"]] == [[640, 480], [1024, 683]]
        assert row["macs"] == pytest.approx(0.323e9, rel=0.01)  # Ultra-Light slim at 480x640
    header = (bench_run / "results.csv").read_text().splitlines()[0]
    assert header.startswith("device,artifact,runtime,precision,size_mb,input,macs,flops")
    report = (bench_run / "report.md").read_text()
    assert "| 323 | 658 |" in report and results[0]["device"]["label"] in report and "FLOPs convention" in report
    plots = [*bench_run.glob("latency_vs_threads_*.png"), bench_run / "ap_vs_latency.png"]
    assert len(plots) == 2
    for plot in plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_merge_puts_several_devices_in_one_report(bench_run, tmp_path):
    results = json.loads((bench_run / "results.json").read_text())
    other = json.loads(json.dumps(results))
    other[0]["device"]["label"] = "Raspberry Pi 5 (aarch64, 4 cores)"
    for row in other[0]["rows"]:
        row["device"] = other[0]["device"]["label"]
    (tmp_path / "pi5.json").write_text(json.dumps(other))
    assert bench_main(["merge", str(bench_run / "results.json"), str(tmp_path / "pi5.json"),
                       "--out", str(tmp_path / "merged")]) == 0
    report = (tmp_path / "merged" / "report.md").read_text()
    devices = [line for line in report.splitlines() if line.startswith("## ")]
    assert len(devices) == 2 and devices[1] == "## Raspberry Pi 5 (aarch64, 4 cores)"


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench_main(["--artifacts", str(tmp_path), "--threads", "one"])
    assert "argument --threads: expected thread counts" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="no such folder"):
        bench_main(["--artifacts", str(tmp_path / "missing")])
    with pytest.raises(FileNotFoundError, match="holds no artifact"):
        bench_main(["--artifacts", str(tmp_path)])


def test_an_artifact_without_model_json_says_how_to_describe_it(tmp_path, default_hub):
    (tmp_path / "a").mkdir()
    shutil.copy(default_hub / "model.onnx", tmp_path / "a" / "model.onnx")
    with pytest.raises(FileNotFoundError, match="converters.describe"):
        bench_main(["--model", str(tmp_path / "a")])


@requires_shared
def test_an_onnx_file_is_benchmarked_through_its_hub(tmp_path):
    from tests.conftest import SCRFD_ONNX

    with pytest.raises(ValueError, match="needs --family and --hw"):
        bench_main(["--onnx", str(SCRFD_ONNX), "--out", str(tmp_path)])
    assert bench_main(["--onnx", str(SCRFD_ONNX), "--family", "scrfd", "--hw", "320,320", "--threads", "1",
                       "--runs", "3", "--warmup", "1", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())[0]["rows"]
    assert [(r["input"], r["runtime"]) for r in rows] == [("320x320", "onnxruntime")]
    assert rows[0]["macs"] == pytest.approx(0.55e9 * 320 * 320 / (480 * 640), rel=0.02)


def test_opencvs_face_detector_is_timed_beside_the_kits_yunet(yunet_hub, tmp_path):
    """--runtime facedetectoryn adds cv2.FaceDetectorYN on YuNet ONNX artifacts (and only those): its forward holds
    OpenCV's decode and NMS, so its row has no postprocess, and it finds the faces the kit's Detector finds."""
    images = ["--image", str(SAMPLE_VERIFICATION / "4_Dancing_Dancing_4_905.jpg")] * 2
    assert bench_main(["--model", str(yunet_hub), "--runtime", "onnxruntime", "--runtime", "facedetectoryn",
                       "--threads", "1", "--runs", "3", "--warmup", "1", *images, "--out", str(tmp_path)]) == 0
    rows = {r["runtime"]: r for r in json.loads((tmp_path / "results.json").read_text())[0]["rows"]}
    assert set(rows) == {"onnxruntime", "facedetectoryn"}
    opencv, kit = rows["facedetectoryn"], rows["onnxruntime"]
    assert opencv["postprocess"] is None and opencv["forward"]["median_ms"] > 0
    assert [e["faces"] for e in opencv["end_to_end"]] == [e["faces"] for e in kit["end_to_end"]]
    assert "(cv2.FaceDetectorYN)" in (tmp_path / "report.md").read_text()


def test_tradeoff_chart_plots_the_benchmarked_variants_that_have_an_ap(tmp_path):
    from benchmarks.tradeoff import main as tradeoff

    def row(group, kind, ms, mb):
        folder = tmp_path / group / kind
        return {"device": "d", "artifact": f"{group}/{kind}", "folder": str(folder), "group": group,
                "runtime": "litert", "precision": kind, "size_mb": mb, "input": "640x640", "threads": 1,
                "repeat": 0, "forward": {"median_ms": ms, "p10_ms": ms, "p90_ms": ms, "spread": 0.0, "runs": 3},
                "preprocess": {"median_ms": 0.1}, "postprocess": {"median_ms": 0.1}, "end_to_end": [],
                "macs": 1, "flops": 2, "params": 1, "rss_peak_mib": 90.0, "rss_runtime_import_mib": 60.0,
                "rss_base_mib": 40.0}

    rows = [row("base_640x640", "tflite-int8", 5.0, 0.4), row("pruned_640x640", "tflite-int8", 4.0, 0.3)]
    for r in rows:
        Path(r["folder"]).mkdir(parents=True)
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"device": {"label": "d"}, "rows": rows}]))
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"models": [{"source": r["folder"], "ap": {"easy": 0.9, "medium": m, "hard": 0.6}}
                                             for r, m in zip(rows, (0.85, 0.8))]}))
    out = tmp_path / "chart.png"
    assert tradeoff(["--results", str(results), "--eval", str(report), "--panel",
                     "model=base_640x640,pruned_640x640", "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    with pytest.raises(ValueError, match="no benchmarked artifact with an AP for other"):
        tradeoff(["--results", str(results), "--eval", str(report), "--panel", "other=nothing", "--out", str(out)])
