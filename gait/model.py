"""The embedding network (PyTorch; training only). Services run its ONNX export.

A temporal convolutional network over the per-frame channels of gait/encoding.py: residual
1D convolutions with striding (fast on CPU), then attention pooling over time (mean and
spread under learned weights, so frames with missing joints count less) and a linear
projection to an L2-normalised embedding. Trained with a CosFace margin loss over synthetic
identities (gait/train.py)."""

from __future__ import annotations

import torch
from torch import nn

from gait.encoding import CHANNELS

EMBEDDING_DIM = 128


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, dilation=dilation, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=pad, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        self.skip = None
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.skip is None else self.skip(x)))


class GaitEmbedder(nn.Module):
    def __init__(self, channels: int = CHANNELS, width: int = 64, dim: int = EMBEDDING_DIM) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(channels, width, 5, padding=2, bias=False), nn.BatchNorm1d(width),
                                  nn.ReLU())
        self.blocks = nn.Sequential(
            _Block(width, width, 5, stride=2),
            _Block(width, 2 * width, 3, stride=2),
            _Block(2 * width, 2 * width, 3, dilation=2),
        )
        self.attention = nn.Conv1d(2 * width, 1, 1)
        self.head = nn.Sequential(nn.Linear(4 * width, dim), nn.BatchNorm1d(dim))

    def projected(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, C] -> [B, dim]: the projection before the head's batch norm, whose
        running statistics (synthetic walkers') are where a real camera's walks all end up
        offset (docs/gait.md, "Fourth round")."""
        h = self.blocks(self.stem(x.transpose(1, 2)))  # [B, 2w, T/4]
        w = torch.softmax(self.attention(h), dim=2)
        mean = (h * w).sum(dim=2)
        spread = torch.sqrt(((h - mean.unsqueeze(2)) ** 2 * w).sum(dim=2) + 1e-6)
        return self.head[0](torch.cat([mean, spread], dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [B, T, C] -> [B, dim], L2-normalised."""
        return nn.functional.normalize(self.head[1](self.projected(x)), dim=1)


class CosFace(nn.Module):
    """Large-margin cosine loss (Wang et al. 2018) over the training identities."""

    def __init__(self, dim: int, classes: int, scale: float = 30.0, margin: float = 0.3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cosine = embeddings @ nn.functional.normalize(self.weight, dim=1).T
        margin = torch.zeros_like(cosine).scatter_(1, labels.unsqueeze(1), self.margin)
        return nn.functional.cross_entropy(self.scale * (cosine - margin), labels)


class GaitEnsemble(nn.Module):
    """Several embedders (the same recipe at other seeds) as one model: each member's
    L2-normalised embedding side by side, scaled by 1/sqrt(members), so that the cosine of two
    ensemble embeddings is the mean of the members' cosines. Averaging seeds is what met all
    three real-walker targets in both arrangements (docs/gait.md, "Eleventh round")."""

    def __init__(self, members: list[GaitEmbedder]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def projected(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C] -> [B, members * dim]: each member's projection before its head norm."""
        return torch.cat([m.projected(x) for m in self.members], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.members], dim=1) / len(self.members) ** 0.5


def load_checkpoint(path) -> nn.Module:  # type: ignore[no-untyped-def]
    """The PyTorch model a `gaitpay train` checkpoint holds: one embedder, or an ensemble
    (its state dict's names start with members.<i>.), in eval mode."""
    state = torch.load(path, map_location="cpu")
    members = sorted({int(name.split(".")[1]) for name in state if name.startswith("members.")})
    model: nn.Module = GaitEnsemble([GaitEmbedder() for _ in members]) if members else GaitEmbedder()
    model.load_state_dict(state)
    model.eval()
    return model
