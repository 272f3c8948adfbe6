"""What one training step optimises: CLMLE's Eq. 9 or LMLE's Eq. 2.

An objective is set up once per round on the current clusters and
embedding (``start_round``), then, each step, chooses the rows of a batch
(``sample``), turns their unit-norm embeddings into per-anchor loss terms
(``terms``) and sees the detached terms afterwards (``update``). The
training loop (:mod:`sklearn_clmle._training`) is shared by both.
"""

from typing import Protocol

import numpy as np
import torch

from sklearn_clmle._loss import cluster_margin_terms
from sklearn_clmle._quintuplet_loss import quintuplet_terms
from sklearn_clmle._quintuplets import ANCHOR, NEGATIVE, P_MINUS2, QuintupletSampler
from sklearn_clmle._rows import to_device
from sklearn_clmle._sampler import ClusterBatchSampler


class Objective(Protocol):
    """What the training loop needs of an objective.

    ``phase`` names it in logs and errors, ``margin_names`` in the
    divergence hint, ``rule`` is the decision rule the validation part is
    scored with (``"clmle"``: Eq. 10, ``"lmle"``: LMLE Eq. 3).
    """

    phase: str
    margin_names: str
    rule: str

    def start_round(self, clusters, features, y, rng): ...

    def sample(self): ...

    def terms(self, z, batch): ...

    def update(self, idx, per_row): ...


#: On an accelerator, the hardest-query sampling's loss cache is refreshed
#: from the device every this many steps (one host copy instead of one per
#: step; see ``ClusterMarginObjective.update``).
LOSS_FLUSH_STEPS = 16


class ClusterMarginObjective:
    """CLMLE: cluster batches (Sec. 3.3) and the cluster-margin loss (Eq. 9)."""

    phase = "cluster-margin"
    margin_names = "a1/a2"
    rule = "clmle"

    def __init__(self, cfg, device):
        self.cfg = cfg
        self.device = device
        self.a2 = torch.as_tensor(cfg["a2"], dtype=torch.float32, device=device)
        self.loss_cache = None
        self._pending = []

    def start_round(self, clusters, features, y, rng):
        self.flush()
        cfg = self.cfg
        self.sampler = ClusterBatchSampler(
            clusters, cfg["clusters_per_batch"], cfg["samples_per_cluster"],
            cfg["query_sampling"], rng, self.loss_cache,
        )
        self.loss_cache = self.sampler.loss_cache
        self.cluster_class = torch.as_tensor(clusters.cluster_class, device=self.device)

    def sample(self):
        """Row indices of the batch, and what ``terms`` needs to score it."""
        idx, batch_cluster, batch_clusters = self.sampler.sample()
        ids = to_device(batch_cluster, self.device)
        classes = self.cluster_class[to_device(batch_clusters, self.device)]
        return idx, (ids, classes)

    def batch_of(self, idx):
        """What ``terms`` needs for rows ``idx`` drawn by another objective.

        The rows are grouped by their clusters in this objective's current
        clustering (multi-label ``batches="shared"``: one label's batch
        scored for every label).
        """
        uniq, ids = np.unique(self.sampler.clusters.labels[idx], return_inverse=True)
        return (to_device(ids.reshape(-1), self.device),
                self.cluster_class[to_device(uniq, self.device)])

    def terms(self, z, batch):
        """Per-anchor loss, the anchors' classes and their rows in the batch."""
        ids, classes = batch
        t1, t2 = cluster_margin_terms(
            z, ids, classes, self.cfg["a1"], self.a2[classes], self.cfg["scale"]
        )
        return t1 + t2, classes[ids], slice(None)

    def update(self, idx, per_row):
        """Cache the batch's per-anchor losses for the hardest-query sampling.

        On the CPU at once. On an accelerator the losses stay on the device
        and are copied to the host every ``LOSS_FLUSH_STEPS`` steps, so that
        the host never waits for the device between steps; the sampler then
        sees a step's losses up to ``LOSS_FLUSH_STEPS - 1`` steps late.
        """
        self._pending.append((idx, per_row))
        if per_row.device.type == "cpu" or len(self._pending) >= LOSS_FLUSH_STEPS:
            self.flush()

    def flush(self):
        """Copy the pending per-anchor losses to the sampler's cache."""
        if not self._pending:
            return
        idx = np.concatenate([i for i, _ in self._pending])
        losses = torch.cat([p for _, p in self._pending]).float().cpu().numpy()
        self._pending = []
        self.sampler.update(idx, losses)


class QuintupletObjective:
    """LMLE: quintuplets from a lookup table and the triple-header hinge loss.

    ``cfg["loss"] == "triplet"`` keeps only the class-level term
    ``[g3 + D(a, p--) - D(a, n)]_+`` on (anchor, farthest same-class,
    nearest other-class) triplets: the triplet-loss baseline of the LMLE
    paper, on the same table and batches.
    """

    phase = "quintuplet"
    margin_names = "g1/g2/g3"
    rule = "lmle"

    def __init__(self, cfg, device):
        self.cfg = cfg
        self.device = device
        self.triplet = cfg["loss"] == "triplet"
        self.members = (ANCHOR, P_MINUS2, NEGATIVE) if self.triplet else tuple(range(5))
        self.n_anchors = max(1, cfg["batch_size"] // len(self.members))
        self.g2 = torch.as_tensor(cfg["g2"], dtype=torch.float32, device=device)

    def start_round(self, clusters, features, y, rng):
        self.y = torch.as_tensor(y, device=self.device)
        self.sampler = QuintupletSampler(
            features, y, clusters.labels, self.cfg["subset_fraction"], rng
        )

    def sample(self):
        table, has_p_minus = self.sampler.sample(self.n_anchors)
        idx = table[:, self.members].T.reshape(-1)  # all anchors, then each member
        anchor_class = self.y[to_device(table[:, ANCHOR], self.device)]
        return idx, (anchor_class, to_device(has_p_minus, self.device))

    def terms(self, z, batch):
        anchor_class, has_p_minus = batch
        parts = z.split(self.n_anchors)
        if self.triplet:
            a, pmm, n = parts
            _, _, sigma = quintuplet_terms(a, a, a, pmm, n, 0.0, 0.0, self.cfg["g3"])
            per_row = sigma
        else:
            eps, tau, sigma = quintuplet_terms(
                *parts, self.cfg["g1"], self.g2[anchor_class], self.cfg["g3"]
            )
            # Without another cluster in the anchor's class, p- is absent.
            per_row = (eps + tau) * has_p_minus + sigma
        return per_row, anchor_class, slice(0, self.n_anchors)

    def update(self, idx, per_row):
        """Nothing to cache: the table is fixed for the round."""
