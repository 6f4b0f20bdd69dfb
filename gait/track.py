"""One body per walk: cut a pose track where it jumps to someone else.

Trackers swap bodies. A skeleton tracker (the Kinect recordings of the real evaluation set)
or a detector-tracker loses the walker for a few frames and reports a bystander instead,
then comes back; the development copy of UCalgary has several such recordings, a bystander
standing 1.8 m to the side for the first or last frames. A gait model fed both bodies reads
a walk that nobody walked. The pelvis of one person moves a few hundredths of their body
size per frame; a swap moves it by about a body size at once. So the track is cut wherever
the pelvis jumps further than a person could move in the time between the two frames, and
the body seen longest is the walk.
"""

from __future__ import annotations

import numpy as np

from gait.normalize import VISIBLE
from gait.walk import J, Walk

# Body sizes (torso + leg) a pelvis may move between two frames: a fixed allowance for jitter
# and a fast walker seen side-on, plus a brisk walk's worth (about 2.7 m/s for a body size of
# 1.35 m) per second between them (low frame rates, dropped frames, hidden hips).
JUMP_ALLOWANCE = 0.35
BODY_SIZES_PER_SECOND = 2.0
_L_SHO, _R_SHO, _L_HIP, _R_HIP = J["left_shoulder"], J["right_shoulder"], J["left_hip"], J["right_hip"]


def _pelvis_and_size(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: hip midpoint [T, 2], body size in pixels [T] (torso plus the longer fully
    seen leg: the other may be foreshortened), and whether the frame says where the body is
    [T] (it needs both hips and both shoulders)."""
    seen = kp[..., 2] > VISIBLE
    hips = 0.5 * (kp[:, _L_HIP, :2] + kp[:, _R_HIP, :2])
    shoulders = 0.5 * (kp[:, _L_SHO, :2] + kp[:, _R_SHO, :2])
    torso = np.linalg.norm(shoulders - hips, axis=1)
    known = seen[:, [_L_HIP, _R_HIP, _L_SHO, _R_SHO]].all(axis=1) & (torso > 1e-3)
    legs = []
    for side in ("left", "right"):
        hip, knee, ankle = J[f"{side}_hip"], J[f"{side}_knee"], J[f"{side}_ankle"]
        length = np.linalg.norm(kp[:, hip, :2] - kp[:, knee, :2], axis=1) + \
            np.linalg.norm(kp[:, knee, :2] - kp[:, ankle, :2], axis=1)
        legs.append(np.where(seen[:, [hip, knee, ankle]].all(axis=1), length, np.nan))
    leg = np.fmax(legs[0], legs[1])
    # Hidden legs (a shelf, a cart): a torso is about 0.4 of torso + leg.
    size = torso + np.where(np.isfinite(leg), leg, 1.5 * torso)
    return hips, size, known


def bodies(walk: Walk) -> np.ndarray:
    """Which body each frame shows: int [T], 0 for the first body seen, 1 for the next, ...;
    a frame whose hips or shoulders are hidden belongs to the body before it. A track that
    leaves its walker and comes back returns to the walker's number."""
    hips, size, known = _pelvis_and_size(walk.keypoints)
    labels = np.zeros(walk.frames, dtype=np.int64)
    seen = np.flatnonzero(known)
    if len(seen) < 2 or np.all(_same_body(hips, size, seen[:-1], seen[1:], walk.fps)):
        return labels  # the usual case, decided without the frame-by-frame pass below
    last_seen: list[int] = []  # per body: its latest known frame
    current = -1
    for t in range(walk.frames):
        if not known[t]:
            labels[t] = max(current, 0)
            continue
        # The body on screen a moment ago first, then the others, latest first.
        order = ([current] if current >= 0 else []) + \
            sorted((b for b in range(len(last_seen)) if b != current), key=lambda b: -last_seen[b])
        match = next((b for b in order if bool(_same_body(hips, size, last_seen[b], t, walk.fps))), None)
        if match is None:
            last_seen.append(t)
            match = len(last_seen) - 1
        last_seen[match] = t
        current = match
        labels[t] = match
    return labels


def _same_body(hips: np.ndarray, size: np.ndarray, before: int | np.ndarray, now: int | np.ndarray,
               fps: float) -> bool | np.ndarray:
    """Whether the pelvis at frame(s) `before` could have moved to where it is at `now`
    (scalars or arrays of frame indices)."""
    moved = np.linalg.norm(hips[now] - hips[before], axis=-1) / np.minimum(size[now], size[before])
    return moved <= JUMP_ALLOWANCE + BODY_SIZES_PER_SECOND * (now - before) / fps


def main_body_frames(walk: Walk) -> np.ndarray:
    """Indices of the frames that show the body seen in most frames (all of them when the
    walk shows one body)."""
    labels = bodies(walk)
    if not labels.any():
        return np.arange(walk.frames)
    return np.flatnonzero(labels == np.bincount(labels).argmax())


def single_body(walk: Walk) -> Walk:
    """The walk with one body: the body seen in most frames, from its first frame to its
    last; frames in between that show another body become missing (confidence 0), which
    the normaliser fills like any dropout. The walk itself when it shows one body."""
    frames = main_body_frames(walk)
    if len(frames) == walk.frames:
        return walk
    start, end = int(frames[0]), int(frames[-1]) + 1
    keypoints = walk.keypoints[start:end].copy()
    foreign = np.ones(end - start, dtype=bool)
    foreign[frames - start] = False
    keypoints[foreign] = 0.0
    return Walk(keypoints, walk.fps)


def foreign_frames(walk: Walk) -> str | None:
    """What single_body leaves out, for people reading a report: 'frames 0-5, 110-119 of
    120 show another body'; None when the walk shows one body."""
    foreign = np.setdiff1d(np.arange(walk.frames), main_body_frames(walk))
    if not len(foreign):
        return None
    runs = np.split(foreign, np.flatnonzero(np.diff(foreign) > 1) + 1)
    spans = ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)
    return f"frames {spans} of {walk.frames} show another body"
