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

import numpy as np

from gait.adaptation import CameraStatistics as Statistics
from gait.datasets import ucalgary
from gait.embedder import Embedder
from gait.eval_suite import _windows
from matcher.adapters.gait_model import gait_model, score_model
from matcher.domain.identification import Identifier, State
from matcher.domain.policy import PolicyConfig
from matcher.domain.windows import TrackKey, Window


class Gallery:
    def __init__(self, templates: dict[str, np.ndarray]) -> None:
        self.templates, self.left_out = templates, ""

    def search(self, embedding, store_id, k, all_stores=False, with_bodies=False):  # type: ignore[no-untyped-def]
        hits = sorted(((c, float(t @ embedding)) for c, t in self.templates.items() if c != self.left_out),
                      key=lambda h: -h[1])
        return hits[:k]

    def count(self, store_id=None):  # type: ignore[no-untyped-def]
        return len(self.templates) - bool(self.left_out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=3, help="shuffled arrival orders")
    args = parser.parse_args()
    every = ucalgary.load(ucalgary.default_root())
    engine, model = Embedder(), gait_model(threads=1)
    whole, _ = engine.embed_many({str(i): w.walk for i, w in enumerate(every)}, projections=True)
    enrolment = Statistics.of(np.stack([e.projection for e in whole.values()]))
    enrolled = {w.subject: str(i) for i, w in enumerate(every) if w.run == 1 and w.condition == "normal"}
    scores = score_model(model.version)
    print("| camera | order | bound | strength | genuine identified (right / wrong) | strangers charged | "
          "asked in app (right / wrong / stranger) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for adapt in (False, True):
        templates = {s: (engine.head_norm.embed(whole[i].projection, enrolment) if adapt  # type: ignore[union-attr]
                         else whole[i].vector) for s, i in enrolled.items()}
        for order in range(args.orders):
            walks = [every[i] for i in np.random.default_rng(11 + order).permutation(len(every))]
            visitors = [w for w in walks if w.run == 2 and w.condition == "normal" and w.subject in templates]
            for bound in (1e-4, 1e-3, 1e-2):
                gallery = Gallery(templates)
                identifier = Identifier(index=gallery, embed=model.embed, scores=scores,  # type: ignore[arg-type]
                                        policy=PolicyConfig(max_false_match=bound),
                                        project=model.project if adapt else None,
                                        adaptation=model.camera_statistics() if adapt else None)

                def run(track: str, walk, left_out: str = ""):  # type: ignore[no-untyped-def]
                    gallery.left_out = left_out
                    pieces = _windows(walk.walk)[:identifier.policy.max_windows]
                    return [identifier.observe(Window(TrackKey("real", "kinect", track), s, p.keypoints, p.fps,
                                                      None, 1.0)) for s, p in enumerate(pieces)][-1]

                for i, walk in enumerate(walks):
                    run(f"warm-{i}", walk, walk.subject)
                strength = identifier.drift.strength("real", "kinect")
                genuine = [(run(f"visit-{i}", w), w.subject) for i, w in enumerate(visitors)]
                strangers = [run(f"again-{i}", w, w.subject) for i, w in enumerate(walks)]
                right = sum(d.state is State.IDENTIFIED and d.customer_id == s for d, s in genuine)
                wrong = sum(d.state is State.IDENTIFIED and d.customer_id != s for d, s in genuine)
                charged = sum(d.state is State.IDENTIFIED for d in strangers)
                asked = (sum(d.probable_customer_id == s for d, s in genuine),
                         sum(bool(d.probable_customer_id) and d.probable_customer_id != s for d, s in genuine),
                         sum(bool(d.probable_customer_id) for d in strangers))
                print(f"| {'live statistics' if adapt else 'shipped statistics'} | {order} | {bound:g} | "
                      f"{strength:.2f} | {right} / {wrong} of {len(genuine)} | {charged} of {len(strangers)} | "
                      f"{asked[0]} / {asked[1]} / {asked[2]} |")


if __name__ == "__main__":
    main()
