"""KNearestClusterClassifier: the k-nearest-cluster rule of CLMLE (Eq. 10)."""

import functools
import threading
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral, Real
from typing import NamedTuple

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_consistent_length, check_is_fitted
from threadpoolctl import ThreadpoolController

from sklearn_clmle._clustering import (
    ClassClusters,
    normalize_rows,
    resolve_cluster_size,
)
from sklearn_clmle._rules import break_ties, class_scores, scores_to_proba
from sklearn_clmle._search import EXTRA_CANDIDATES, CentroidIndex
from sklearn_clmle._validation import (
    check_class_targets,
    check_multilabel_target,
    check_single_label,
    is_multi_output,
    keep_fitted_state_on_failure,
    validate_numeric,
)
from sklearn_clmle._versioning import VersionStampMixin


#: ``prior_adjustment="auto"`` per rule: 1 for Eq. 10, measured on CLMLE
#: embeddings (``benchmarks/results/knc_prior.md``); 0 (none) for LMLE's
#: Eq. 3, whose distance scores it was not measured on.
AUTO_PRIOR_ADJUSTMENT = {"clmle": 1.0, "lmle": 0.0}
#: ``chunk_size="auto"``: queries per block such that a block holds about
#: this many class scores or candidates per array (``n_classes`` or
#: ``n_neighbors + 2`` per query), within ``AUTO_CHUNK_ROWS``. Numpy calls
#: on fewer than some 20,000 values cost more in thread hand-overs (the
#: GIL) than in work, so blocks of a few hundred queries do not speed up
#: on two threads; see ``benchmarks/results/knc_scale.md``.
AUTO_CHUNK_VALUES = 1 << 17
AUTO_CHUNK_ROWS = (256, 8192)


class KNearestClusterClassifier(VersionStampMixin, ClassifierMixin, BaseEstimator):
    """Classify by the nearest cluster centroids with a local large margin rule.

    ``fit`` splits every class into equal-size clusters by spherical k-means
    and keeps their unit-norm centroids. ``predict`` retrieves a query's
    ``n_neighbors`` most similar centroids and applies Eq. 10 of the CLMLE
    paper: the predicted class is the one whose *least* similar retrieved
    cluster beats the log-sum-exp of the other classes' retrieved clusters by
    the largest margin,

        y = argmax_c  scale * min_{m: c(m)=c} s_m - log sum_{k: c(k)!=c} exp(scale * s_k),

    over the classes present among the retrieved (a class with no retrieved
    cluster is never chosen; if all are of one class, that class). Inputs are
    L2-normalised, so it works on any features, not only on
    :class:`CLMLEEmbedder` output. Searching centroids instead of samples
    is about ``cluster_size`` times less work than instance-wise kNN.

    Parameters
    ----------
    n_neighbors : int, default=5
        N, centroids retrieved per query; clipped to the number of
        centroids (``n_neighbors_``) with a ``UserWarning``. The paper searches 20 to 200 over thousands of clusters;
        on long-tailed digits and MNIST-1D (tens of clusters) accuracy fell
        as N grew, N=1 (nearest centroid) and N=5 with ``scale=10`` were
        best and within noise of each other, and N=5 keeps graded scores
        and probabilities (``benchmarks/results/knc_accuracy.md``).
    cluster_size : int or "auto", default="auto"
        Cluster size l; class c gets ``max(1, L_c // l)`` clusters.
        ``"auto"`` is ``clip(L // (4 C), 20, 200)``, the paper's 200 on large
        data and smaller on small data. ``1`` makes every training sample
        its own cluster.
    rule : {"clmle", "lmle"}, default="clmle"
        ``"clmle"`` is Eq. 10 of the CLMLE paper; ``"lmle"`` is Eq. 3 of the
        LMLE paper (squared Euclidean distances: the class whose farthest
        retrieved cluster is nearer than the nearest cluster of any other
        class by the largest margin).
    scale : float, default=10.0
        Inverse temperature on the similarities in Eq. 10; 1 is the paper,
        large values approach the hard-margin ``"lmle"`` rule. With
        similarities in [-1, 1] and scale 1 the log-sum-exp over the other
        classes grows with how many of their clusters are retrieved, which
        cost 3 points of balanced accuracy on average at N=5 against scale 10
        (``benchmarks/results/knc_accuracy.md``).
    prior_adjustment : float or "auto", default="auto"
        ``tau``: every retrieved class's score gets ``-tau * log(prior_c)``
        added (``prior_c`` its share of the training rows), the logit
        adjustment of Menon et al. (ICLR 2021) applied to the cluster rule,
        which favours rare classes towards balanced error. Not in the
        papers; 0 is Eq. 10 (or Eq. 3) exactly. ``"auto"`` is 1 for
        ``rule="clmle"`` (by measurement at N=5: 0 to +2.4 points of balanced
        accuracy on long-tailed digits and MNIST-1D,
        ``benchmarks/results/knc_prior.md``) and 0 for ``"lmle"``. Balanced
        training data get no change.
    algorithm : {"auto", "brute", "kd_tree", "nndescent"}, default="auto"
        Centroid search: one matrix product per block of queries, then the
        centroids that reach a per-query threshold from group maxima,
        re-scored exactly (``"brute"``, exact; run on as many threads as BLAS
        may use, see ``chunk_size``), scikit-learn's KD-tree on the
        centroids (exact), or pynndescent (approximate, imported only when
        used). ``"auto"`` is brute force up to 200,000 centroids (exact,
        and faster than NN-descent's build plus query at every size measured
        in ``benchmarks/results/search_backends.md``) and NN-descent above.
    chunk_size : int or "auto", default="auto"
        Queries per block. ``predict``, ``predict_proba``,
        ``decision_function`` and ``kneighbors`` normalise, search and score
        one block at a time: beyond their output they hold one block's
        normalised queries, its candidates (``n_neighbors + 2`` per query),
        its ``chunk_size * n_classes`` scores and, per thread, the
        similarities of a cache-sized sub-block (brute search), so memory
        does not grow with the number of queries. ``"auto"`` picks blocks
        of about ``2**17`` scores or candidates (256 to 8,192 queries).
        Brute search shares the queries evenly among blocks of at most
        ``chunk_size / threads`` queries on as many threads as BLAS may use
        (``threadpoolctl.threadpool_limits`` caps them) and caps BLAS at one
        thread meanwhile. Results depend neither on the block size nor on
        the number of threads.
    multilabel_features : {"auto", "blocks", "shared"}, default="auto"
        With a multi-label indicator ``y`` of A columns the rule runs per
        label on its own features: ``"blocks"`` splits the columns of ``X``
        into A equal blocks, label ``a`` on block ``a`` (the output of a
        multi-label :class:`CLMLEEmbedder`); ``"shared"`` gives every label
        all the columns. ``"auto"`` picks ``"blocks"`` when every row of
        ``X`` is made of A unit-norm blocks (as a multi-label embedding is),
        else ``"shared"``; ``X`` made of unit-norm blocks of another count
        than A raises a ``ValueError`` (an embedder and a classifier fitted
        with different ``y``). Ignored for single-label ``y``.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means initialisation and NN-descent.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; after a multi-label fit, the label indices
        ``arange(n_labels)`` (scikit-learn's convention for indicator
        targets).
    n_outputs_ : int
        1, or the number of labels A of a multi-label ``y``. After a
        multi-label fit, ``cluster_centers_``, ``cluster_classes_``,
        ``n_neighbors_`` and ``prior_adjustment_``-adjusted scores are per
        label (lists, or arrays with one row per label:
        ``n_clusters_per_class_`` and ``class_counts_`` of shape (A, 2));
        ``predict`` gives (n_samples, A) 0/1 labels, ``decision_function``
        (n_samples, A) scores of label 1 over label 0 and ``predict_proba``
        a list of A arrays of shape (n_samples, 2).
    multilabel_features_ : str
        ``"blocks"`` or ``"shared"`` (multi-label fits only).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Defined when X has string column names.
    cluster_centers_ : ndarray of shape (n_clusters, `n_features_in_`)
        Unit-norm centroids.
    cluster_classes_ : ndarray of shape (n_clusters,)
        Class label of each centroid.
    n_clusters_per_class_ : ndarray of shape (n_classes,)
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class (used to break ties).
    prior_adjustment_ : float
        The ``tau`` used (``"auto"`` resolved).
    cluster_size_ : int
        Cluster size used.
    n_neighbors_ : int
        N used (``n_neighbors`` clipped to the number of centroids).
    algorithm_ : str
        Search backend used.

    Notes
    -----
    Scores (``decision_function``): for ``rule="clmle"`` the log of Eq. 10's
    ratio, ``scale * min s_m - log sum exp(scale * s_k)``; for ``"lmle"``,
    ``min D_other - max D_own = 2 (min s_own - max s_other)``. When no other
    class is retrieved the competitor is put at the antipode (similarity -1).
    A class with no retrieved cluster scores ``-2 * scale - log(N) - 1``
    (``"clmle"``) or ``-5`` (``"lmle"``), below any attainable score.

    Probabilities (``predict_proba``): the softmax of the scores over the
    retrieved classes; absent classes get exactly 0. Rows sum to 1.

    Ties (equal best scores) are broken by the most similar retrieved
    cluster, then in favour of the class with fewer training samples, and
    only then by label order. ``predict`` applies this tie-break;
    ``predict_proba`` gives tied classes equal probability.

    References
    ----------
    C. Huang, Y. Li, C. C. Loy, X. Tang. "Deep Imbalanced Learning for Face
    Recognition and Attribute Prediction", IEEE TPAMI 2019 (Sec. 4, Eq. 10).
    C. Huang, Y. Li, C. C. Loy, X. Tang. "Learning Deep Representation for
    Imbalanced Classification", CVPR 2016 (Sec. 4, Eq. 3).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import KNearestClusterClassifier
    >>> X, y = make_classification(300, n_features=8, weights=[0.8], random_state=0)
    >>> clf = KNearestClusterClassifier(cluster_size=10, n_neighbors=5).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    >>> clf.predict_proba(X[:3]).sum(axis=1)
    array([1., 1., 1.])
    """

    _parameter_constraints = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "cluster_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "rule": [StrOptions({"clmle", "lmle"})],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "prior_adjustment": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "algorithm": [StrOptions({"auto", "brute", "kd_tree", "nndescent"})],
        "chunk_size": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "multilabel_features": [StrOptions({"auto", "blocks", "shared"})],
        "random_state": ["random_state"],
    }

    def __init__(self, n_neighbors=5, *, cluster_size="auto", rule="clmle", scale=10.0,
                 prior_adjustment="auto", algorithm="auto", chunk_size="auto",
                 multilabel_features="auto", random_state=None):
        self.n_neighbors = n_neighbors
        self.cluster_size = cluster_size
        self.rule = rule
        self.scale = scale
        self.prior_adjustment = prior_adjustment
        self.algorithm = algorithm
        self.chunk_size = chunk_size
        self.multilabel_features = multilabel_features
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Cluster every class and index the centroids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (rows are L2-normalised internally).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (at least two classes), or a binary indicator
            matrix of labels (each column holding 0 and 1): one rule per
            label, see ``multilabel_features``.

        Returns
        -------
        self : KNearestClusterClassifier
            The fitted classifier.
        """
        with keep_fitted_state_on_failure(self):
            return self._fit(X, y)

    def _fit(self, X, y):
        if is_multi_output(y):
            return self._fit_multilabel(X, y)
        check_single_label(y, "KNearestClusterClassifier")
        X, y = validate_numeric(self, X, y, dtype=[np.float32, np.float64])
        check_class_targets(y, "KNearestClusterClassifier")
        encoder = LabelEncoder().fit(y)
        y_enc = encoder.transform(y)
        cluster_size = resolve_cluster_size(self.cluster_size, y_enc.size,
                                            encoder.classes_.size)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        part = self._fit_part(X, y_enc, encoder.classes_.size, cluster_size, seed)
        self.classes_ = encoder.classes_
        self.n_outputs_ = 1
        self.__dict__.pop("multilabel_features_", None)
        self.cluster_classes_ = self.classes_[part["cluster_class"]]
        return self._set_parts([part], cluster_size, single=True)

    def _fit_multilabel(self, X, Y):
        Y, _ = check_multilabel_target(Y, "KNearestClusterClassifier")
        X = validate_numeric(self, X, dtype=[np.float32, np.float64])
        check_consistent_length(X, Y)
        n_labels = Y.shape[1]
        mode = self._multilabel_mode(X, n_labels)
        cluster_size = resolve_cluster_size(self.cluster_size, Y.shape[0], 2)
        rng = check_random_state(self.random_state)
        width = X.shape[1] // n_labels if mode == "blocks" else X.shape[1]
        parts = []
        for a in range(n_labels):
            cols = slice(a * width, (a + 1) * width) if mode == "blocks" else slice(None)
            seed = rng.randint(np.iinfo(np.int32).max)
            parts.append(self._fit_part(X[:, cols], Y[:, a], 2, cluster_size, seed))
        self.classes_ = np.arange(n_labels)
        self.n_outputs_ = n_labels
        self.multilabel_features_ = mode
        self.cluster_classes_ = [p["cluster_class"] for p in parts]
        return self._set_parts(parts, cluster_size, single=False)

    def _multilabel_mode(self, X, n_labels):
        """``"blocks"`` or ``"shared"`` for a multi-label fit (see the parameter)."""
        n_features = X.shape[1]
        if self.multilabel_features == "shared":
            return "shared"
        if self.multilabel_features == "blocks":
            if n_features % n_labels:
                raise ValueError(
                    f"multilabel_features='blocks' splits X into one block per label, "
                    f"but X has {n_features} columns, not a multiple of the "
                    f"{n_labels} columns of y. Use multilabel_features='shared' to "
                    "give every label all the columns."
                )
            return "blocks"
        # Blocks of one column only when there is one per label: rows of
        # +-1 features are not taken for an embedding of another width.
        counts = list(range(2, n_features // 2 + 1)) + (
            [n_features] if n_features == n_labels else [])
        blocks = [b for b in counts if n_features % b == 0 and _unit_blocks(X, b)]
        if n_labels in blocks:
            return "blocks"
        if blocks:
            raise ValueError(
                f"X is made of {blocks[0]} unit-norm blocks of {n_features // blocks[0]} "
                f"columns, the output of a multi-label embedder fitted on "
                f"{blocks[0]} labels, but y has {n_labels} columns. Fit the "
                "classifier with the same y as the embedder, or pass "
                "multilabel_features='shared' to use all the columns for every label."
            )
        return "shared"

    def _fit_part(self, X, y_enc, n_classes, cluster_size, seed):
        """Clusters, index and prior offset of one single-label problem."""
        # ClassClusters normalises its own per-class copies of the rows.
        clusters = ClassClusters(
            X, y_enc, cluster_size, n_classes=n_classes, random_state=seed
        )
        counts = np.bincount(y_enc, minlength=n_classes)
        tau = self.prior_adjustment
        if tau == "auto":
            tau = AUTO_PRIOR_ADJUSTMENT[self.rule]
        n_neighbors = min(self.n_neighbors, clusters.n_clusters)
        if n_neighbors < self.n_neighbors:
            warnings.warn(
                f"n_neighbors={self.n_neighbors} is more than the {clusters.n_clusters} "
                f"clusters of the training data; using n_neighbors_={n_neighbors}.",
                UserWarning,
            )
        return {
            "centers": clusters.centers,
            "cluster_class": clusters.cluster_class,
            "counts": counts,
            "n_per_class": np.bincount(clusters.cluster_class, minlength=n_classes),
            "tau": float(tau),
            # -tau * log(prior) >= 0: retrieved classes only gain, so they stay
            # above the score of a class with no retrieved cluster.
            "offset": -float(tau) * np.log(counts / counts.sum()),
            "n_neighbors": n_neighbors,
            "index": CentroidIndex(clusters.centers, self.algorithm,
                                   self._chunk_rows(n_classes, n_neighbors), seed),
        }

    def _chunk_rows(self, n_classes, n_neighbors):
        """Queries per block: ``chunk_size``, or for ``"auto"`` as many as keep
        a block's class scores and candidates near ``AUTO_CHUNK_VALUES``."""
        if self.chunk_size != "auto":
            return self.chunk_size
        per_query = max(n_classes, n_neighbors + EXTRA_CANDIDATES)
        return int(np.clip(AUTO_CHUNK_VALUES // per_query, *AUTO_CHUNK_ROWS))

    def _set_parts(self, parts, cluster_size, single):
        """The fitted attributes: one problem's values, or per-label lists."""
        def field(name, stack=None):
            values = [p[name] for p in parts]
            if single:
                return values[0]
            return stack(values) if stack is not None else values

        self.cluster_size_ = cluster_size
        self.cluster_centers_ = field("centers")
        self._cluster_class = field("cluster_class")
        self.n_clusters_per_class_ = field("n_per_class", np.stack)
        self.class_counts_ = field("counts", np.stack)
        self.prior_adjustment_ = parts[0]["tau"]
        self._score_offset = field("offset")
        self.n_neighbors_ = field("n_neighbors")
        self._index = field("index")
        self.algorithm_ = parts[0]["index"].algorithm
        return self

    def kneighbors(self, X, n_neighbors=None):
        """Nearest centroids of each query.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
        n_neighbors : int, default=None
            Defaults to ``n_neighbors_``.

        Returns
        -------
        distances : ndarray of shape (n_queries, n_neighbors)
            Euclidean distances between the normalised query and the
            centroids, ``sqrt(2 - 2 s)``, nearest first. After a multi-label
            fit, a list with one such array per label.
        indices : ndarray of shape (n_queries, n_neighbors)
            Rows of ``cluster_centers_`` (of ``cluster_centers_[a]`` for
            label ``a`` of a multi-label fit, in a list).
        """
        X = self._queries(X)
        found = []
        for part in self._parts():
            k = part.n_neighbors if n_neighbors is None else int(n_neighbors)
            n_centers = part.cluster_class.size
            if not 1 <= k <= n_centers:
                raise ValueError(
                    f"n_neighbors must be in [1, {n_centers}] (the number of "
                    f"centroids), got {n_neighbors}."
                )
            distances = np.empty((X.shape[0], k))
            indices = np.empty((X.shape[0], k), dtype=np.int64)
            for rows, (sim, idx) in self._map_blocks(X, k, part, lambda sim, idx: (sim, idx)):
                distances[rows] = np.sqrt(np.clip(2.0 - 2.0 * sim, 0.0, None))
                indices[rows] = idx
            found.append((distances, indices))
        if self._n_labels == 1:
            return found[0]
        return [d for d, _ in found], [i for _, i in found]

    def decision_function(self, X):
        """Per-class scores of Eq. 10 (or Eq. 3); see the Notes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        scores : ndarray of shape (n_queries, n_classes) or (n_queries,)
            For two classes, ``score(classes_[1]) - score(classes_[0])``
            as scikit-learn expects of binary classifiers. After a
            multi-label fit, (n_queries, n_labels): that difference per label.
        """
        def binary(scores, nearest, counts):
            return scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores

        parts = self._per_block(X, binary)
        return parts[0] if self._n_labels == 1 else np.column_stack(parts)

    def predict_proba(self, X):
        """Softmax of the scores over the retrieved classes (absent: 0).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes), or list of ndarray
            After a multi-label fit, scikit-learn's multi-output convention
            (as ``MultiOutputClassifier``): one (n_queries, 2) array per
            label, columns 0 then 1.
        """
        parts = self._per_block(
            X, lambda scores, nearest, counts: scores_to_proba(scores, np.isfinite(nearest))
        )
        return parts[0] if self._n_labels == 1 else parts

    def predict(self, X):
        """Class of each query by Eq. 10 (or Eq. 3), ties broken as in the Notes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        y : ndarray of shape (n_queries,) or (n_queries, n_labels)
            Labels; after a multi-label fit, the 0/1 label matrix.
        """
        parts = self._per_block(X, break_ties)
        if self._n_labels == 1:
            return self.classes_[parts[0]]
        return np.column_stack(parts).astype(np.int64)

    @property
    def _n_labels(self):
        return getattr(self, "n_outputs_", 1)

    def _queries(self, X):
        """Validated queries (not copied)."""
        check_is_fitted(self)
        return validate_numeric(self, X, dtype=[np.float32, np.float64], reset=False)

    def _parts(self):
        """The fitted problems: one, or one per label of a multi-label fit."""
        if self._n_labels == 1:
            return [_Part(slice(None), self._index, self._cluster_class,
                          self.class_counts_, self._score_offset, self.n_neighbors_)]
        width = (self.n_features_in_ // self.n_outputs_
                 if self.multilabel_features_ == "blocks" else None)
        return [
            _Part(slice(a * width, (a + 1) * width) if width else slice(None),
                  self._index[a], self._cluster_class[a], self.class_counts_[a],
                  self._score_offset[a], self.n_neighbors_[a])
            for a in range(self.n_outputs_)
        ]

    def _map_blocks(self, X, k, part, fn):
        """``(rows, fn(sim, idx))`` for consecutive blocks of queries, in order.

        Each block is normalised and searched on its own (on the part's
        columns) and handed to ``fn``, so nothing of the size of ``X`` is
        made here. Brute-force blocks run on as many threads as BLAS may use
        (``threadpoolctl`` limits apply), BLAS capped at one thread meanwhile,
        each thread with its own scratch buffers; the blocks in flight hold
        at most ``chunk_size`` queries together, and the results do not
        depend on the number of threads.
        """
        index, n_queries = part.index, X.shape[0]
        plan = index.plan(k)  # build the search structure before any thread
        n_threads, step = 1, index.chunk_size
        if plan is not None:
            n_threads = _blas_threads()
            # One batch of brute search per block; the blocks in flight hold
            # no more than one chunk, and as many blocks as threads share
            # the queries evenly.
            step = max(1, min(step, plan.batch) // n_threads)
            n_blocks = -(-n_queries // step)
            if n_blocks > 1:
                n_blocks = -(-n_blocks // n_threads) * n_threads
                step = max(1, -(-n_queries // n_blocks))
        blocks = [slice(start, min(start + step, n_queries))
                  for start in range(0, n_queries, step)]
        local = threading.local()

        def run(rows):
            work = local.__dict__.setdefault("work", {})
            return rows, fn(*index.query(normalize_rows(X[rows, part.columns]), k, work))

        # Only one call at a time changes the BLAS limit (and restores it).
        if n_threads <= 1 or len(blocks) < 2 or not _PARALLEL_SEARCH.acquire(blocking=False):
            yield from map(run, blocks)
            return
        try:
            with _blas_limit(1), ThreadPoolExecutor(n_threads) as pool:
                pending = deque()
                for rows in blocks:
                    pending.append(pool.submit(run, rows))
                    if len(pending) >= n_threads:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
        finally:
            _PARALLEL_SEARCH.release()

    def _per_block(self, X, fn):
        """Per problem, ``fn(scores, nearest, class_counts)`` of each block of
        queries, stacked by rows.

        The class scores exist for one block at a time; only the output of
        ``fn`` is kept for all queries.
        """
        X = self._queries(X)
        outputs = []
        for part in self._parts():
            def score(sim, idx, part=part):
                scores, nearest = class_scores(
                    sim, part.cluster_class[idx], part.counts.size, self.rule, self.scale
                )
                if self.prior_adjustment_:
                    scores = np.where(np.isfinite(nearest), scores + part.offset, scores)
                return fn(scores, nearest, part.counts)

            out = None
            for rows, block in self._map_blocks(X, part.n_neighbors, part, score):
                if out is None:
                    out = np.empty((X.shape[0],) + block.shape[1:], dtype=block.dtype)
                out[rows] = block
            outputs.append(out)
        return outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        tags.target_tags.multi_output = True
        return tags


_PARALLEL_SEARCH = threading.Lock()


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """The BLAS libraries loaded (threadpoolctl; inspecting them is slow)."""
    return ThreadpoolController().select(user_api="blas")


def _blas_threads():
    """Threads BLAS may use now (1 when no BLAS library is found)."""
    return max([lib["num_threads"] for lib in _blas_controller().info()] + [1])


def _blas_limit(n_threads):
    """Context capping the BLAS threads."""
    return _blas_controller().limit(limits=n_threads)


class _Part(NamedTuple):
    """One fitted single-label problem of the classifier (one label of many)."""

    columns: slice
    index: CentroidIndex
    cluster_class: np.ndarray
    counts: np.ndarray
    offset: np.ndarray
    n_neighbors: int


def _unit_blocks(X, n_blocks, n_rows=256, tol=1e-3):
    """Whether the first rows of ``X`` are made of ``n_blocks`` unit-norm blocks."""
    head = np.asarray(X[:n_rows], dtype=np.float64)
    norms = np.linalg.norm(head.reshape(head.shape[0], n_blocks, -1), axis=2)
    return bool(np.all(np.abs(norms - 1.0) <= tol))
