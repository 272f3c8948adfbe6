"""Synthetic L2-normalised data for the speed benchmarks."""

import numpy as np


def normalised_blobs(n, n_features=64, n_classes=10, seed=0):
    """``n`` unit-norm rows around ``n_classes`` random directions, float32."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_classes, n_features)).astype(np.float32)
    y = rng.integers(0, n_classes, n)
    X = np.empty((n, n_features), dtype=np.float32)
    for start in range(0, n, 65_536):  # in blocks: no full-size temporaries
        stop = min(start + 65_536, n)
        block = centers[y[start:stop]] + rng.normal(
            scale=1.5, size=(stop - start, n_features)
        ).astype(np.float32)
        X[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return X, y
