"""A biomechanically plausible 3D walker with per-person anthropometrics and style.

Kinematics are driven by the gait phase: hip flexion (a sinusoid), knee flexion (the
loading bump in stance and the large swing bump), pelvic rotation, obliquity and lateral
sway, trunk lean and counter-rotation, arm swing opposite the legs and elbow flexion. The
pelvis height is solved each frame so the lower ankle stays at ankle height, which gives
the vertical bob of real walking. Segment lengths follow anthropometric proportions of
stature (Drillis & Contini) with per-person variation; style parameters (cadence, swing
amplitudes, step width, posture, asymmetries) vary per person, and slightly per walk.

Coordinates: metres, x right, y up, z forward (the walking direction before placement).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from gait.walk import J

# Fractions of stature (mean) and per-person relative spread.
PROPORTIONS = {
    "thigh": (0.237, 0.035), "shank": (0.237, 0.035), "ankle_height": (0.039, 0.10),
    "pelvis_width": (0.097, 0.10), "torso": (0.305, 0.04), "shoulder_width": (0.225, 0.07),
    "upper_arm": (0.172, 0.045), "forearm": (0.172, 0.045), "neck": (0.052, 0.12), "head": (0.075, 0.10),
}


@dataclass(frozen=True)
class Person:
    """Everything that makes one walker themselves."""

    stature: float
    thigh: float
    shank: float
    ankle_height: float
    pelvis_width: float
    torso: float
    shoulder_width: float
    upper_arm: float
    forearm: float
    neck: float
    head: float
    cadence: float  # steps per minute
    hip_amplitude: float  # radians, half peak-to-peak flexion
    hip_offset: float  # radians, mean flexion
    knee_stance: float  # radians, loading-response flexion
    knee_swing: float  # radians, peak swing flexion
    swing_timing: float  # phase of peak knee flexion
    arm_amplitude: float  # radians
    arm_offset: float
    elbow_flexion: float
    elbow_swing: float
    pelvis_rotation: float
    pelvis_obliquity: float
    lateral_sway: float  # metres
    step_width: float  # metres, between ankle centres
    trunk_lean: float  # radians forward
    trunk_side_lean: float  # radians to the right
    head_pitch: float
    shoulder_shrug: float  # metres up at the shoulders
    asym_hip: float  # relative amplitude difference right vs left
    asym_knee: float
    asym_arm: float
    phase_shift: float  # right leg's phase offset from 0.5
    toe_out: float  # radians, legs' outward rotation (shows as knee/ankle spread)


def sample_person(rng: np.random.Generator) -> Person:
    female = rng.random() < 0.5
    stature = rng.normal(1.63, 0.065) if female else rng.normal(1.76, 0.07)
    parts = {name: stature * mean * rng.lognormal(0.0, spread) for name, (mean, spread) in PROPORTIONS.items()}
    if female:  # broader pelvis, narrower shoulders relative to stature
        parts["pelvis_width"] *= 1.06
        parts["shoulder_width"] *= 0.94
    deg = np.deg2rad
    return Person(
        stature=stature,
        cadence=rng.normal(112 if female else 106, 7),
        hip_amplitude=deg(rng.normal(21, 3)),
        hip_offset=deg(rng.normal(5, 3)),
        knee_stance=deg(max(2.0, rng.normal(14, 5))),
        knee_swing=deg(rng.normal(60, 6)),
        swing_timing=rng.normal(0.72, 0.02),
        arm_amplitude=deg(max(3.0, rng.normal(17, 7))),
        arm_offset=deg(rng.normal(3, 4)),
        elbow_flexion=deg(max(3.0, rng.normal(22, 9))),
        elbow_swing=deg(max(0.0, rng.normal(10, 5))),
        pelvis_rotation=deg(max(1.0, rng.normal(5, 2))),
        pelvis_obliquity=deg(max(0.5, rng.normal(4, 1.5))),
        lateral_sway=max(0.005, rng.normal(0.025, 0.009)),
        step_width=max(0.0, rng.normal(0.14, 0.035)),
        trunk_lean=deg(rng.normal(4, 3.5)),
        trunk_side_lean=deg(rng.normal(0, 1.5)),
        head_pitch=deg(rng.normal(8, 6)),
        shoulder_shrug=rng.normal(0.0, 0.012),
        asym_hip=rng.normal(0, 0.06),
        asym_knee=rng.normal(0, 0.07),
        asym_arm=rng.normal(0, 0.2),
        phase_shift=rng.normal(0, 0.015),
        toe_out=deg(rng.normal(3, 3)),
        **parts,
    )


# How much one person's style changes from one walk to the next: relative spread (log-normal)
# per parameter, times vary_for_walk's `spread`; trunk lean and head pitch change by degrees
# instead (their log-normal draws are made and discarded so that the training data's random
# draws, and so the shipped model, reproduce). tools/walker_calibration.py sets these against
# the real walkers' spreads; docs/gait.md says why they are not narrowed to them.
WALK_VARIATION = {
    "cadence": 0.06, "hip_amplitude": 0.08, "knee_swing": 0.04, "knee_stance": 0.15, "arm_amplitude": 0.18,
    "elbow_flexion": 0.15, "elbow_swing": 0.2, "pelvis_rotation": 0.12, "lateral_sway": 0.15,
    "step_width": 0.12, "trunk_lean": 0.15, "head_pitch": 0.25, "pelvis_obliquity": 0.12,
}
WALK_POSTURE_DEG = {"trunk_lean": 1.5, "head_pitch": 4.0}


def vary_for_walk(person: Person, rng: np.random.Generator, spread: float = 1.0) -> Person:
    """The same person on another day: small changes in speed and style, none in bones."""
    changes = {name: getattr(person, name) * rng.lognormal(0.0, s * spread) for name, s in WALK_VARIATION.items()}
    for name, degrees in WALK_POSTURE_DEG.items():
        changes[name] = getattr(person, name) + rng.normal(0, np.deg2rad(degrees) * spread)
    return replace(person, **changes)


def with_limp(person: Person, side: str, rng: np.random.Generator) -> Person:
    """A simulated one-leg abnormality: the affected knee barely bends, its hip swings
    less, and the step timing goes uneven (as the UCalgary AR/AL walks simulate)."""
    sign = 1 if side == "right" else -1
    return replace(
        person,
        asym_knee=person.asym_knee - sign * rng.uniform(0.3, 0.6),
        asym_hip=person.asym_hip - sign * rng.uniform(0.1, 0.3),
        phase_shift=person.phase_shift + sign * rng.uniform(0.02, 0.06),
        lateral_sway=person.lateral_sway * rng.uniform(1.2, 1.8),
        cadence=person.cadence * rng.uniform(0.85, 0.97),
    )


def with_stiffness(person: Person, side: str, rng: np.random.Generator) -> Person:
    """A simulated one-leg abnormality as the UCalgary AR/AL walkers perform it: both knees
    bend less and both hips swing less, the affected side a little more, at about the same
    cadence (tools/walker_calibration.py: real AR over normal, medians, affected knee 0.75,
    other 0.84, affected hip 0.74, other 0.76, cadence 0.98). `with_limp` moves knee bend to
    the other leg instead (1.23), which no real walker did; docs/gait.md, "Ninth round"."""
    knee, hip, extra = rng.uniform(0.70, 0.88), rng.uniform(0.72, 0.90), rng.uniform(0.0, 0.15)
    cadence, timing = rng.uniform(0.90, 1.00), rng.uniform(0.0, 0.03)
    return stiffened(person, side, Stiffness(knee, hip, extra, cadence, timing))


@dataclass(frozen=True)
class Stiffness:
    """How much stiffer an abnormal walk is (with_stiffness draws one per walk)."""

    knee: float  # both knees' swing, times this
    hip: float  # both hips' amplitude, times this
    extra: float  # the affected side's further loss of knee swing (half as much at the hip)
    cadence: float  # times this
    timing: float  # the affected leg's phase shift


def stiffened(person: Person, side: str, stiffness: Stiffness) -> Person:
    sign = 1 if side == "right" else -1
    s = stiffness
    return replace(
        person,
        knee_swing=person.knee_swing * s.knee,
        hip_amplitude=person.hip_amplitude * s.hip,
        asym_knee=person.asym_knee - sign * s.extra,  # the affected leg a little stiffer still
        asym_hip=person.asym_hip - sign * s.extra / 2,
        cadence=person.cadence * s.cadence,
        phase_shift=person.phase_shift + sign * s.timing,
    )


ABNORMALITIES = {"stiff": with_stiffness, "limp": with_limp}


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("tij,tj->ti", r, v)


def _knee_angle(phase: np.ndarray, p: Person, gain: float) -> np.ndarray:
    stance = p.knee_stance * np.exp(-0.5 * ((phase - 0.13) / 0.06) ** 2)
    swing = p.knee_swing * np.exp(-0.5 * ((phase - p.swing_timing) / 0.11) ** 2)
    wrapped = p.knee_swing * np.exp(-0.5 * ((phase - p.swing_timing + 1) / 0.11) ** 2)
    return np.maximum(0.0, (stance + swing + wrapped) * gain) + np.deg2rad(3)


def simulate(person: Person, seconds: float, fps: float, rng: np.random.Generator,
             speed_change: float = 0.0, start_phase: float | None = None) -> np.ndarray:
    """3D joints, float64 [T, 23, 3] (COCO-17 + feet), walking along +z from the origin.
    speed_change: relative change of cadence from start to end (e.g. -0.2 slows down)."""
    frames = max(2, int(round(seconds * fps)))
    t = np.arange(frames) / fps
    p = person
    f0 = p.cadence / 120.0  # cycles per second (two steps a cycle)
    freq = f0 * (1 + speed_change * t / max(t[-1], 1e-6))
    phase_r = np.cumsum(freq) / fps + (rng.random() if start_phase is None else start_phase)
    phase_l = phase_r + 0.5 + p.phase_shift
    ph = {"right": np.mod(phase_r, 1.0), "left": np.mod(phase_l, 1.0)}

    # Pelvis orientation and lateral sway, driven by the right leg's phase.
    theta = 2 * np.pi * phase_r
    pelvis_yaw = p.pelvis_rotation * np.cos(theta)  # right hip forward at right heel strike
    pelvis_roll = p.pelvis_obliquity * np.sin(2 * theta)
    sway = p.lateral_sway * np.sin(theta - np.pi / 2)
    pelvis_rot = np.einsum("tij,tjk->tik", _rot_y(pelvis_yaw), _rot_z(pelvis_roll))

    joints = np.zeros((frames, 23, 3))
    leg_len = p.thigh + p.shank
    hip_gain = {"right": 1 + p.asym_hip / 2, "left": 1 - p.asym_hip / 2}
    knee_gain = {"right": 1 + p.asym_knee / 2, "left": 1 - p.asym_knee / 2}
    hips, knees, ankles = {}, {}, {}
    for side, sign in (("right", 1.0), ("left", -1.0)):
        phase = ph[side]
        hip_flex = p.hip_offset + p.hip_amplitude * hip_gain[side] * np.cos(2 * np.pi * phase)
        knee_flex = _knee_angle(phase, p, knee_gain[side])
        hip = _apply(pelvis_rot, np.tile([sign * p.pelvis_width / 2, 0, 0], (frames, 1)))
        # Thigh: from straight down, flexed forward (about x), adducted toward the step width.
        adduct = np.arcsin(np.clip((p.pelvis_width - p.step_width) / 2 / leg_len, -0.5, 0.5))
        r_thigh = np.einsum("tij,tjk->tik", _rot_x(-hip_flex), _rot_z(np.full(frames, -sign * adduct)))
        r_thigh = np.einsum("tij,tjk->tik", _rot_y(np.full(frames, sign * p.toe_out)), r_thigh)
        down = np.tile([0.0, -1.0, 0.0], (frames, 1))
        knee = hip + p.thigh * _apply(r_thigh, down)
        r_shank = np.einsum("tij,tjk->tik", r_thigh, _rot_x(knee_flex))
        ankle = knee + p.shank * _apply(r_shank, down)
        hips[side], knees[side], ankles[side] = hip, knee, ankle
        foot_dir = _apply(r_shank, np.tile([0.0, 0.0, 1.0], (frames, 1)))
        heel = ankle + 0.3 * p.ankle_height * _apply(r_shank, down) - 0.05 * p.stature * foot_dir * 0.6
        toe = ankle - p.ankle_height * 0.8 * np.array([0, 1, 0]) + 0.13 * p.stature * np.array([0, 0, 1])
        joints[:, J[f"{side}_hip"]] = hip
        joints[:, J[f"{side}_knee"]] = knee
        joints[:, J[f"{side}_ankle"]] = ankle
        joints[:, J[f"{side}_heel"]] = heel
        joints[:, J[f"{side}_foot_index"]] = toe
        joints[:, J[f"{side}_small_toe"]] = toe + np.array([sign * 0.03, 0, -0.02])

    # Upper body: trunk lean, counter-rotation against the pelvis, shoulders, arms.
    trunk_rot = np.einsum("tij,tjk->tik", _rot_y(-0.7 * pelvis_yaw),
                          _rot_x(np.full(frames, p.trunk_lean)) @ _rot_z(np.full(frames, -p.trunk_side_lean)))
    neck = _apply(trunk_rot, np.tile([0, p.torso, 0], (frames, 1)))
    for side, sign in (("right", 1.0), ("left", -1.0)):
        shoulder = neck + _apply(trunk_rot, np.tile([sign * p.shoulder_width / 2, -0.02 + p.shoulder_shrug, 0],
                                                    (frames, 1)))
        # Arms swing opposite the same-side leg.
        gain = 1 + sign * p.asym_arm / 2
        arm_flex = p.arm_offset - p.arm_amplitude * gain * np.cos(2 * np.pi * ph[side])
        r_upper = np.einsum("tij,tjk->tik", trunk_rot, _rot_x(-arm_flex) @ _rot_z(np.full(frames, sign * 0.08)))
        elbow = shoulder + p.upper_arm * _apply(r_upper, np.tile([0.0, -1.0, 0.0], (frames, 1)))
        elbow_flex = p.elbow_flexion + p.elbow_swing * np.maximum(0, -np.cos(2 * np.pi * ph[side]))
        r_fore = np.einsum("tij,tjk->tik", r_upper, _rot_x(-elbow_flex))
        wrist = elbow + p.forearm * _apply(r_fore, np.tile([0.0, -1.0, 0.0], (frames, 1)))
        joints[:, J[f"{side}_shoulder"]] = shoulder
        joints[:, J[f"{side}_elbow"]] = elbow
        joints[:, J[f"{side}_wrist"]] = wrist
    head_rot = np.einsum("tij,tjk->tik", trunk_rot, _rot_x(np.full(frames, p.head_pitch)))
    head_centre = neck + _apply(head_rot, np.tile([0, p.neck + p.head * 0.6, 0.0], (frames, 1)))
    # Pose sources disagree on "the nose": an image model marks the nose, a skeleton tracker
    # (mapped to COCO) gives the head's centre, higher up. Each walk gets one or the other.
    nose = [0, -0.01, 0.10] if rng.random() < 0.5 else [0, rng.uniform(0.04, 0.09), 0.02]
    offsets = {"nose": nose, "left_eye": [-0.032, 0.025, 0.085], "right_eye": [0.032, 0.025, 0.085],
               "left_ear": [-0.075, 0.0, 0.0], "right_ear": [0.075, 0.0, 0.0]}
    for name, offset in offsets.items():
        joints[:, J[name]] = head_centre + _apply(head_rot, np.tile(np.array(offset) * p.stature / 1.7, (frames, 1)))

    # Place the body: solve pelvis height so the lower ankle rests at ankle height, add sway,
    # and progress forward at the speed the stride implies.
    lowest = np.minimum(ankles["right"][:, 1], ankles["left"][:, 1])
    pelvis_height = p.ankle_height - lowest
    step_length = 2 * leg_len * np.sin(p.hip_amplitude) * 0.95
    speed = step_length * 2 * freq  # two steps per cycle
    forward = np.cumsum(speed) / fps
    joints[:, :, 0] += sway[:, None]
    joints[:, :, 1] += pelvis_height[:, None]
    joints[:, :, 2] += forward[:, None]
    return joints


def person_vector(person: Person) -> np.ndarray:
    return np.array([getattr(person, f.name) for f in fields(person)])
