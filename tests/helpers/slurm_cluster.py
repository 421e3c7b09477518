"""A single-node SLURM cluster on localhost for tests: munged + slurmctld + slurmd from Debian's
slurm-wlm, state in a temp dir, no accounting. Job status then comes from `squeue`, so finished
jobs must stay listed for a while: MinJobAge is raised to 10 minutes.

`start_cluster(tmp)` returns the environment (SLURM_CONF) to run sbatch/squeue/snakemake with, or
raises ClusterUnavailable with the reason; `stop_cluster` stops every daemon it started."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    pass


@dataclass
class Cluster:
    root: Path
    env: dict
    procs: list = field(default_factory=list)
    system_conf: Path | None = None  # /etc/slurm/slurm.conf we placed (removed on stop)


# The executor plugin drops SLURM_* variables (SLURM_CONF too) before it runs job steps, so srun
# inside a job reads the system location, as on a real cluster. The fixture puts its config there
# only when no system config exists, and removes it again.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(root: Path, host: str, cpus: int, mem_mb: int, ctld_port: int, slurmd_port: int) -> str:
    return f"""
ClusterName=spintest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName={host} CPUs={cpus} RealMemory={mem_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def start_cluster(root: Path, cpus: int = 2, mem_mb: int = 8000, timeout: float = 60) -> Cluster:
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo"):
        if shutil.which(tool) is None:
            raise ClusterUnavailable(f"{tool} not found (Debian packages slurm-wlm and munge)")
    if os.geteuid() != 0:
        raise ClusterUnavailable("the test cluster runs its daemons as root")
    root.mkdir(parents=True, exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    (root / "spool").mkdir(exist_ok=True)
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(slurm_conf(root, host, cpus, mem_mb, _free_port(), _free_port()))
    env = dict(os.environ, SLURM_CONF=str(conf))
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        raise ClusterUnavailable(f"{SYSTEM_CONF} exists (a real SLURM installation): not replacing it")
    cluster = Cluster(root, env)

    # munge: our own socket and key, so a system munged (if any) is left alone.
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    sock = root / "munge.socket"
    munge = subprocess.Popen(
        ["munged", "--foreground", "--force", f"--key-file={key}", f"--socket={sock}",
         f"--pid-file={root}/munged.pid", f"--log-file={root}/munged.log", f"--seed-file={root}/munge.seed"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    cluster.procs.append(munge)
    # slurm finds munge's socket through the auth plugin option.
    conf.write_text(conf.read_text() + f"AuthInfo=socket={sock}\n")
    SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
    SYSTEM_CONF.symlink_to(conf)
    cluster.system_conf = SYSTEM_CONF
    for name in ("slurmctld", "slurmd"):
        proc = subprocess.Popen(
            [name, "-D", "-f", str(conf)], env=env, stdout=open(root / f"{name}.out", "w"), stderr=subprocess.STDOUT
        )
        cluster.procs.append(proc)
    end = time.time() + timeout
    while time.time() < end:
        for p in cluster.procs:
            if p.poll() is not None:
                stop_cluster(cluster)
                logs = "".join(
                    (root / f).read_text()[-1500:] for f in ("slurmctld.out", "slurmd.out") if (root / f).exists()
                )
                raise ClusterUnavailable(f"{p.args[0]} exited with {p.returncode}: {logs}")
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip() in ("idle", "mixed"):
            return cluster
        time.sleep(0.5)
    stop_cluster(cluster)
    raise ClusterUnavailable(
        f"node not idle after {timeout}s: {(root / 'slurmctld.log').read_text()[-1500:] if (root / 'slurmctld.log').exists() else ''}"
    )


def stop_cluster(cluster: Cluster) -> None:
    subprocess.run(["scancel", "--user", "root"], env=cluster.env, capture_output=True)
    for p in reversed(cluster.procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in reversed(cluster.procs):
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if cluster.system_conf is not None and cluster.system_conf.is_symlink():
        cluster.system_conf.unlink()
