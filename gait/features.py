"""Hand-crafted gait features and the quality of a walk.

- Gait cycles from heel strikes: the vector between the ankles (normalised coordinates)
  swings forward and back once per stride; projected on its main axis, its maxima are left
  heel strikes and its minima right ones (whatever the view: from the side it is the step
  length, from the front the feet's alternating height in the image).
- Spatial: joint angles (knees, elbows, hips), step width, stride amplitude, posture (trunk
  lean), body proportions (bone-length ratios).
- Temporal: cycle time, cadence, stance/swing ratio estimate, left/right timing symmetry.
- Frequency: the walk's fundamental frequency and the harmonic amplitudes of joint
  trajectories.
- Quality in [0, 1]: how much of the body was seen, how many full cycles, how steady.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import find_peaks

from gait.normalize import Normalised, normalise
from gait.track import single_body
from gait.walk import J, Walk

BODY = [J[n] for n in ("left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                       "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]


@dataclass(frozen=True)
class GaitCycles:
    left_strikes: np.ndarray  # frame indices
    right_strikes: np.ndarray
    cycle_frames: np.ndarray  # durations of full cycles (same-side strike to strike)

    @property
    def cycles(self) -> int:
        return int(len(self.cycle_frames))


def ankle_signal(n: Normalised) -> np.ndarray:
    diff = n.coords[:, J["left_ankle"]] - n.coords[:, J["right_ankle"]]
    diff = diff - diff.mean(axis=0)
    if not np.any(diff):
        return np.zeros(n.frames)
    _, _, vt = np.linalg.svd(diff, full_matrices=False)
    signal = diff @ vt[0]
    return signal if signal.std() > 0 else np.zeros(n.frames)


def heel_strikes(n: Normalised, min_step_s: float = 0.3) -> GaitCycles:
    signal = ankle_signal(n)
    distance = max(1, int(min_step_s * n.fps * 1.5))
    prominence = 0.3 * signal.std() if signal.std() > 0 else 1.0
    left, _ = find_peaks(signal, distance=distance, prominence=prominence)
    right, _ = find_peaks(-signal, distance=distance, prominence=prominence)
    cycles = np.concatenate([np.diff(left), np.diff(right)]).astype(np.float32)
    return GaitCycles(left, right, cycles)


def _autocorrelation_period(signal: np.ndarray, shortest: int, longest: int) -> float | None:
    """The lag (frames) in [shortest, longest] where the signal best repeats itself, or None."""
    x = signal - signal.mean()
    longest = min(longest, len(x) - 2)
    if shortest < 1 or longest <= shortest or not np.any(x):
        return None
    lags = np.arange(shortest, longest + 1)
    # Normalised per lag, so longer lags (fewer overlapping frames) are not penalised.
    scores = [float(np.dot(x[:-lag], x[lag:]) / (np.linalg.norm(x[:-lag]) * np.linalg.norm(x[lag:]) + 1e-12))
              for lag in lags]
    best = int(np.argmax(scores))
    # A signal that correlates negatively with itself at every lag in range does not repeat
    # there (a walker whose one foot lingers makes such a signal): its "best" lag means nothing.
    return float(lags[best]) if scores[best] > 0 else None


def _span_period(cycles: GaitCycles) -> float | None:
    """The cycle (frames) from each side's first-to-last strike span over the whole number of
    cycles it holds, counted with the median gap: strikes misplaced inside the walk do not
    move it. None without a side of two strikes."""
    spans = [float(s[-1] - s[0]) for s in (cycles.left_strikes, cycles.right_strikes) if len(s) >= 2]
    if not spans:
        return None
    guess = float(np.median(cycles.cycle_frames))
    counts = [max(1, round(span / guess)) for span in spans]
    return sum(spans) / sum(counts)


def _angle(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The angle at b (radians) of a-b-c, per frame."""
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1) + 1e-9)
    return np.arccos(np.clip(cos, -1, 1))


def spatial(n: Normalised) -> dict[str, float]:
    c = n.coords
    knee_l = _angle(c[:, J["left_hip"]], c[:, J["left_knee"]], c[:, J["left_ankle"]])
    knee_r = _angle(c[:, J["right_hip"]], c[:, J["right_knee"]], c[:, J["right_ankle"]])
    elbow_l = _angle(c[:, J["left_shoulder"]], c[:, J["left_elbow"]], c[:, J["left_wrist"]])
    elbow_r = _angle(c[:, J["right_shoulder"]], c[:, J["right_elbow"]], c[:, J["right_wrist"]])
    mid_sho = 0.5 * (c[:, J["left_shoulder"]] + c[:, J["right_shoulder"]])
    lean = np.arctan2(mid_sho[:, 0], -mid_sho[:, 1])  # 0 = upright in the image
    ankle_gap = c[:, J["left_ankle"]] - c[:, J["right_ankle"]]

    def bone(a: str, b: str) -> float:
        return float(np.median(np.linalg.norm(c[:, J[a]] - c[:, J[b]], axis=1)))

    leg = bone("left_hip", "left_knee") + bone("left_knee", "left_ankle")
    return {
        "knee_range_left": float(np.ptp(knee_l)), "knee_range_right": float(np.ptp(knee_r)),
        "elbow_mean_left": float(np.mean(elbow_l)), "elbow_mean_right": float(np.mean(elbow_r)),
        "trunk_lean": float(np.median(lean)),
        "step_width": float(np.median(np.abs(ankle_gap[:, 0]))),
        "stride_amplitude": float(np.ptp(ankle_signal(n))),
        "shoulder_to_leg": bone("left_shoulder", "right_shoulder") / max(leg, 1e-6),
        "hip_to_leg": bone("left_hip", "right_hip") / max(leg, 1e-6),
        "arm_to_leg": (bone("left_shoulder", "left_elbow") + bone("left_elbow", "left_wrist")) / max(leg, 1e-6),
        "thigh_to_shank": bone("left_hip", "left_knee") / max(bone("left_knee", "left_ankle"), 1e-6),
    }


# Steps per minute: slow strolling to brisk walking. Below the slowest, a walk is read as
# having missed strikes (see temporal); people shuffle slower, but not past a camera.
SLOWEST_CADENCE, FASTEST_CADENCE = 65.0, 160.0


def temporal(n: Normalised, cycles: GaitCycles) -> dict[str, float]:
    if cycles.cycles == 0:
        return {"cycle_s": float("nan"), "cadence_spm": float("nan"), "symmetry": float("nan"),
                "stance_ratio": float("nan")}
    # A missed strike shows up as a gap of two cycles; with few cycles the median can land on
    # it. Fold each gap by its whole multiple of the shortest one (which the peak finder's
    # minimum distance and prominence keep from being spurious) before taking the median.
    frames = cycles.cycle_frames
    multiples = np.maximum(1.0, np.round(frames / frames.min()))
    folded = frames / multiples
    cycle_s = float(np.median(folded)) / n.fps
    # The strikes' timing is only as good as the peaks it is read from: a foot that lingers
    # flattens a peak into a plateau, and the peak finder picks a point of it (gaps that
    # agree with each other and are all short), or a strike is misplaced near the walk's
    # end, where the peak finder sees half a peak, or a spurious short gap folds the true
    # ones in half (gaps that disagree). The period of the ankle signal itself, read from
    # its autocorrelation over the range the gaps span, is the cycle wherever the signal
    # repeats there; gaps that disagree in a signal that does not repeat fall back to
    # each side's first-to-last span.
    period = _autocorrelation_period(ankle_signal(n), int(folded.min() * 0.8), int(folded.max() * 1.2))
    if period is None and folded.max() > 1.15 * folded.min():
        period = _span_period(cycles)
    if period:
        cycle_s = period / n.fps
    # One gap that holds two cycles (a strike missed where a foot lingered) reads as a
    # cadence no walker has; halve it while that brings it to one a walker has.
    while 120.0 / cycle_s < SLOWEST_CADENCE and 240.0 / cycle_s <= FASTEST_CADENCE:
        cycle_s /= 2
    symmetry = float("nan")
    if len(cycles.left_strikes) and len(cycles.right_strikes):
        # Right strikes should fall half-way between left ones for a symmetric walker.
        gaps = [((r - cycles.left_strikes[cycles.left_strikes < r][-1]) / (cycle_s * n.fps))
                for r in cycles.right_strikes if (cycles.left_strikes < r).any()]
        symmetry = float(np.median(gaps)) if gaps else float("nan")
    # Stance is roughly the share of the cycle the ankle is low (near its maximum image y).
    ankle_y = n.coords[:, J["left_ankle"], 1]
    stance_ratio = float((ankle_y > np.quantile(ankle_y, 0.4)).mean())
    return {"cycle_s": cycle_s, "cadence_spm": 120.0 / cycle_s, "symmetry": symmetry, "stance_ratio": stance_ratio}


def frequency(n: Normalised, harmonics: int = 4) -> dict[str, float]:
    signal = ankle_signal(n)
    if n.frames < 16 or not np.any(signal):
        return {"fundamental_hz": float("nan"), **{f"harmonic_{k}": float("nan") for k in range(1, harmonics + 1)}}
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(n.frames)))
    freqs = np.fft.rfftfreq(n.frames, 1 / n.fps)
    band = (freqs > 0.4) & (freqs < 1.6)  # strides per second of walking people
    if not band.any():
        return {"fundamental_hz": float("nan"), **{f"harmonic_{k}": float("nan") for k in range(1, harmonics + 1)}}
    f0 = float(freqs[band][np.argmax(spectrum[band])])
    out = {"fundamental_hz": f0}
    wrist = n.coords[:, J["left_wrist"], 1] - n.coords[:, J["left_wrist"], 1].mean()
    wrist_spec = np.abs(np.fft.rfft(wrist * np.hanning(n.frames)))
    total = wrist_spec.sum() + 1e-9
    for k in range(1, harmonics + 1):
        out[f"harmonic_{k}"] = float(wrist_spec[np.argmin(np.abs(freqs - k * f0))] / total)
    return out


def quality(walk: Walk, n: Normalised | None = None, cycles: GaitCycles | None = None) -> float:
    """1.0 = the whole body seen throughout, at least two steady gait cycles."""
    n = n or normalise(walk)
    cycles = cycles or heel_strikes(n)
    seen = float((walk.coco[:, BODY, 2] > 0.05).mean())
    enough = min(1.0, cycles.cycles / 2.0)
    steadiness = 1.0
    if cycles.cycles >= 2:
        cv = float(np.std(cycles.cycle_frames) / (np.mean(cycles.cycle_frames) + 1e-9))
        steadiness = float(np.exp(-3 * cv))
    length = min(1.0, walk.seconds / 2.0)
    return float(np.clip(seen * (0.4 + 0.6 * enough) * steadiness * length, 0.0, 1.0))


def describe(walk: Walk) -> dict[str, float]:
    walk = single_body(walk)
    n = normalise(walk)
    cycles = heel_strikes(n)
    return {**spatial(n), **temporal(n, cycles), **frequency(n), "cycles": float(cycles.cycles),
            "quality": quality(walk, n, cycles)}
