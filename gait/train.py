"""Train the gait embedding on synthetic walkers only, and export it to ONNX.

`gaitpay train` runs this: it builds a pool of synthetic people and walks (in parallel
processes), trains the network with a CosFace loss on random crops, validates on unseen
synthetic people, exports ONNX (dynamic batch and time), checks ONNX Runtime against
PyTorch, and writes a model card with settings, metrics and the file's sha256.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from gait.encoding import CHANNELS, encode
from gait.synth.dataset import SynthConfig, people, render_walk

CROP = 90  # frames at 30 fps (3 s): shorter than every synthetic walk


@dataclass(frozen=True)
class TrainConfig:
    persons: int = 5000
    walks_per_person: int = 8
    val_persons: int = 300
    steps: int = 2000
    batch: int = 256
    lr: float = 2e-3
    seed: int = 20261125
    workers: int = 2
    threads: int = 2
    abnormality: str = "limp"  # the walker's abnormal walks (gait.synth.walker.ABNORMALITIES)

    @property
    def recipe(self) -> str:
        """What the model's version starts with (the card's version adds its weights'
        fingerprint): the seed, and the walker where it is not the shipped recipe's."""
        return f"synthetic-{self.seed}" + ("" if self.abnormality == "limp" else f"-{self.abnormality}")


def weights_fingerprint(state_dict) -> str:  # type: ignore[no-untyped-def]
    """sha256 over a model's floating-point tensors (names and values, in the state dict's
    order). The same recipe trained on another CPU gives other weights (rounding), and
    templates, score calibration and camera statistics belong to weights, not to a recipe, so
    a model's version ends in this; re-exporting the same weights keeps it."""
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        if tensor.is_floating_point():
            digest.update(name.encode())
            digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _render_chunk(args: tuple[int, int, int, int, str]) -> list[tuple[int, np.ndarray]]:
    first, count, walks_per_person, seed, abnormality = args
    synth = SynthConfig(abnormality=abnormality)
    persons = people(first + count, seed)[first:]
    rng = np.random.default_rng(seed * 1000 + first)
    out = []
    for offset, person in enumerate(persons):
        for _ in range(walks_per_person):
            while True:
                features = encode(render_walk(person, rng, synth))
                if features.shape[0] >= CROP:
                    break
            out.append((first + offset, features.astype(np.float16)))
    return out


def build_pool(persons: int, walks_per_person: int, seed: int, workers: int,
               progress: Callable[[int], None] = lambda n: None,
               abnormality: str = SynthConfig.abnormality) -> tuple[list[np.ndarray], np.ndarray]:
    chunk = 50
    jobs = [(first, min(chunk, persons - first), walks_per_person, seed, abnormality)
            for first in range(0, persons, chunk)]
    features, labels = [], []
    ctx = mp.get_context("fork")
    with ctx.Pool(workers) as pool:
        for result in pool.imap(_render_chunk, jobs):
            for label, f in result:
                features.append(f)
                labels.append(label)
            progress(len(result) // walks_per_person)
    return features, np.asarray(labels)


def _batch(features: list[np.ndarray], labels: np.ndarray, rng: np.random.Generator, size: int) \
        -> tuple[np.ndarray, np.ndarray]:
    idx = rng.integers(0, len(features), size)
    out = np.empty((size, CROP, CHANNELS), dtype=np.float32)
    for row, i in enumerate(idx):
        f = features[i]
        start = rng.integers(0, f.shape[0] - CROP + 1)
        out[row] = f[start:start + CROP]
    return out, labels[idx]


def embed_torch(model, walks_features: list[np.ndarray]):  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    with torch.no_grad():
        return np.stack([model(torch.from_numpy(f.astype(np.float32))[None])[0].numpy() for f in walks_features])


def verification_eer(embeddings: np.ndarray, labels: np.ndarray) -> float:
    sims = embeddings @ embeddings.T
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same), 1).astype(bool)
    genuine, impostor = sims[same & upper], sims[~same & upper]
    thresholds = np.quantile(np.concatenate([genuine, impostor]), np.linspace(0, 1, 400))
    best = 1.0
    for t in thresholds:
        fnmr, fmr = (genuine < t).mean(), (impostor >= t).mean()
        best = min(best, max(fnmr, fmr))
    return float(best)


def train(cfg: TrainConfig, out_dir: Path, report: Callable[[str, float, dict[str, float]], None]) -> dict:
    import torch

    from gait.model import CosFace, GaitEmbedder

    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    t0 = time.time()
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        report("data", done[0] / (cfg.persons + cfg.val_persons), {})

    features, labels = build_pool(cfg.persons, cfg.walks_per_person, cfg.seed, cfg.workers, progress, cfg.abnormality)
    val_features, val_labels = build_pool(cfg.val_persons, 4, cfg.seed + 1, cfg.workers, progress, cfg.abnormality)
    data_seconds = time.time() - t0

    model = GaitEmbedder()
    head = CosFace(model.head[0].out_features, cfg.persons)
    params = list(model.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=cfg.steps, pct_start=0.1)
    rng = np.random.default_rng(cfg.seed)
    losses = []
    for step in range(cfg.steps):
        model.train()
        x, y = _batch(features, labels, rng, cfg.batch)
        loss = head(model(torch.from_numpy(x)), torch.from_numpy(y))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 100 == 0 or step + 1 == cfg.steps:
            metrics = {"loss": float(np.mean(losses[-100:]))}
            if (step + 1) % 500 == 0 or step + 1 == cfg.steps:
                emb = embed_torch(model, [f.astype(np.float32) for f in val_features])
                metrics["val_eer"] = verification_eer(emb, val_labels)
            report("train", (step + 1) / cfg.steps, metrics)
    train_seconds = time.time() - t0 - data_seconds

    emb = embed_torch(model, [f.astype(np.float32) for f in val_features])
    val_eer = verification_eer(emb, val_labels)
    files = _save_model(model, out_dir)
    max_diff = onnx_agreement(model, out_dir / files["file"], val_features[:32])
    card = {
        "name": "gaitpay gait embedder",
        "version": f"{cfg.recipe}-{files['weights_sha256'][:8]}",
        **files,
        "embedding_dim": int(emb.shape[1]),
        "input": f"float32 [batch, frames, {CHANNELS}] from gait.encoding.encode (30 fps after resampling)",
        "outputs": OUTPUTS,
        "training_data": "synthetic walkers only (gait/synth); no real person's walk",
        "settings": asdict(cfg),
        "metrics": {"synthetic_val_eer": val_eer, "final_loss": float(np.mean(losses[-100:])),
                    "onnx_max_abs_diff": max_diff},
        "seconds": {"data": round(data_seconds, 1), "train": round(train_seconds, 1)},
    }
    (out_dir / "model-card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def _save_model(model, out_dir: Path) -> dict:  # type: ignore[no-untyped-def]
    """The model as ONNX and its PyTorch twin (for benches and tests) in out_dir; the card's
    fields about them."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "gait-embedder.onnx"
    export_onnx(model, onnx_path)
    torch.save(model.state_dict(), out_dir / "gait-embedder.pt")
    return {"weights_sha256": weights_fingerprint(model.state_dict()), "file": onnx_path.name,
            "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(), "bytes": onnx_path.stat().st_size}


def train_ensemble(cfg: TrainConfig, seeds: list[int], out_dir: Path,
                   report: Callable[[str, float, dict[str, float]], None]) -> dict:
    """One model per seed (cfg's recipe otherwise, each on its own synthetic people), each
    kept with its card in out_dir/members/seed-<seed>, joined into one ONNX graph beside
    them (gait.model.GaitEnsemble); returns the ensemble's card."""
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        raise ValueError(f"an ensemble needs two or more different seeds, not {seeds}")
    folders = [out_dir / "members" / f"seed-{seed}" for seed in seeds]
    for i, (seed, folder) in enumerate(zip(seeds, folders)):
        def member_report(stage: str, fraction: float, metrics: dict[str, float], i: int = i) -> None:
            report(stage, (i + fraction) / len(seeds), metrics)

        train(replace(cfg, seed=seed), folder, member_report)
    return join_members(folders, out_dir, cfg)


def join_members(folders: list[Path], out_dir: Path, cfg: TrainConfig) -> dict:
    """The models in `folders` (each `gaitpay train`'s, with its checkpoint and card) as one
    ensemble model in out_dir: ONNX, PyTorch twin and card. Its verification EER is measured
    on the first member's validation people, whom no member trained on."""
    from gait.model import GaitEnsemble, load_checkpoint

    cards = [json.loads((f / "model-card.json").read_text()) for f in folders]
    seeds = [int(c["settings"]["seed"]) for c in cards]
    ensemble = GaitEnsemble([load_checkpoint(f / "gait-embedder.pt") for f in folders]).eval()
    val_features, val_labels = build_pool(cfg.val_persons, 4, seeds[0] + 1, cfg.workers, lambda n: None,
                                          cfg.abnormality)
    emb = embed_torch(ensemble, [f.astype(np.float32) for f in val_features])
    files = _save_model(ensemble, out_dir)
    walker = "" if cfg.abnormality == "limp" else f"-{cfg.abnormality}"
    card = {
        "name": "gaitpay gait embedder (ensemble of seeds)",
        "version": f"synthetic-{'+'.join(str(s) for s in seeds)}{walker}-{files['weights_sha256'][:8]}",
        **files,
        "embedding_dim": int(emb.shape[1]),
        "input": cards[0]["input"],
        "outputs": OUTPUTS,
        "training_data": cards[0]["training_data"],
        "settings": {**{k: v for k, v in asdict(cfg).items() if k != "seed"}, "seeds": seeds},
        "members": [{"version": c["version"], "seed": c["settings"]["seed"], "folder": str(f.relative_to(out_dir))
                     if f.is_relative_to(out_dir) else str(f), "synthetic_val_eer": c["metrics"]["synthetic_val_eer"]}
                    for c, f in zip(cards, folders)],
        "metrics": {"synthetic_val_eer": verification_eer(emb, val_labels),
                    "onnx_max_abs_diff": onnx_agreement(ensemble, out_dir / files["file"], val_features[:32])},
        "seconds": {k: round(sum(c["seconds"][k] for c in cards), 1) for k in ("data", "train")},
    }
    (out_dir / "model-card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


OUTPUTS = {"embedding": "float32 [batch, dim], L2-normalised",
           "projection": "float32 [batch, dim], the head's projection before its batch norm, whose parameters "
                         "are the metadata gaitpay.head_norm (gait.adaptation: camera statistics)"}


def reexport(model_dir: Path, samples: list[np.ndarray]) -> dict:
    """Export the ONNX model again from its PyTorch twin (gait-embedder.pt), same weights, and
    bring the card's file fields and ONNX agreement up to date; returns the card. For a change
    in what the export writes, without a training run."""
    from gait.model import load_checkpoint

    model = load_checkpoint(model_dir / "gait-embedder.pt")
    card_path = model_dir / "model-card.json"
    card = json.loads(card_path.read_text())
    onnx_path = model_dir / card["file"]
    export_onnx(model, onnx_path)
    card.update(sha256=hashlib.sha256(onnx_path.read_bytes()).hexdigest(), bytes=onnx_path.stat().st_size,
                outputs=OUTPUTS)
    card["metrics"]["onnx_max_abs_diff"] = onnx_agreement(model, onnx_path, samples)
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def export_onnx(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    """The model as ONNX with two outputs, "embedding" and the head's "projection" before its
    batch norm, and that norm's parameters in the metadata (gait.adaptation), so a service can
    renormalise a camera's walks with ONNX Runtime alone. A GaitEnsemble is one graph running
    every member; its head norm is the members' side by side, in blocks."""
    import onnx
    import torch

    from gait.adaptation import HEAD_NORM_KEY, PROJECTION_OUTPUT, CameraStatistics, HeadNorm
    from gait.model import GaitEnsemble

    class WithProjection(torch.nn.Module):
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.inner = inner

        def forward(self, x):  # type: ignore[no-untyped-def]
            projected = self.inner.projected(x)
            return torch.nn.functional.normalize(self.inner.head[1](projected), dim=1), projected

    class EnsembleWithProjection(torch.nn.Module):
        def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
            super().__init__()
            self.inner = inner

        def forward(self, x):  # type: ignore[no-untyped-def]
            members = list(self.inner.members)
            projected = [m.projected(x) for m in members]
            embeddings = [torch.nn.functional.normalize(m.head[1](p), dim=1) for m, p in zip(members, projected)]
            return torch.cat(embeddings, dim=1) / len(members) ** 0.5, torch.cat(projected, dim=1)

    model.eval()
    example = torch.zeros(2, CROP, CHANNELS)
    members = list(model.members) if isinstance(model, GaitEnsemble) else [model]
    wrapper = EnsembleWithProjection(model) if isinstance(model, GaitEnsemble) else WithProjection(model)
    torch.onnx.export(
        wrapper, (example,), str(path), input_names=["features"],
        output_names=["embedding", PROJECTION_OUTPUT],
        dynamic_axes={"features": {0: "batch", 1: "frames"}, "embedding": {0: "batch"},
                      PROJECTION_OUTPUT: {0: "batch"}},
        opset_version=17, dynamo=False,
    )
    norms = [m.head[1] for m in members]
    if len({float(n.eps) for n in norms}) != 1:
        raise ValueError("ensemble members' head norms differ in eps")
    head = HeadNorm(np.concatenate([n.weight.detach().numpy() for n in norms]),
                    np.concatenate([n.bias.detach().numpy() for n in norms]), float(norms[0].eps),
                    CameraStatistics(np.concatenate([n.running_mean.numpy() for n in norms]),
                                     np.concatenate([n.running_var.numpy() for n in norms]), 0),
                    blocks=len(members))
    exported = onnx.load(str(path))
    onnx.helper.set_model_props(exported, {HEAD_NORM_KEY: head.to_metadata()})
    onnx.save(exported, str(path))


def onnx_agreement(model, path: Path, samples: list[np.ndarray]) -> float:  # type: ignore[no-untyped-def]
    """The largest difference between PyTorch and ONNX Runtime over both outputs, the embedding
    and the projection (the latter also through the metadata's head norm, as services use it)."""
    import onnxruntime as ort
    import torch

    from gait.adaptation import HEAD_NORM_KEY, HeadNorm

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    head = HeadNorm.from_metadata(session.get_modelmeta().custom_metadata_map[HEAD_NORM_KEY])
    torch_out = embed_torch(model, [s.astype(np.float32) for s in samples])
    with torch.no_grad():
        torch_projected = np.stack([model.projected(torch.from_numpy(s.astype(np.float32))[None])[0].numpy()
                                    for s in samples])
    runs = [session.run(None, {"features": s.astype(np.float32)[None]}) for s in samples]
    onnx_out = np.stack([r[0][0] for r in runs])
    onnx_projected = np.stack([r[1][0] for r in runs])
    return float(max(np.abs(torch_out - onnx_out).max(), np.abs(torch_projected - onnx_projected).max(),
                     np.abs(head.embed(onnx_projected) - onnx_out).max()))
