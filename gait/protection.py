"""Cancelable template protection: a secret, revocable, distance-preserving transform.

What the search index holds is R @ e, where e is the L2-normalised embedding and R a random
orthogonal matrix (Haar-distributed, from QR of a Gaussian matrix) drawn from a secret held
in Vault. Inner products, hence cosine scores, are preserved exactly, so the accuracy cost
is nil by construction; a stolen index without the secret gives vectors in an unknown basis
that match nothing a thief can compute; a leak is remedied by issuing a new secret and
re-transforming the raw templates (which are kept encrypted under each customer's key).
Identity transforms templates; the matcher transforms every query the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class CancelableTransform:
    secret: bytes
    version: int
    dim: int = 128
    _matrix: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 16:
            raise ValueError("transform secret must hold at least 16 bytes")
        seed = int.from_bytes(hashlib.sha256(b"gaitpay-transform|" + self.secret).digest(), "big")
        gaussian = np.random.default_rng(seed).standard_normal((self.dim, self.dim))
        q, r = np.linalg.qr(gaussian)
        q *= np.sign(np.diag(r))  # makes the draw Haar-uniform, not biased by QR's sign choice
        object.__setattr__(self, "_matrix", q.astype(np.float32))

    def apply(self, embeddings: np.ndarray) -> np.ndarray:
        """[D] or [N, D] -> the same shape, in the protected basis."""
        out = np.asarray(embeddings, dtype=np.float32) @ self._matrix.T
        return out.astype(np.float32)

    def restore(self, protected: np.ndarray) -> np.ndarray:
        """The inverse of apply (the matrix is orthogonal): back to the model's own basis. Only
        the cloud, which holds the secret, does this: to re-base a hot cache for one edge."""
        return (np.asarray(protected, dtype=np.float32) @ self._matrix).astype(np.float32)

    @property
    def label(self) -> str:
        """Tag stored with each protected template so mixed versions are never compared."""
        return f"t{self.version}"
