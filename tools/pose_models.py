#!/usr/bin/env python3
"""Make the edge's pose models: `python tools/pose_models.py` (or `make pose-models`).

1. Fetch the MediaPipe 0.10.21 wheel from PyPI (no install, `pip download --no-deps`).
   Its BlazePose models are Apache-2.0 (mediapipe's LICENSE), fit for a commercial product.
2. Take `pose_detection.tflite` and `pose_landmark_full.tflite` out of it.
3. Convert each to ONNX (tools/tflite_to_onnx.py) and check that ONNX Runtime agrees with
   LiteRT running the original on the same random inputs.
4. Write edge/models/*.onnx and edge/models/MANIFEST.json (sources, hashes, agreement).

Needs the build extras: `pip install tflite ai-edge-litert` (in the dev extras)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.tflite_to_onnx import convert  # noqa: E402

WHEEL = "mediapipe==0.10.21"
MEMBERS = {
    "pose_detection": "mediapipe/modules/pose_detection/pose_detection.tflite",
    "pose_landmark_full": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite",
}
OUT = ROOT / "edge" / "models"
# Largest allowed |ONNX - LiteRT| relative to the output's own range, per output.
TOLERANCE = 1e-3


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary=:all:",
                    "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64", "-d", str(folder), WHEEL],
                   check=True, timeout=600)
    return next(folder.glob("mediapipe-*.whl"))


def agreement(tflite_path: Path, onnx_path: Path, trials: int = 3) -> dict[str, float]:
    """Worst relative disagreement per output over random inputs."""
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_path))
    interpreter.allocate_tensors()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    detail = interpreter.get_input_details()[0]
    rng = np.random.default_rng(0)
    worst: dict[str, float] = {}
    for _ in range(trials):
        x = rng.random(detail["shape"], dtype=np.float32)
        interpreter.set_tensor(detail["index"], x)
        interpreter.invoke()
        ours = dict(zip([o.name for o in session.get_outputs()], session.run(None, {detail["name"]: x})))
        for out in interpreter.get_output_details():
            ref = interpreter.get_tensor(out["index"])
            spread = max(float(np.abs(ref).max()), 1.0)
            worst[out["name"]] = max(worst.get(out["name"], 0.0), float(np.abs(ref - ours[out["name"]]).max()) / spread)
    return worst


def main(argv: list[str] | None = None) -> int:
    import argparse

    import onnx

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the .onnx files and MANIFEST.json")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"source": WHEEL, "licence": "Apache-2.0 (MediaPipe)", "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        wheel = fetch_wheel(folder)
        manifest["wheel_sha256"] = _sha256(wheel.read_bytes())
        with zipfile.ZipFile(wheel) as archive:
            for name, member in MEMBERS.items():
                tflite_bytes = archive.read(member)
                tflite_path = folder / f"{name}.tflite"
                tflite_path.write_bytes(tflite_bytes)
                onnx_path = out / f"{name}.onnx"
                onnx.save(convert(tflite_path), str(onnx_path))
                worst = agreement(tflite_path, onnx_path)
                print(f"{name}: {onnx_path} "
                      + ", ".join(f"{k} {v:.1e}" for k, v in sorted(worst.items())))
                if max(worst.values()) > TOLERANCE:
                    print(f"{name}: ONNX disagrees with LiteRT beyond {TOLERANCE}", file=sys.stderr)
                    return 1
                manifest["models"][name] = {
                    "member": member,
                    "tflite_sha256": _sha256(tflite_bytes),
                    "onnx_sha256": _sha256(onnx_path.read_bytes()),
                    "max_relative_difference": worst,
                }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
