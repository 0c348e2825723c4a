"""Group questions by meaning so editors see which knowledge-base entries to write next.

Leader clustering on cosine similarity followed by one reassignment pass: deterministic, needs
only numpy, and fast for the few thousand questions an MRC collects in a quarter.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["cluster_embeddings"]


def cluster_embeddings(vectors: npt.NDArray[np.floating], threshold: float) -> list[list[int]]:
    """Row indices grouped so that each row's cosine to its cluster centre is ≥ ``threshold``
    (where possible); biggest cluster first, rows in input order within a cluster."""
    raw = np.asarray(vectors, dtype=np.float64)
    if raw.ndim != 2 or len(raw) == 0:
        return []
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    rows = (raw / np.where(norms == 0, 1.0, norms)).astype(np.float32)

    sums: list[npt.NDArray[np.floating]] = []
    centres = np.empty((0, rows.shape[1]), dtype=np.float32)
    for row in rows:
        if len(centres):
            sims = centres @ row
            best = int(np.argmax(sims))
            if sims[best] >= threshold:
                sums[best] = sums[best] + row
                centres[best] = sums[best] / max(float(np.linalg.norm(sums[best])), 1e-12)
                continue
        sums.append(row.copy())
        centres = np.vstack([centres, row[None, :]])

    # One reassignment pass fixes rows that met their leader before a closer centre existed.
    assignment = np.argmax(rows @ centres.T, axis=1)
    groups: dict[int, list[int]] = {}
    for index, centre in enumerate(assignment.tolist()):
        groups.setdefault(int(centre), []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))
