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
from gait.synth.walker import ABNORMALITIES, sample_person, simulate, vary_for_walk  # noqa: E402
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
    return np.array([
        np.degrees(np.median(elbow)),
        np.degrees(np.median(np.arctan2(trunk[:, 2], trunk[:, 1]))),
        float(np.median(g("head")[:, 2] - shoulders[:, 2])) / leg,
        float(np.median(np.abs(g("left_ankle")[:, 0] - g("right_ankle")[:, 0]))) / leg,
        cadence(body, fps),
        np.degrees(np.mean([np.percentile(a, 95) - np.percentile(a, 5) for a in swing]) / 2),
    ])


def cadence(body: dict[str, np.ndarray], fps: float) -> float:
    """Steps per minute: the strongest stride frequency of the ankles' forward separation."""
    separation = body["left_ankle"][:, 2] - body["right_ankle"][:, 2]
    separation = separation - separation.mean()
    spectrum = np.abs(np.fft.rfft(separation * np.hanning(len(separation)), 1024))
    freqs = np.fft.rfftfreq(1024, 1 / fps)
    walking = (freqs > 0.5) & (freqs < 1.6)  # stride frequencies of walking
    return float(freqs[walking][np.argmax(spectrum[walking])] * 120)


LEG_MEASURES = ("affected knee", "other knee", "affected hip", "other hip", "cadence")
ABNORMAL_SIDES = {"abnormal_right": "right", "abnormal_left": "left"}


def _range(angle: np.ndarray) -> float:
    """Range of motion in degrees, robust to the odd mistracked frame."""
    return float(np.degrees(np.percentile(angle, 95) - np.percentile(angle, 5)))


def leg_motion(body: dict[str, np.ndarray], fps: float) -> dict[str, float]:
    """Each knee's flexion range and each hip's sagittal swing range (degrees), and the cadence."""
    g = body.__getitem__
    out = {}
    for side in ("left", "right"):
        out[f"{side} knee"] = _range(np.pi - _inner_angle(g(f"{side}_hip"), g(f"{side}_knee"), g(f"{side}_ankle")))
        out[f"{side} hip"] = _range(_sagittal_angle(g(f"{side}_hip"), g(f"{side}_knee")))
    out["cadence"] = cadence(body, fps)
    return out


def abnormal_ratios(normal: list[dict[str, float]], abnormal: list[dict[str, float]], side: str) -> np.ndarray:
    """LEG_MEASURES of one person's abnormal walks over their normal ones (means of each)."""
    other = "left" if side == "right" else "right"
    names = (f"{side} knee", f"{other} knee", f"{side} hip", f"{other} hip", "cadence")
    return np.array([np.mean([m[n] for m in abnormal]) / np.mean([m[n] for m in normal]) for n in names])


def walking_frame(joints: np.ndarray, camera) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Kinect camera-space joints [..., 3] in the floor frame of the camera's calibration: x
    sideways, y height over the floor, z towards the camera (the direction the walkers go)."""
    # Kinect camera space has y up; the calibration's camera frame (OpenCV) has y down.
    floor = (joints * np.array([1.0, -1.0, 1.0]) - camera.t) @ camera.R
    floor[..., 2] *= -1
    return floor


def real_bodies(root: Path) -> list[tuple[str, str, dict[str, np.ndarray]]]:
    """(subject, condition, body) of every walk the evaluation counts, in the floor frame,
    its steady first STEADY_SHARE of frames."""
    duplicates: list[ucalgary.Duplicate] = []
    not_walks: list[ucalgary.NotAWalk] = []
    kept = {(w.subject, w.run): w.condition for w in ucalgary.load(root, duplicates, not_walks)}
    camera = ucalgary.installation_camera(root)
    kinect = {f"{side}_{role}": ucalgary.KINECT.index(f"{role.capitalize()}{side[0].upper()}")
              for side in ("left", "right") for role in _ROLES}
    kinect["head"] = ucalgary.KINECT.index("Head")
    out = []
    for path in sorted(root.glob("sub*/Run*/*.csv")):
        subject, run = path.parent.parent.name, int(path.parent.name[3:])
        if (subject, run) not in kept:
            continue
        joints = ucalgary.read_csv(path)
        floor = walking_frame(joints[: int(len(joints) * STEADY_SHARE)], camera)
        out.append((subject, kept[subject, run], {role: floor[:, index] for role, index in kinect.items()}))
    return out


def real_walks(bodies: list[tuple[str, str, dict[str, np.ndarray]]]) -> dict[str, list[np.ndarray]]:
    """Subject -> measures of each normal walk."""
    out: dict[str, list[np.ndarray]] = {}
    for subject, condition, body in bodies:
        if condition == "normal":
            out.setdefault(subject, []).append(measures(body, ucalgary.FPS))
    return out


def real_abnormal(bodies: list[tuple[str, str, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Condition -> the median over subjects of abnormal_ratios."""
    motion: dict[tuple[str, str], list[dict[str, float]]] = {}
    for subject, condition, body in bodies:
        motion.setdefault((subject, condition), []).append(leg_motion(body, ucalgary.FPS))
    return {condition: np.median([abnormal_ratios(motion[s, "normal"], walks, side)
                                  for (s, c), walks in motion.items() if c == condition and (s, "normal") in motion],
                                 axis=0)
            for condition, side in ABNORMAL_SIDES.items()}


def synthetic_walks(people: int, walks: int = 2, seed: int = 4321) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    spread = SynthConfig().walk_spread
    out: dict[str, list[np.ndarray]] = {}
    for i in range(people):
        person = sample_person(rng)
        for _ in range(walks):
            body = synthetic_body(simulate(vary_for_walk(person, rng, spread), 3.0, 30.0, rng))
            out.setdefault(str(i), []).append(measures(body, 30.0))
    return out


def synthetic_body(joints: np.ndarray) -> dict[str, np.ndarray]:
    """The walker's joints [T, J, 3] by the roles `measures` and `leg_motion` read."""
    body = {f"{side}_{role}": joints[:, J[f"{side}_{role}"]] for side in ("left", "right") for role in _ROLES}
    body["head"] = (joints[:, J["left_ear"]] + joints[:, J["right_ear"]]) / 2  # the head's centre
    return body


def synthetic_abnormal(people: int, seed: int = 4322, abnormality: str | None = None) -> dict[str, np.ndarray]:
    """synthetic walkers' real_abnormal: each person walks normally twice and twice with each
    abnormality (gait.synth.walker.ABNORMALITIES; default the training data's), every walk
    varied as the training data is."""
    rng = np.random.default_rng(seed)
    abnormal = ABNORMALITIES[abnormality or SynthConfig().abnormality]
    spread = SynthConfig().walk_spread
    ratios: dict[str, list[np.ndarray]] = {c: [] for c in ABNORMAL_SIDES}
    for _ in range(people):
        person = sample_person(rng)
        normal = [leg_motion(synthetic_body(simulate(vary_for_walk(person, rng, spread), 3.0, 30.0, rng)), 30.0)
                  for _ in range(2)]
        for condition, side in ABNORMAL_SIDES.items():
            walks = [leg_motion(synthetic_body(simulate(abnormal(vary_for_walk(person, rng, spread), side, rng),
                                                         3.0, 30.0, rng)), 30.0) for _ in range(2)]
            ratios[condition].append(abnormal_ratios(normal, walks, side))
    return {condition: np.median(values, axis=0) for condition, values in ratios.items()}


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
    bodies = real_bodies(args.real)
    real = real_walks(bodies)
    r_mean, r_between, r_within = spreads(real)
    s_mean, s_between, s_within = spreads(synthetic_walks(args.people))
    print(f"real: {len(real)} people, {sum(len(w) for w in real.values())} normal walks; "
          f"synthetic: {args.people} people, 2 walks each")
    print(f"{'measure':32s} {'real mean':>9s} {'between':>8s} {'within':>7s}   {'synth mean':>10s} "
          f"{'between':>8s} {'within':>7s}   within synth/real")
    for k, name in enumerate(MEASURES):
        print(f"{name:32s} {r_mean[k]:9.3f} {r_between[k]:8.3f} {r_within[k]:7.3f}   {s_mean[k]:10.3f} "
              f"{s_between[k]:8.3f} {s_within[k]:7.3f}   {s_within[k] / r_within[k]:6.1f}")

    sources = {"real": real_abnormal(bodies)}
    for abnormality in sorted(ABNORMALITIES):  # "limp" trains the shipped model; "stiff" is the real pattern
        sources[f"synthetic {abnormality}"] = synthetic_abnormal(args.people, abnormality=abnormality)
    print("\nabnormal walks over normal ones, median over people of each person's ratio")
    print(f"{'walks':32s} " + " ".join(f"{name:>14s}" for name in LEG_MEASURES))
    for condition in ABNORMAL_SIDES:
        for source, ratios in sources.items():
            print(f"{source + ' ' + condition:32s} " + " ".join(f"{r:14.2f}" for r in ratios[condition]))


if __name__ == "__main__":
    main()
