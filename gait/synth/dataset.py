"""Synthetic walks for training and evaluation: people, several walks each, each walk seen
by a random store camera with a pose estimator's flaws, carried items and speed changes."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gait.body import CameraModel
from gait.synth.camera import observe_mirrored, random_view, walker_to_world
from gait.synth.walker import ABNORMALITIES, Person, sample_person, simulate, vary_for_walk
from gait.walk import Walk


@dataclass(frozen=True)
class SynthConfig:
    seconds: tuple[float, float] = (3.2, 5.0)
    fps_choices: tuple[float, ...] = (15.0, 25.0, 30.0, 30.0, 30.0)
    noise: float = 1.0
    walk_spread: float = 1.5  # within-person variation between walks
    carry_probability: float = 0.15
    limp_probability: float = 0.3
    # How an abnormal walk differs (gait.synth.walker.ABNORMALITIES): "limp", the shipped
    # model's, or "stiff", as the real walkers simulate it; docs/gait.md, "Ninth round", says
    # why the shipped model keeps the limp.
    abnormality: str = "limp"
    speed_change_probability: float = 0.2
    # Entrance cameras (facing the walker) against overhead aisle cameras.
    entrance_probability: float = 0.8


def render_walk(person: Person, rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> Walk:
    return render_seen(person, rng, cfg).walk


@dataclass(frozen=True)
class SeenWalk:
    """A rendered walk with the camera that saw it (exact: calibration errors are the
    caller's to add, see `gait.synth.calibration`)."""

    walk: Walk
    camera: CameraModel


def render_seen(person: Person, rng: np.random.Generator, cfg: SynthConfig = SynthConfig()) -> SeenWalk:
    """`render_walk` and its camera; the walk is the same (the same draws from rng)."""
    p = vary_for_walk(person, rng, cfg.walk_spread)
    if rng.random() < cfg.limp_probability:
        p = ABNORMALITIES[cfg.abnormality](p, "right" if rng.random() < 0.5 else "left", rng)
    carrying = rng.random() < cfg.carry_probability
    if carrying:  # a basket or a bag: one arm nearly still
        p = replace(p, asym_arm=p.asym_arm + (1.6 if rng.random() < 0.5 else -1.6),
                    elbow_flexion=p.elbow_flexion * 1.3)
    seconds = rng.uniform(*cfg.seconds)
    fps = float(rng.choice(cfg.fps_choices))
    speed_change = rng.normal(0, 0.15) if rng.random() < cfg.speed_change_probability else 0.0
    joints = simulate(p, seconds, fps, rng, speed_change=speed_change)
    camera, heading, start = random_view(rng, seconds, entrance_probability=cfg.entrance_probability)
    world = walker_to_world(joints, heading, start)
    keypoints, mirrored = observe_mirrored(world, camera, rng, noise=cfg.noise)
    model = CameraModel.look_at(camera.position, camera.target, camera.focal_px, camera.width, camera.height,
                                mirrored)
    return SeenWalk(Walk(keypoints, fps), model)


def people(n: int, seed: int) -> list[Person]:
    rng = np.random.default_rng(seed)
    return [sample_person(rng) for _ in range(n)]


def walks_of(persons: list[Person], per_person: int, seed: int, cfg: SynthConfig = SynthConfig()) -> \
        tuple[list[Walk], np.ndarray]:
    seen, labels = seen_walks_of(persons, per_person, seed, cfg)
    return [s.walk for s in seen], labels


def seen_walks_of(persons: list[Person], per_person: int, seed: int, cfg: SynthConfig = SynthConfig()) -> \
        tuple[list[SeenWalk], np.ndarray]:
    """`walks_of`'s walks (the same ones), each with the camera that saw it."""
    rng = np.random.default_rng(seed)
    walks, labels = [], []
    for i, person in enumerate(persons):
        for _ in range(per_person):
            walks.append(render_seen(person, rng, cfg))
            labels.append(i)
    return walks, np.asarray(labels)

