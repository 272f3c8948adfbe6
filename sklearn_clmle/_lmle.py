"""LMLEEmbedder: the LMLE embedding (quintuplet loss) as a transformer."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_clmle._embedder_base import SHARED_TRAINING_DOC, EmbedderBase
from sklearn_clmle._margins import resolve_lmle_margins
from sklearn_clmle._objectives import QuintupletObjective

_MARGIN = [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})]


class LMLEEmbedder(EmbedderBase):
    """Large Margin Local Embedding (LMLE) as a transformer.

    The predecessor of CLMLE (Huang et al., CVPR 2016), trained by the same
    machinery as :class:`CLMLEEmbedder`: cluster every class on the current
    embedding, then, each round, build a lookup table of quintuplets on a
    random half of the training rows (anchor; its farthest neighbour in its
    cluster; its nearest same-class neighbour in another cluster; its
    farthest same-class neighbour; its nearest other-class neighbour), draw
    class-balanced batches of anchors and minimise the triple-header hinge
    loss (LMLE Eq. 2) on the unit-norm embeddings. ``loss="triplet"`` keeps
    the class-level term only: the triplet-loss baseline. Pair it with
    ``KNearestClusterClassifier(rule="lmle")`` for LMLE-kNN (Eq. 3).

    Parameters
    ----------
    g1 : float or "auto", default="auto"
        Margin between a cluster and the nearest other cluster of the same
        class, on squared Euclidean distances. Bound ``g1_max_ = 2 sin(pi
        l / L)`` (LMLE Sec. 3.2 with s = 1); ``"auto"`` uses half of it; a
        value above it is clipped with a ``UserWarning``.
    g2 : float or "auto", default="auto"
        Margin between the nearest other cluster and the farthest member of
        the class; per class bounded by ``g2_max_[c] = 2 sin(pi max(L_c -
        l, 0) / L)``; ``"auto"`` uses half of each bound.
    g3 : float or "auto", default="auto"
        Margin between the class and the nearest other class (also the
        triplet margin); bound ``g3_max_ = 2 sin(pi / C)``.
    loss : {"quintuplet", "triplet"}, default="quintuplet"
        The LMLE loss (Eq. 2), or only its class-level term on (anchor,
        farthest same-class, nearest other-class) triplets.
    embedding_dim : int, default=64
        Width d of the embedding.
    backbone : str, torch.nn.Module or callable, default="mlp"
        As in :class:`CLMLEEmbedder`: ``"mlp"``, ``"cnn1d"``, ``"cnn2d"``,
        a module (deep-copied) or a factory.
    backbone_kwargs : dict, default=None
        Keyword arguments of the registered backbone.
    cluster_size : int or "auto", default="auto"
        Cluster size l, as in :class:`CLMLEEmbedder`.
    batch_size : int, default=240
        Rows forwarded per step: ``batch_size // 5`` quintuplets (``// 3``
        triplets), the same per class up to one. 240 matches CLMLE's
        default batch of 12 clusters x 20 rows, so a step costs the same.
    subset_fraction : float, default=0.5
        Share of every class's rows (at least one) the quintuplet table is
        computed on each round (paper: a random 50%). Its cost is
        O((subset_fraction n)^2 d) per round.
    cost_sensitive : bool, default=True
        Weight each quintuplet by the inverse frequency of its anchor's
        class in the batch (identical class weights, as the paper asks).
    ce_weight : float, default=1.0
        Weight of a cross-entropy term on the anchors (not in the paper;
        see :class:`CLMLEEmbedder`). 0 is the paper's loss alone, which on
        this engine collapsed the embedding to a point on MNIST-1D (the
        quintuplet hinges are constant there, so their gradient vanishes;
        ``benchmarks/results/convergence.md``); 1 by measurement, as for
        CLMLE.
    momentum : float, default=0.9
        SGD momentum.
    weight_decay : float, default=5e-4
        Weight decay (the paper's lambda).
{training}
    max_grad_norm : float or None, default=2.0
        Gradient-norm clipping, as in :class:`CLMLEEmbedder`.
    inference_batch_size : int, default=4096
        Rows per forward pass in ``transform`` and between rounds.
    device : str or torch.device, default="auto"
        ``"auto"`` picks CUDA when available at fit time, else CPU.
    mixed_precision : {None, "bf16", "fp16"}, default=None
        Train the forward pass and the loss under ``torch.autocast`` in
        bfloat16 (``"bf16"``: a GPU, or a CPU with bfloat16 support) or
        float16 (``"fp16"``: CUDA only, with a gradient scaler); None trains
        in float32. Weights, ``transform``/``predict`` and the clustering
        stay float32. Measured in ``benchmarks/results/gpu.md``.
    n_threads : int, default=None
        Torch and BLAS threads during fit/transform (restored afterwards).
    deterministic : bool, default=False
        Ask torch for deterministic algorithms during fit (best effort on GPU).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the clustering, the table subset and the batches.
    verbose : int, default=0
        0 is silent; 1 logs one line per epoch on the ``sklearn_clmle`` logger.

    Attributes
    ----------
    classes_, n_features_in_, feature_names_in_, module_, device_, \
cluster_size_, cluster_centers_, cluster_classes_, cluster_labels_, \
n_clusters_per_class_, history_, best_epoch_, n_iter_, n_steps_, fit_stats_
        As in :class:`CLMLEEmbedder`.
    g1_max_ : float
        Bound ``2 sin(pi l / L)`` of ``g1``.
    g2_max_ : ndarray of shape (n_classes,)
        Per-class bounds ``2 sin(pi max(L_c - l, 0) / L)`` of ``g2``.
    g3_max_ : float
        Bound ``2 sin(pi / C)`` of ``g3``.
    g1_, g3_ : float
        Margins used in training.
    g2_ : ndarray of shape (n_classes,)
        Per-class ``g2`` used in training.

    References
    ----------
    C. Huang, Y. Li, C. C. Loy, X. Tang. "Learning Deep Representation for
    Imbalanced Classification", CVPR 2016 (LMLE).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import LMLEEmbedder
    >>> X, y = make_classification(200, n_features=8, weights=[0.8], random_state=0)
    >>> emb = LMLEEmbedder(max_epochs=5, warmup_epochs=2, random_state=0).fit(X, y)
    >>> emb.transform(X).shape
    (200, 64)
    """

    _parameter_constraints = {
        **EmbedderBase._parameter_constraints,
        "g1": _MARGIN,
        "g2": _MARGIN,
        "g3": _MARGIN,
        "loss": [StrOptions({"quintuplet", "triplet"})],
        "batch_size": [Interval(Integral, 5, None, closed="left")],
        "subset_fraction": [Interval(Real, 0, 1, closed="right")],
    }

    def __init__(
        self,
        g1="auto",
        g2="auto",
        g3="auto",
        *,
        loss="quintuplet",
        embedding_dim=64,
        backbone="mlp",
        backbone_kwargs=None,
        cluster_size="auto",
        batch_size=240,
        subset_fraction=0.5,
        n_rounds=5,
        max_epochs=150,
        iterations_per_round=None,
        init="warmup",
        warmup_epochs=30,
        warmup_iterations=None,
        ce_loss="logit_adjusted",
        ce_input="embedding",
        cost_sensitive=True,
        ce_weight=1.0,
        optimizer="sgd",
        learning_rate="auto",
        lr_schedule="constant",
        momentum=0.9,
        weight_decay=5e-4,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        augment="auto",
        max_grad_norm=2.0,
        inference_batch_size=4096,
        device="auto",
        mixed_precision=None,
        n_threads=None,
        deterministic=False,
        random_state=None,
        verbose=0,
    ):
        self.g1 = g1
        self.g2 = g2
        self.g3 = g3
        self.loss = loss
        self.embedding_dim = embedding_dim
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.cluster_size = cluster_size
        self.batch_size = batch_size
        self.subset_fraction = subset_fraction
        self.n_rounds = n_rounds
        self.max_epochs = max_epochs
        self.iterations_per_round = iterations_per_round
        self.init = init
        self.warmup_epochs = warmup_epochs
        self.warmup_iterations = warmup_iterations
        self.ce_loss = ce_loss
        self.ce_input = ce_input
        self.cost_sensitive = cost_sensitive
        self.ce_weight = ce_weight
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.augment = augment
        self.max_grad_norm = max_grad_norm
        self.inference_batch_size = inference_batch_size
        self.device = device
        self.mixed_precision = mixed_precision
        self.n_threads = n_threads
        self.deterministic = deterministic
        self.random_state = random_state
        self.verbose = verbose

    __doc__ = __doc__.replace("{training}", SHARED_TRAINING_DOC)

    def _resolve_margins(self, counts, classes, cluster_size):
        bounds, effective = resolve_lmle_margins(
            self.g1, self.g2, self.g3, counts, classes, cluster_size
        )
        names = ("g1", "g2", "g3")
        return {
            **{f"{n}_max_": b for n, b in zip(names, bounds)},
            **{f"{n}_": e for n, e in zip(names, effective)},
        }

    def _objective_config(self, margins, cluster_size):
        return {
            "g1": margins["g1_"],
            "g2": margins["g2_"],
            "g3": margins["g3_"],
            "loss": self.loss,
            "batch_size": int(self.batch_size),
            "subset_fraction": float(self.subset_fraction),
        }

    def _make_objective(self, cfg, device):
        return QuintupletObjective(cfg, device)
