"""How much one person's walk changes between walks, against how much people differ: the real
UCalgary walkers (Kinect 3D, evaluation data) beside the synthetic walker (gait/synth), for
the style measures both can be read from in 3D.

    python tools/walker_calibration.py [--real ../shared/data/ucalgary-dev] [--people 200]

For each measure it prints the mean, the spread between people (of each person's mean) and
the spread within a person (pooled over each person's walks), real and synthetic. The
walker's per-walk variation (gait.synth.walker.WALK_VARIATION, WALK_POSTURE_DEG) is set from
this table; docs/gait.md gives the figures. Only summary spreads of the real set are read:
no real walk trains anything.

Real walks: the normal walks (runs 1 and 2) that `gait.datasets.ucalgary.load` keeps, in
the floor frame of the recording camera's calibration (`installation_camera`), their first
70% of frames (the walkers slow to a stop in front of the camera at the end). Synthetic
walks: two walks of each synthetic person, 3 s at 30 fps, varied as the training data is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gait.datasets import ucalgary  # noqa: E402
from gait.synth.dataset import SynthConfig  # noqa: E402
from gait.synth.walker import sample_person, simulate, vary_for_walk  # noqa: E402
from gait.walk import J  # noqa: E402

MEASURES = ("elbow flexion (deg)", "trunk lean (deg)", "head ahead of shoulders (leg)", "step width (leg)",
            "cadence (steps/min)", "arm swing (deg)")
STEADY_SHARE = 0.7

# Joints by role: (left, right) pairs and the head centre.
_ROLES = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def _sagittal_angle(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Angle of top->bottom from straight down, forward positive (frame: x side, y up, z forward)."""
    v = bottom - top
    return np.arctan2(v[:, 2], -v[:, 1])


def _inner_angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    u, v = a - b, c - b
    cos = (u * v).sum(1) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
    return np.arccos(np.clip(cos, -1.0, 1.0))


def measures(body: dict[str, np.ndarray], fps: float) -> np.ndarray:
    """The MEASURES of one walk. body: role -> [T, 3] in a frame with x sideways, y up, z
    the walking direction; roles 'left_<joint>', 'right_<joint>' and 'head'."""
    g = body.__getitem__
    leg = float(np.median(np.linalg.norm(g("left_hip") - g("left_knee"), axis=1)
                          + np.linalg.norm(g("left_knee") - g("left_ankle"), axis=1)))
    elbow = np.concatenate([np.pi - _inner_angle(g(f"{s}_shoulder"), g(f"{s}_elbow"), g(f"{s}_wrist"))
                            for s in ("left", "right")])
    hips = (g("left_hip") + g("right_hip")) / 2
    shoulders = (g("left_shoulder") + g("right_shoulder")) / 2
    trunk = shoulders - hips
    swing = [_sagittal_angle(g(f"{s}_shoulder"), g(f"{s}_elbow")) for s in ("left", "right")]
    separation = g("left_ankle")[:, 2] - g("right_ankle")[:, 2]
    separation = separation - separation.mean()
    spectrum = np.abs(np.fft.rfft(separation * np.hanning(len(separation)), 1024))
    freqs = np.fft.rfftfreq(1024, 1 / fps)
    walking = (freqs > 0.5) & (freqs < 1.6)  # stride frequencies of walking
    return np.array([
        np.degrees(np.median(elbow)),
        np.degrees(np.median(np.arctan2(trunk[:, 2], trunk[:, 1]))),
        float(np.median(g("head")[:, 2] - shoulders[:, 2])) / leg,
        float(np.median(np.abs(g("left_ankle")[:, 0] - g("right_ankle")[:, 0]))) / leg,
        freqs[walking][np.argmax(spectrum[walking])] * 120,
        np.degrees(np.mean([np.percentile(a, 95) - np.percentile(a, 5) for a in swing]) / 2),
    ])


def walking_frame(joints: np.ndarray, camera) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Kinect camera-space joints [..., 3] in the floor frame of the camera's calibration: x
    sideways, y height over the floor, z towards the camera (the direction the walkers go)."""
    # Kinect camera space has y up; the calibration's camera frame (OpenCV) has y down.
    floor = (joints * np.array([1.0, -1.0, 1.0]) - camera.t) @ camera.R
    floor[..., 2] *= -1
    return floor


def real_walks(root: Path) -> dict[str, list[np.ndarray]]:
    """Subject -> measures of each normal walk that the evaluation counts."""
    duplicates: list[ucalgary.Duplicate] = []
    not_walks: list[ucalgary.NotAWalk] = []
    kept = {(w.subject, w.run) for w in ucalgary.load(root, duplicates, not_walks) if w.condition == "normal"}
    camera = ucalgary.installation_camera(root)
    kinect = {f"{side}_{role}": ucalgary.KINECT.index(f"{role.capitalize()}{side[0].upper()}")
              for side in ("left", "right") for role in _ROLES}
    kinect["head"] = ucalgary.KINECT.index("Head")
    out: dict[str, list[np.ndarray]] = {}
    for path in sorted(root.glob("sub*/Run[12]/*.csv")):
        subject, run = path.parent.parent.name, int(path.parent.name[3:])
        if (subject, run) not in kept:
            continue
        joints = ucalgary.read_csv(path)
        floor = walking_frame(joints[: int(len(joints) * STEADY_SHARE)], camera)
        body = {role: floor[:, index] for role, index in kinect.items()}
        out.setdefault(subject, []).append(measures(body, ucalgary.FPS))
    return out


def synthetic_walks(people: int, walks: int = 2, seed: int = 4321) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    spread = SynthConfig().walk_spread
    out: dict[str, list[np.ndarray]] = {}
    for i in range(people):
        person = sample_person(rng)
        for _ in range(walks):
            joints = simulate(vary_for_walk(person, rng, spread), 3.0, 30.0, rng)
            body = {f"{side}_{role}": joints[:, J[f"{side}_{role}"]] for side in ("left", "right") for role in _ROLES}
            body["head"] = (joints[:, J["left_ear"]] + joints[:, J["right_ear"]]) / 2  # the head's centre
            out.setdefault(str(i), []).append(measures(body, 30.0))
    return out


def spreads(walks: dict[str, list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, between-person spread (of person means) and pooled within-person spread."""
    means = np.stack([np.mean(w, axis=0) for w in walks.values()])
    within = [np.var(np.stack(w), axis=0, ddof=1) for w in walks.values() if len(w) > 1]
    return means.mean(0), means.std(0, ddof=1), np.sqrt(np.mean(within, axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--real", type=Path, default=ucalgary.default_root())
    parser.add_argument("--people", type=int, default=200)
    args = parser.parse_args()
    if not args.real.exists():
        sys.exit(f"walker_calibration: no real walkers at {args.real}")
    real = real_walks(args.real)
    r_mean, r_between, r_within = spreads(real)
    s_mean, s_between, s_within = spreads(synthetic_walks(args.people))
    print(f"real: {len(real)} people, {sum(len(w) for w in real.values())} normal walks; "
          f"synthetic: {args.people} people, 2 walks each")
    print(f"{'measure':32s} {'real mean':>9s} {'between':>8s} {'within':>7s}   {'synth mean':>10s} "
          f"{'between':>8s} {'within':>7s}   within synth/real")
    for k, name in enumerate(MEASURES):
        print(f"{name:32s} {r_mean[k]:9.3f} {r_between[k]:8.3f} {r_within[k]:7.3f}   {s_mean[k]:10.3f} "
              f"{s_between[k]:8.3f} {s_within[k]:7.3f}   {s_within[k] / r_within[k]:6.1f}")


if __name__ == "__main__":
    main()
