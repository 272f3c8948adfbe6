"""Train one CLMLE model with several processes: torch.distributed (DDP).

Launch it with ``torchrun``, which starts the processes (ranks) and tells
each its rank; on one machine, one process per GPU (or a few on a CPU)::

    torchrun --nproc_per_node=2 examples/distributed/train_ddp.py

On several machines, the same command on each, with ``--nnodes``, the
machine's ``--node_rank`` and the address of machine 0::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --master_addr=10.0.0.1 --master_port=29500 examples/distributed/train_ddp.py

Every rank runs this whole script. It initialises the process group, loads
the same full data and calls the same ``fit``: sklearn_clmle sees the
process group and trains one model with ``DistributedDataParallel``, each
rank drawing its own batches. Every rank ends with the same fitted model;
rank 0 evaluates and saves it. The saved file loads anywhere, on a machine
without a GPU too, with ``sklearn_clmle.load``.

Not a gallery example (sphinx-gallery does not run it): it needs torchrun.
"""

import argparse
import os
from datetime import timedelta

import torch
import torch.distributed as dist
from sklearn.metrics import balanced_accuracy_score

from sklearn_clmle import CLMLEEmbedder, KNearestClusterClassifier, save
from sklearn_clmle.datasets import load_long_tailed_digits


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-epochs", type=int, default=150)
    parser.add_argument("--warmup-epochs", type=int, default=30)
    parser.add_argument("--out", default="clmle_ddp.zip", help="where rank 0 saves")
    args = parser.parse_args()

    # One GPU per rank (NCCL), or the CPU (gloo) with its cores shared out.
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        backend, device, n_threads = "nccl", f"cuda:{local_rank}", None
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
        per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        backend, device, n_threads = "gloo", "cpu", max(1, cores // per_machine)
    if not dist.is_initialized():
        # A rank that waits longer than this for the others raises instead of
        # hanging: make it longer than the slowest re-clustering, which rank 0
        # does while the others wait. torchrun ends the job when a rank fails.
        dist.init_process_group(backend, timeout=timedelta(minutes=10))
    rank = dist.get_rank()

    # Every rank loads the same full data (as with torch's DistributedSampler).
    X_train, X_test, y_train, y_test = load_long_tailed_digits(10, random_state=0)
    X_train, X_test = X_train / 16.0, X_test / 16.0

    # The same estimator on every rank. max_epochs counts passes over the data
    # by all ranks together: each rank runs 1 / world_size of the steps.
    embedder = CLMLEEmbedder(max_epochs=args.max_epochs, warmup_epochs=args.warmup_epochs,
                             device=device, n_threads=n_threads, random_state=0,
                             verbose=1)  # only rank 0 logs
    embedder.fit(X_train, y_train)

    if rank == 0:
        knc = KNearestClusterClassifier(n_neighbors=1, random_state=0)
        knc.fit(embedder.transform(X_train), y_train)
        score = balanced_accuracy_score(y_test, knc.predict(embedder.transform(X_test)))
        print(f"{dist.get_world_size()} ranks, {embedder.n_steps_} steps each: "
              f"test balanced accuracy {score:.3f}")
        save(embedder, args.out)  # every rank holds the same model; one saves it
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
