"""KNearestClusterClassifier: the k-nearest-cluster rule of CLMLE (Eq. 10)."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from sklearn_clmle._clustering import (
    ClassClusters,
    normalize_rows,
    resolve_cluster_size,
)
from sklearn_clmle._rules import break_ties, class_scores, scores_to_proba
from sklearn_clmle._search import CentroidIndex
from sklearn_clmle._validation import (
    check_class_targets,
    check_single_label,
    keep_fitted_state_on_failure,
    validate_numeric,
)
from sklearn_clmle._versioning import VersionStampMixin


#: ``prior_adjustment="auto"`` per rule: 1 for Eq. 10, measured on CLMLE
#: embeddings (``benchmarks/results/knc_prior.md``); 0 (none) for LMLE's
#: Eq. 3, whose distance scores it was not measured on.
AUTO_PRIOR_ADJUSTMENT = {"clmle": 1.0, "lmle": 0.0}


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
        Centroid search: one matrix product per chunk of queries plus a
        partial sort (``"brute"``, exact), scikit-learn's KD-tree on the
        centroids (exact), or pynndescent (approximate, imported only when
        used). ``"auto"`` is brute force up to 200,000 centroids (exact,
        and faster than NN-descent's build plus query at every size measured
        in ``benchmarks/results/search_backends.md``) and NN-descent above.
    chunk_size : int, default=1024
        Queries per block. ``predict``, ``predict_proba``,
        ``decision_function`` and ``kneighbors`` normalise, search and score
        one block at a time: beyond their output they hold one block's
        normalised queries, its ``chunk_size * n_centroids`` similarities
        (brute search) and its ``chunk_size * n_classes`` scores, so memory
        does not grow with the number of queries. Results do not depend on
        it.
    random_state : int, RandomState instance or None, default=None
        Seeds the k-means initialisation and NN-descent.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
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
        "chunk_size": [Interval(Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, n_neighbors=5, *, cluster_size="auto", rule="clmle", scale=10.0,
                 prior_adjustment="auto", algorithm="auto", chunk_size=1024,
                 random_state=None):
        self.n_neighbors = n_neighbors
        self.cluster_size = cluster_size
        self.rule = rule
        self.scale = scale
        self.prior_adjustment = prior_adjustment
        self.algorithm = algorithm
        self.chunk_size = chunk_size
        self.random_state = random_state

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Cluster every class and index the centroids.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training features (rows are L2-normalised internally).
        y : array-like of shape (n_samples,)
            Class labels (at least two classes).

        Returns
        -------
        self : KNearestClusterClassifier
            The fitted classifier.
        """
        with keep_fitted_state_on_failure(self):
            return self._fit(X, y)

    def _fit(self, X, y):
        check_single_label(y, "KNearestClusterClassifier")
        X, y = validate_numeric(self, X, y, dtype=[np.float32, np.float64])
        check_class_targets(y, "KNearestClusterClassifier")
        encoder = LabelEncoder().fit(y)
        y_enc = encoder.transform(y)
        n_classes = encoder.classes_.size
        cluster_size = resolve_cluster_size(self.cluster_size, y_enc.size, n_classes)
        rng = check_random_state(self.random_state)
        seed = rng.randint(np.iinfo(np.int32).max)
        # ClassClusters normalises its own per-class copies of the rows.
        clusters = ClassClusters(
            X, y_enc, cluster_size, n_classes=n_classes, random_state=seed
        )
        index = CentroidIndex(clusters.centers, self.algorithm, self.chunk_size, seed)
        self.classes_ = encoder.classes_
        self.cluster_size_ = cluster_size
        self.cluster_centers_ = clusters.centers
        self._cluster_class = clusters.cluster_class
        self.cluster_classes_ = self.classes_[clusters.cluster_class]
        self.n_clusters_per_class_ = np.bincount(clusters.cluster_class, minlength=n_classes)
        self.class_counts_ = np.bincount(y_enc, minlength=n_classes)
        tau = self.prior_adjustment
        if tau == "auto":
            tau = AUTO_PRIOR_ADJUSTMENT[self.rule]
        self.prior_adjustment_ = float(tau)
        # -tau * log(prior) >= 0: retrieved classes only gain, so they stay
        # above the score of a class with no retrieved cluster.
        self._score_offset = -self.prior_adjustment_ * np.log(
            self.class_counts_ / self.class_counts_.sum()
        )
        self.n_neighbors_ = min(self.n_neighbors, clusters.n_clusters)
        if self.n_neighbors_ < self.n_neighbors:
            warnings.warn(
                f"n_neighbors={self.n_neighbors} is more than the {clusters.n_clusters} "
                f"clusters of the training data; using n_neighbors_={self.n_neighbors_}.",
                UserWarning,
            )
        self.algorithm_ = index.algorithm
        self._index = index
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
            centroids, ``sqrt(2 - 2 s)``, nearest first.
        indices : ndarray of shape (n_queries, n_neighbors)
            Rows of ``cluster_centers_``.
        """
        X, k = self._check_queries(X, n_neighbors)
        distances = np.empty((X.shape[0], k))
        indices = np.empty((X.shape[0], k), dtype=np.int64)
        for rows, sim, idx in self._search(X, k):
            distances[rows] = np.sqrt(np.clip(2.0 - 2.0 * sim, 0.0, None))
            indices[rows] = idx
        return distances, indices

    def decision_function(self, X):
        """Per-class scores of Eq. 10 (or Eq. 3); see the Notes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        scores : ndarray of shape (n_queries, n_classes) or (n_queries,)
            For two classes, ``score(classes_[1]) - score(classes_[0])``
            as scikit-learn expects of binary classifiers.
        """
        return self._per_block(
            X, lambda scores, _: scores[:, 1] - scores[:, 0] if scores.shape[1] == 2 else scores
        )

    def predict_proba(self, X):
        """Softmax of the scores over the retrieved classes (absent: 0).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        proba : ndarray of shape (n_queries, n_classes)
        """
        return self._per_block(
            X, lambda scores, nearest: scores_to_proba(scores, np.isfinite(nearest))
        )

    def predict(self, X):
        """Class of each query by Eq. 10 (or Eq. 3), ties broken as in the Notes.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)

        Returns
        -------
        y : ndarray of shape (n_queries,)
        """
        return self._per_block(
            X, lambda scores, nearest: self.classes_[
                break_ties(scores, nearest, self.class_counts_)
            ],
        )

    def _check_queries(self, X, n_neighbors=None):
        """Validated queries (not copied) and the number of centroids to retrieve."""
        check_is_fitted(self)
        X = validate_numeric(self, X, dtype=[np.float32, np.float64], reset=False)
        k = self.n_neighbors_ if n_neighbors is None else int(n_neighbors)
        if not 1 <= k <= self.cluster_centers_.shape[0]:
            raise ValueError(
                f"n_neighbors must be in [1, {self.cluster_centers_.shape[0]}] (the "
                f"number of centroids), got {n_neighbors}."
            )
        return X, k

    def _search(self, X, k):
        """``(rows, sim, idx)`` for each block of ``chunk_size`` queries.

        Each block is normalised and searched on its own, so nothing of the
        size of ``X`` is made here.
        """
        step = self._index.chunk_size
        for start in range(0, X.shape[0], step):
            rows = slice(start, min(start + step, X.shape[0]))
            sim, idx = self._index.query(normalize_rows(X[rows]), k)
            yield rows, sim, idx

    def _per_block(self, X, fn):
        """``fn(scores, nearest)`` of each block of queries, stacked by rows.

        The class scores exist for one block at a time; only the output of
        ``fn`` is kept for all queries.
        """
        X, k = self._check_queries(X)
        out = None
        for rows, sim, idx in self._search(X, k):
            scores, nearest = class_scores(
                sim, self._cluster_class[idx], self.classes_.size, self.rule, self.scale
            )
            if self.prior_adjustment_:
                scores = np.where(np.isfinite(nearest), scores + self._score_offset, scores)
            block = fn(scores, nearest)
            if out is None:
                out = np.empty((X.shape[0],) + block.shape[1:], dtype=block.dtype)
            out[rows] = block
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        return tags
