"""How many CPUs this process may use: the basis of every thread count of the package
(OpenMP, decoding threads, DALI, packing).

``os.cpu_count()`` is the host's count. A SLURM or Kubernetes slot gives a job fewer: an
affinity mask (``os.sched_getaffinity``; SLURM's cpusets, ``taskset``) and/or a CFS quota in
the cgroup (``cpu.max`` in cgroup v2, ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` in v1;
Kubernetes' CPU limit). Threads sized by the host's count oversubscribe such a slot: 256
OpenMP and decoding threads time-sliced over 16 CPUs.
"""
import os

CGROUP_V2 = "/sys/fs/cgroup/cpu.max"
CGROUP_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _read(path):
    try:
        with open(path) as f:
            return f.read().split()
    except OSError:
        return None


def cgroup_quota(v2=None, v1=None):
    """The CPUs the cgroup's CFS quota allows (a float, e.g. 2.5), or None without a quota.
    ``v2``: the path of cgroup v2's ``cpu.max`` ("max 100000" or "250000 100000");
    ``v1``: the paths of v1's quota (-1: none) and period; None: the system's."""
    v2, v1 = v2 or CGROUP_V2, v1 or CGROUP_V1
    fields = _read(v2)
    if fields and len(fields) == 2 and fields[0] != "max":
        return int(fields[0]) / int(fields[1])
    quota, period = _read(v1[0]), _read(v1[1])
    if quota and period and int(quota[0]) > 0:
        return int(quota[0]) / int(period[0])
    return None


def usable_cpus(v2=None, v1=None):
    """The CPUs this process may run on (int >= 1): the affinity mask, capped by the
    cgroup's quota (rounded down, at least 1); ``v2``, ``v1`` as for cgroup_quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # no affinity on this platform
        cpus = os.cpu_count() or 1
    quota = cgroup_quota(v2, v1)
    if quota is not None:
        cpus = min(cpus, max(1, int(quota)))
    return max(1, cpus)


def cpus_per_rank(ranks_per_host=None):
    """usable_cpus() shared among the ranks of this host (at least 1 each). ``ranks_per_host``
    None: Horovod's HOROVOD_LOCAL_SIZE (or Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE), else 1.
    Every rank of a host sees the same mask when the launcher gives them one slot; a
    scheduler that pins each rank to its own CPUs gives each a smaller mask, which this
    divides again, so pass ranks_per_host=1 there."""
    if ranks_per_host is None:
        ranks_per_host = int(os.environ.get("HOROVOD_LOCAL_SIZE")
                             or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE") or 1)
    return max(1, usable_cpus() // max(1, ranks_per_host))
