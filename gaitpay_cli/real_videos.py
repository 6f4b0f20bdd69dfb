"""The real walking videos named in shared/data/README.md, fetched from the package
registries at set-up time (never from anywhere else) and cached under build/videos/."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("GAITPAY_VIDEO_CACHE") or Path(__file__).resolve().parents[1] / "build" / "videos")


def sports2d_demo() -> Path:
    """Sports2D's demo clip (BSD-3): a woman walks across the frame side-on, 1768x994, 30 fps."""
    target = CACHE / "sports2d-demo.mp4"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, "sports2d==0.8.34"],
                           check=True, timeout=600)
            wheel = next(Path(tmp).glob("sports2d-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                target.write_bytes(archive.read("Sports2D/Demo/demo.mp4"))
    return target


def opencv_vtest() -> Path:
    """OpenCV's vtest.avi (Debian opencv-doc): pedestrians 80-140 px tall, 768x576, 10 fps."""
    target = CACHE / "vtest.avi"
    if not target.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            fetched = subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, capture_output=True, timeout=900)
            if fetched.returncode != 0:  # a machine that never read the package lists
                subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True, timeout=900)
                subprocess.run(["apt-get", "download", "opencv-doc"], cwd=tmp, check=True, capture_output=True, timeout=900)
            deb = next(Path(tmp).glob("opencv-doc_*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp + "/x"], check=True, timeout=300)
            target.write_bytes(next(Path(tmp, "x").rglob("vtest.avi")).read_bytes())
    return target

