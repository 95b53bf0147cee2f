"""runtimes/, eval/ and benchmarks/ must work on a device without torch or tensorflow."""
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_runtimes_eval_and_benchmarks_import_without_torch_or_tensorflow():
    code = textwrap.dedent("""
        import sys
        for name in ("torch", "tensorflow", "tf_keras", "onnx2tf"):
            sys.modules[name] = None  # any import of these now raises ImportError
        import pkgutil, importlib, runtimes, eval, benchmarks, models.families
        for package in (runtimes, eval, benchmarks, models.families):
            for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
                importlib.import_module(module.name)  # every module, subpackages' too
        from runtimes.backends.tflite import interpreter_class
        assert interpreter_class().__module__.startswith("ai_edge_litert")
        import models, calibration_data  # the spec and calibration helpers are light too
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
