"""The real UCalgary walkers (evaluation only) through the matcher's own Identifier, as one
store camera would meet them, with and without live camera statistics
(matcher.domain.camera_statistics). Templates: each walker's normal walk 1, normalised with
the statistics of all 74 recordings (the enrolment source's, as GAITPAY_ENROLMENT_STATISTICS
would hold them) where the camera adapts, with the model's own otherwise. The camera first sees
every recording once as a stranger (its walker left out of the gallery), in a shuffled order,
then the 11 genuine visits (normal walk 2) and every recording again as a stranger.

    python tools/live_camera_replay.py [--orders 3]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

from gait.adaptation import CameraStatistics as Statistics
from gait.datasets import ucalgary
from gait.embedder import Embedder
from gait.eval_suite import _windows
from matcher.adapters.gait_model import gait_model, score_model
from matcher.domain.identification import Decision, Identifier, State
from matcher.domain.policy import PolicyConfig
from matcher.domain.windows import TrackKey, Window


class Gallery:
    """The enrolled templates, searched exactly, with one customer left out where the visitor
    plays a stranger."""

    def __init__(self, templates: dict[str, np.ndarray]) -> None:
        self.templates, self.left_out = templates, ""

    def search(self, embedding, store_id, k, all_stores=False, with_bodies=False):  # type: ignore[no-untyped-def]
        hits = sorted(((c, float(t @ embedding)) for c, t in self.templates.items() if c != self.left_out),
                      key=lambda h: -h[1])
        return hits[:k]

    def count(self, store_id=None):  # type: ignore[no-untyped-def]
        return len(self.templates) - bool(self.left_out)


@dataclass(frozen=True)
class Replay:
    strength: float | None  # the camera's, after every recording passed once
    genuine: list[tuple[Decision, str]]  # each genuine visit's last decision, and who walked
    strangers: list[Decision]  # each recording's last decision with its walker left out

    @property
    def right(self) -> int:
        return sum(d.state is State.IDENTIFIED and d.customer_id == s for d, s in self.genuine)

    @property
    def wrong(self) -> int:
        return sum(d.state is State.IDENTIFIED and d.customer_id != s for d, s in self.genuine)

    @property
    def charged(self) -> int:
        return sum(d.state is State.IDENTIFIED for d in self.strangers)

    @property
    def asked(self) -> tuple[int, int, int]:
        """Probable candidates asked in the app: (right, wrong, for a stranger)."""
        return (sum(d.probable_customer_id == s for d, s in self.genuine),
                sum(bool(d.probable_customer_id) and d.probable_customer_id != s for d, s in self.genuine),
                sum(bool(d.probable_customer_id) for d in self.strangers))


class RealCamera:
    """The real walkers embedded once: templates with the model's own statistics, or with the
    enrolment source's (the statistics of all recordings)."""

    def __init__(self, walks: list[ucalgary.RealWalk]) -> None:
        self.walks, self.engine, self.model = walks, Embedder(), gait_model(threads=1)
        whole, _ = self.engine.embed_many({str(i): w.walk for i, w in enumerate(walks)}, projections=True)
        enrolment = Statistics.of(np.stack([e.projection for e in whole.values()]))
        enrolled = {w.subject: str(i) for i, w in enumerate(walks) if w.run == 1 and w.condition == "normal"}
        assert self.engine.head_norm is not None
        self.templates = {
            False: {s: whole[i].vector for s, i in enrolled.items()},
            True: {s: self.engine.head_norm.embed(whole[i].projection, enrolment) for s, i in enrolled.items()},
        }
        self.scores = score_model(self.model.version)

    def replay(self, adapt: bool, order: int = 0, bound: float = PolicyConfig().max_false_match) -> Replay:
        """Every recording once as a stranger in a shuffled order (walkers come to a store camera in
        no order; the set is sorted by subject, and statistics from its first 30 recordings would
        be five people's), then the genuine visits, then every recording again as a stranger."""
        walks = [self.walks[i] for i in np.random.default_rng(11 + order).permutation(len(self.walks))]
        gallery = Gallery(self.templates[adapt])
        identifier = Identifier(index=gallery, embed=self.model.embed, scores=self.scores,  # type: ignore[arg-type]
                                policy=PolicyConfig(max_false_match=bound),
                                project=self.model.project if adapt else None,
                                adaptation=self.model.camera_statistics() if adapt else None)

        def last_decision(track: str, walk: ucalgary.RealWalk, left_out: str = "") -> Decision:
            gallery.left_out = left_out
            pieces = _windows(walk.walk)[:identifier.policy.max_windows]
            return [identifier.observe(Window(TrackKey("real", "kinect", track), s, p.keypoints, p.fps, None, 1.0))
                    for s, p in enumerate(pieces)][-1]

        for i, walk in enumerate(walks):
            last_decision(f"warm-{i}", walk, walk.subject)
        strength = identifier.drift.strength("real", "kinect")
        visitors = [w for w in walks if w.run == 2 and w.condition == "normal" and w.subject in gallery.templates]
        genuine = [(last_decision(f"visit-{i}", w), w.subject) for i, w in enumerate(visitors)]
        strangers = [last_decision(f"again-{i}", w, w.subject) for i, w in enumerate(walks)]
        return Replay(strength, genuine, strangers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3, help="shuffled arrival orders")
    args = parser.parse_args()
    camera = RealCamera(ucalgary.load(ucalgary.default_root()))
    print("| camera | order | bound | strength | genuine identified (right / wrong) | strangers charged | "
          "asked in app (right / wrong / stranger) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for adapt in (False, True):
        for order in range(args.orders):
            for bound in (1e-4, 1e-3, 1e-2):
                r = camera.replay(adapt, order, bound)
                print(f"| {'live statistics' if adapt else 'shipped statistics'} | {order} | {bound:g} | "
                      f"{r.strength:.2f} | {r.right} / {r.wrong} of {len(r.genuine)} | {r.charged} of "
                      f"{len(r.strangers)} | {r.asked[0]} / {r.asked[1]} / {r.asked[2]} |")


if __name__ == "__main__":
    main()
