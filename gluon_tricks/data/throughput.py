"""How many training images per second a host's CPUs can decode and augment, next to how
many its GPUs consume: the number that decides whether a GPU run is input-bound.

GPU consumption, ResNet-50 training with FP16 (mixed precision), images/s per GPU, from
NVIDIA's MXNet ResNet-50 v1.5 results (DeepLearningExamples ``MxNet/Classification/RN50v1.5``
README, "Training performance", mxnet-20.12-py3 container, data + compute, with DALI):
DGX A100 80GB 2,180 on 1 GPU (16,925 on 8), DGX-1 V100 16GB 1,376 on 1 GPU (10,723 on 8).
The authors' GluonCV runs on 8 V100 with FP16 and 60 data workers logged about 5,000 samples/s
in all (dmlc/web-data ``gluoncv/logs/classification/imagenet/resnet50_v1d.log``).

CPU supply: ``ImageRecordIter`` decodes with at most max(cores / 2 - 1, 1) threads per
process, whatever it is asked for (docs/notes.md §4), and each thread delivers about what one
thread measured by ``tools/bench_data.py`` delivers. The estimate assumes the threads scale
linearly up to that cap (or up to the cores, with one process per GPU), which is an upper
bound: a bigger host's cores are not faster, and the training loop needs CPU too.
"""
import time

GPU_IMAGES_PER_SEC = {"A100": 2180, "V100": 1376}  # ResNet-50 FP16, per GPU (see above)
AUTHORS_8_V100_IMAGES_PER_SEC = 5000


def decoding_threads(cores, processes=1):
    """Decoding threads ImageRecordIter runs on a host of ``cores`` logical CPUs, summed over
    ``processes`` processes that split the cores between them (one per GPU under Horovod)."""
    cap = max(cores // 2 - 1, 1)
    per_process = min(cap, max(1, cores // processes))
    return min(cores, processes * per_process)


def feed_estimate(per_thread_img_s, cores, processes=1):
    """Training images/s the host's CPUs can feed: ``per_thread_img_s`` (one decoding thread,
    images/s) times :func:`decoding_threads`."""
    return per_thread_img_s * decoding_threads(cores, processes)


def gpu_demand(num_gpus, gpu="A100"):
    """Training images/s ``num_gpus`` GPUs of kind ``gpu`` (a key of
    :data:`GPU_IMAGES_PER_SEC`) consume on ResNet-50 with FP16."""
    if gpu not in GPU_IMAGES_PER_SEC:
        raise ValueError(f"gpu {gpu!r}: expected one of {', '.join(GPU_IMAGES_PER_SEC)}")
    return num_gpus * GPU_IMAGES_PER_SEC[gpu]


def verdict(per_thread_img_s, cores, num_gpus, gpu="A100", processes=1):
    """One sentence: what this host's CPUs can feed against what its GPUs want."""
    feed = feed_estimate(per_thread_img_s, cores, processes)
    want = gpu_demand(num_gpus, gpu)
    threads = decoding_threads(cores, processes)
    end = ("the input pipeline, not the GPUs, will set the speed; consider data.backend=dali"
           if feed < want else "the CPUs keep up")
    return (f"this host's CPUs can feed about {feed:,.0f} img/s ({threads} decoding threads "
            f"on {cores} cores at {per_thread_img_s:.0f} img/s each); your GPUs want about "
            f"{want:,.0f} ({num_gpus} x {gpu}, ResNet-50 FP16): {end}")


def per_thread_rate(rec_path, input_size=224, batch_size=32, num_batches=4):
    """Training images/s of our RecordIO loader on one decoding thread over the first
    ``num_batches`` batches of ``rec_path`` (an ImageNet-like set: ``imagenet_like``), after
    one batch of warm-up; construction excluded."""
    from .config import DataConfig
    from .loaders import make_loader

    cfg = DataConfig(input_size=input_size, num_workers=1)
    batches = make_loader(cfg, rec_path, batch_size, train=True).epoch(0)
    next(batches)[0].wait_to_read()
    tic, images = time.perf_counter(), 0
    for _, (data, _) in zip(range(num_batches), batches):
        data.wait_to_read()
        images += data.shape[0]
    return images / (time.perf_counter() - tic)
