"""Thread counts from the CPUs a job was given: the affinity mask and the cgroup's CPU quota
(v2 ``cpu.max``, v1 ``cfs_quota_us``/``cfs_period_us``), shared among the host's ranks."""
import os

from gluon_tricks import cpus
from gluon_tricks.data import DataConfig


def cgroup_files(tmp_path, v2=None, v1=None):
    """Stand-in cgroup files: ``v2`` the text of cpu.max; ``v1`` (quota, period)."""
    v2_path = tmp_path / "cpu.max"
    if v2 is not None:
        v2_path.write_text(v2 + "\n")
    v1_paths = (tmp_path / "cpu.cfs_quota_us", tmp_path / "cpu.cfs_period_us")
    if v1 is not None:
        for path, value in zip(v1_paths, v1):
            path.write_text(f"{value}\n")
    return str(v2_path), tuple(map(str, v1_paths))


def test_a_cgroup_quota_caps_the_affinity_mask(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    v2, v1 = cgroup_files(tmp_path, v2="1650000 100000")  # a 16.5-CPU Kubernetes limit
    assert cpus.cgroup_quota(v2, v1) == 16.5
    assert cpus.usable_cpus(v2, v1) == 16
    v2, v1 = cgroup_files(tmp_path / "..", v2="max 100000")  # no limit
    assert cpus.cgroup_quota(v2, v1) is None and cpus.usable_cpus(v2, v1) == 64


def test_cgroup_v1_quota_and_no_quota(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(32)))
    v2, v1 = cgroup_files(tmp_path, v1=(400000, 100000))
    assert cpus.usable_cpus(v2, v1) == 4
    v2, v1 = cgroup_files(tmp_path, v1=(-1, 100000))
    assert cpus.usable_cpus(v2, v1) == 32
    v2, v1 = cgroup_files(tmp_path, v1=(50000, 100000))  # half a CPU: still one thread
    assert cpus.usable_cpus(v2, v1) == 1


def test_the_affinity_mask_not_the_host_count(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 256)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5, 7, 11})  # a SLURM slot
    monkeypatch.setattr(cpus, "CGROUP_V2", str(tmp_path / "none"))
    monkeypatch.setattr(cpus, "CGROUP_V1", (str(tmp_path / "q"), str(tmp_path / "p")))
    assert cpus.usable_cpus() == 4
    monkeypatch.setenv("HOROVOD_LOCAL_SIZE", "2")
    assert cpus.cpus_per_rank() == 2 and cpus.cpus_per_rank(8) == 1
    # the decoding threads of a loader follow it
    assert DataConfig().workers(2) == 2 and DataConfig(num_workers=3).workers(2) == 3
