"""CLMLEEmbedder: the scikit-learn transformer that learns the CLMLE embedding."""

from numbers import Integral, Real

from sklearn.utils._param_validation import Interval, StrOptions

from sklearn_clmle._embedder_base import SHARED_TRAINING_DOC, EmbedderBase
from sklearn_clmle._margins import resolve_margins
from sklearn_clmle._objectives import ClusterMarginObjective


class CLMLEEmbedder(EmbedderBase):
    """Cluster-based Large Margin Local Embedding (CLMLE) as a transformer.

    Trains a torch backbone so that every class keeps its own equal-size,
    well-separated clusters on the unit sphere (Huang et al., CLMLE, Sec.
    3.2-3.3): cluster each class by equal-size spherical k-means, draw
    batches of a hard query cluster and its nearest clusters, minimise the
    cluster-margin loss (Eq. 9), and re-cluster on the new embedding between
    rounds. ``transform`` returns the unit-norm embedding.

    Parameters
    ----------
    a1 : float or "auto", default="auto"
        Margin between clusters of different classes. Its bound is
        ``a1_max_ = 1 - cos(2 pi / C)``; ``"auto"`` uses half of it. A value
        above the bound is clipped to it with a ``UserWarning``.
    a2 : float or "auto", default="auto"
        Margin between clusters of the same class, per class bounded by
        ``a2_max_[c] = 1 - cos(2 pi L_c / L)``; ``"auto"`` uses half of
        each class's bound, but at most half of ``a1_``, so that the
        between-class margin is the larger one, as the paper asks (Sec.
        3.2). A value above a class's bound is clipped to that bound for
        that class, with a ``UserWarning``.
    embedding_dim : int, default=64
        Width d of the embedding.
    backbone : str, torch.nn.Module or callable, default="mlp"
        A registered name, a module (deep-copied at fit) or a factory
        ``(n_features_in, embedding_dim, **backbone_kwargs) -> Module``. The
        estimator L2-normalises its output. Registered: ``"mlp"`` (vectors,
        :class:`~sklearn_clmle.backbones.MLP`), ``"cnn1d"`` (1-D signals as
        flat rows, :class:`~sklearn_clmle.backbones.CNN1D`) and ``"cnn2d"``
        (images as flat rows, :class:`~sklearn_clmle.backbones.CNN2D`).
    backbone_kwargs : dict, default=None
        Keyword arguments of the registered backbone, e.g.
        ``{"hidden_layer_sizes": (256, 256)}`` for ``"mlp"`` or
        ``{"image_shape": (28, 28)}`` for ``"cnn2d"``.
    cluster_size : int or "auto", default="auto"
        Cluster size l; class c gets ``max(1, L_c // l)`` clusters of sizes
        differing by at most one. ``"auto"`` is ``clip(L // (4 C), 20,
        200)``: about four clusters for an average class, never fewer members
        than the paper's ``s = 20`` sampled per cluster (on long-tailed
        digits l = 5 and l = 50 did worse, ``benchmarks/results/defaults.md``)
        and never more than the paper's l = 200.
    clusters_per_batch : int, default=12
        M, clusters in one batch (paper: 12).
    samples_per_cluster : int or "auto", default="auto"
        s, examples drawn per batch cluster (paper: 20); ``"auto"`` is
        ``min(20, cluster_size)``. Smaller clusters are sampled with
        replacement.
    query_sampling : {"hardest", "uniform"}, default="hardest"
        Query cluster of the chosen class: the one with the highest cached
        loss (paper), or a random one (ablation).
    cost_sensitive : bool, default=True
        Weight each sample by the inverse frequency of its class in the batch.
    scale : float, default=10.0
        Inverse temperature of the log-sum-exp in Eq. 9. 1 is the paper;
        10 measured better on long-tailed digits and MNIST-1D together with
        ``ce_weight=1`` (``benchmarks/results/defaults.md``).
    ce_weight : float, default=1.0
        Weight of a cross-entropy term added to Eq. 9 during the CLMLE
        rounds, computed by the warm-up's linear head (kept and trained on)
        on the same batch. Not in the paper: ``ce_weight=0`` is the paper's
        loss alone. The default was chosen by measurement: with the
        paper's loss alone 1-NN balanced accuracy on the embedding was lower
        on long-tailed digits and much lower on MNIST-1D
        (``benchmarks/results/defaults.md`` and ``defaults_mnist1d.md``).
    multilabel_batches : {"shared", "joint", "alternate"}, default="shared"
        How a step is drawn when ``y`` is a multi-label indicator matrix
        (the paper leaves it open): one label's cluster batch per step, the
        labels in turn, scored by every label on its own clusters with
        cost-sensitive weights per label (``"shared"``, how the paper's
        ablation reads); one cluster batch per label, forwarded together
        and their Eq. 9 losses summed (``"joint"``); or one label's cluster
        batch per step, for that label's loss only (``"alternate"``).
        "shared" by measurement: the same mean balanced accuracy as the
        others within noise, at about a third of their fit time
        (``benchmarks/results/multilabel.md``). Ignored for single-label
        ``y``.
    momentum : float, default=0.9
        SGD momentum (paper).
    weight_decay : float, default=5e-4
        Weight decay (paper), of SGD or AdamW.
{training}
    max_grad_norm : float or None, default=2.0
        Clip the total L2 norm of the gradients to this value before each
        step (``torch.nn.utils.clip_grad_norm_``); None does not clip (the
        papers). Steps whose norm is below it are unchanged. 2 by
        measurement: without clipping, CLMLE at the default rate diverged
        or collapsed on MNIST-1D (``benchmarks/results/engine.md``).
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
        Torch CPU threads during fit/transform (restored afterwards); None
        leaves torch's setting alone. Use 1 when processes run in parallel.
    deterministic : bool, default=False
        Ask torch for deterministic algorithms during fit (best effort on
        GPU; CPU runs are reproducible from ``random_state`` regardless).
    random_state : int, RandomState instance or None, default=None
        Seeds the weights, the clustering and the batch sampling.
    verbose : int, default=0
        0 is silent; 1 logs one line per epoch (epoch, loss, validation
        score, learning rate, seconds) on the ``sklearn_clmle`` logger, with
        a progress bar when standard error is a terminal and ``tqdm`` is
        installed.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; after a multi-label fit, the label indices
        ``arange(n_labels)`` (scikit-learn's convention for indicator
        targets).
    n_outputs_ : int
        1, or the number of labels of a multi-label ``y``. A multi-label fit
        (CLMLE Sec. 5) trains one shared backbone with one linear embedding
        head per label (``module_`` is a ``MultiHeadNet``), one clustering
        and Eq. 9 per label; its ``a2_max_``, ``a2_`` and
        ``n_clusters_per_class_`` have one row per label,
        ``cluster_centers_`` and ``cluster_classes_`` are lists with one
        entry per label and ``cluster_labels_`` has one column per label.
    label_names_ : ndarray of str
        Names of the labels of a multi-label fit (the columns of a DataFrame
        ``y``, else ``y0, y1, ...``); absent otherwise.
    n_features_in_ : int
        Number of input features.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Input feature names, when X has string column names.
    module_ : torch.nn.Module
        The trained backbone (its output is normalised by ``transform``).
    device_ : torch.device
        Device used for training.
    a1_max_ : float
        Bound ``1 - cos(2 pi / C)`` of ``a1``.
    a2_max_ : ndarray of shape (n_classes,)
        Per-class bounds ``1 - cos(2 pi L_c / L)`` of ``a2``.
    a1_ : float
        Margin ``a1`` used in training (``"auto"`` resolved, clipped).
    a2_ : ndarray of shape (n_classes,)
        Per-class margin ``a2`` used in training.
    cluster_size_ : int
        Cluster size used.
    cluster_centers_ : ndarray of shape (n_clusters, embedding_dim)
        Unit-norm centroids of the final clustering of the training
        embeddings.
    cluster_classes_ : ndarray of shape (n_clusters,)
        Class label of each cluster.
    cluster_labels_ : ndarray of shape (n_samples,)
        Cluster of every training sample.
    n_clusters_per_class_ : ndarray of shape (n_classes,)
        Clusters of each class.
    history_ : list of dict
        One row per epoch of the warm-up and the main phase: ``phase``
        (``"warmup"`` or ``"train"``), ``epoch`` (from 1, over both phases),
        ``steps``, ``loss`` (mean over the epoch's steps), ``val_score``
        (NaN without a validation part), ``learning_rate`` (at the epoch's
        start), ``grad_norm`` (largest norm before clipping; NaN when
        ``max_grad_norm=None``) and ``seconds``.
    best_epoch_ : int or None
        Epoch whose weights were kept (the best validation score); None
        without a validation part, when the last epoch's weights are kept.
    n_iter_ : int
        Epochs run in the main phase (as ``MLPClassifier.n_iter_``).
    n_steps_ : int
        Optimiser steps run in the main phase.
    fit_stats_ : dict
        ``round_times`` (per clustering: seconds embedding the training
        rows and clustering them), ``final_embed_time``,
        ``final_cluster_time`` and ``final_spread`` (the mean squared
        distance between final embeddings, near 0 if they collapsed).

    References
    ----------
    C. Huang, Y. Li, C. C. Loy, X. Tang. "Deep Imbalanced Learning for Face
    Recognition and Attribute Prediction", IEEE TPAMI 2019 (CLMLE).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn_clmle import CLMLEEmbedder
    >>> X, y = make_classification(200, n_features=8, weights=[0.8], random_state=0)
    >>> emb = CLMLEEmbedder(max_epochs=5, warmup_epochs=2, random_state=0).fit(X, y)
    >>> emb.transform(X).shape
    (200, 64)
    """

    _parameter_constraints = {
        **EmbedderBase._parameter_constraints,
        "a1": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "a2": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "clusters_per_batch": [Interval(Integral, 2, None, closed="left")],
        "samples_per_cluster": [
            Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})
        ],
        "query_sampling": [StrOptions({"hardest", "uniform"})],
        "scale": [Interval(Real, 0, None, closed="neither")],
        "multilabel_batches": [StrOptions({"shared", "joint", "alternate"})],
    }

    def __init__(
        self,
        a1="auto",
        a2="auto",
        *,
        embedding_dim=64,
        backbone="mlp",
        backbone_kwargs=None,
        cluster_size="auto",
        clusters_per_batch=12,
        samples_per_cluster="auto",
        n_rounds=5,
        max_epochs=150,
        iterations_per_round=None,
        init="warmup",
        warmup_epochs=30,
        warmup_iterations=None,
        ce_loss="logit_adjusted",
        ce_input="embedding",
        query_sampling="hardest",
        cost_sensitive=True,
        scale=10.0,
        ce_weight=1.0,
        multilabel_batches="shared",
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
        self.a1 = a1
        self.a2 = a2
        self.embedding_dim = embedding_dim
        self.backbone = backbone
        self.backbone_kwargs = backbone_kwargs
        self.cluster_size = cluster_size
        self.clusters_per_batch = clusters_per_batch
        self.samples_per_cluster = samples_per_cluster
        self.n_rounds = n_rounds
        self.max_epochs = max_epochs
        self.iterations_per_round = iterations_per_round
        self.init = init
        self.warmup_epochs = warmup_epochs
        self.warmup_iterations = warmup_iterations
        self.ce_loss = ce_loss
        self.ce_input = ce_input
        self.query_sampling = query_sampling
        self.cost_sensitive = cost_sensitive
        self.scale = scale
        self.ce_weight = ce_weight
        self.multilabel_batches = multilabel_batches
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

    _multilabel = True

    def _resolve_margins(self, counts, classes, cluster_size):
        a1_max, a2_max, a1_eff, a2_eff = resolve_margins(self.a1, self.a2, counts, classes)
        return {"a1_max_": a1_max, "a2_max_": a2_max, "a1_": a1_eff, "a2_": a2_eff}

    def _objective_config(self, margins, cluster_size):
        s = self.samples_per_cluster
        s = min(20, cluster_size) if s == "auto" else int(s)
        return {
            "a1": margins["a1_"],
            "a2": margins["a2_"],
            "scale": float(self.scale),
            "clusters_per_batch": int(self.clusters_per_batch),
            "samples_per_cluster": s,
            "batch_size": int(self.clusters_per_batch) * s,
            "query_sampling": self.query_sampling,
        }

    def _make_objective(self, cfg, device):
        return ClusterMarginObjective(cfg, device)
