# What the workflow does when it ends: drop the finished training jobs' checkpoints and list the
# results (onsuccess), or say why it stopped (onerror). Included by the Snakefile last.

import os
import shutil
import signal

from spin_core.train.resume import remove_checkpoints  # noqa: E402


def release_finished_checkpoints():
    """Drop the checkpoints of this run's training jobs, and the stashed steps of its several-stage jobs,
    once the run has succeeded: only now are their models accepted outputs. Both outlive the job because
    Snakemake can still reject a finished job's outputs (SIGTERM to snakemake while it ran): the rerun
    then restores the finished steps and resumes at the last training step instead of starting again."""
    for job in workflow.dag.jobs:
        # A several-stage job's finished steps (spin_core/cli/stash.py): accepted now, so not needed.
        if job.params.get("stash"):
            shutil.rmtree(job.params.stash, ignore_errors=True)
        checkpoints = job.params.get("checkpoints") if job.rule.name in TRAINING_RULES else None
        if checkpoints and not CFG.spin.keep_checkpoints:
            for path in [checkpoints] if isinstance(checkpoints, str) else checkpoints:
                remove_checkpoints(path)


def stop_on_harness_problems():
    """onstart: the evaluation's lm-eval is not in its jobs' environment (HARNESS_PROBLEMS)."""
    if HARNESS_PROBLEMS:
        raise WorkflowError("\n".join(HARNESS_PROBLEMS))


INTERRUPTED = []


def _from_the_terminal() -> bool:
    """Whether a SIGINT here is a terminal's Ctrl-C, which reaches every job too: this process is in
    the foreground process group of its controlling terminal."""
    try:
        fd = os.open(os.ctermid(), os.O_RDONLY)
    except OSError:  # no controlling terminal (nohup, a scheduler, a test)
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _stop_jobs(signum) -> None:
    """Send the jobs (every process this one started) the SIGINT that reached this process alone."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.send_signal(signum)
        except psutil.Error:
            pass


def _record_interrupt(signum, frame):
    """Python's own Ctrl-C behaviour (KeyboardInterrupt), noting that the stop was asked for. A SIGINT
    sent to the snakemake process alone (`kill -INT`) is passed on to the running jobs, so it stops
    them as Ctrl-C in a terminal does; Snakemake itself would leave them running."""
    INTERRUPTED.append(signum)
    if len(INTERRUPTED) == 1 and not _from_the_terminal():
        _stop_jobs(signum)
    raise KeyboardInterrupt


try:
    signal.signal(signal.SIGINT, _record_interrupt)
except ValueError:  # not the main thread (Snakemake driven from another program): keep its handler
    pass


def report_stop():
    """Snakemake ends every unfinished run with "At least one job did not complete successfully", also
    when none failed: on SIGTERM it lets the running jobs finish, keeps their outputs and starts no
    new job; on Ctrl-C it stops them. Say which of the two happened, with the logs of failed jobs."""
    failed = sorted(getattr(workflow.scheduler, "failed", ()), key=lambda job: str(job))
    if failed:
        print(f"\nspin-repro: {len(failed)} job(s) failed; their logs:", file=sys.stderr)
        for job in failed:
            print(f"  {job.rule.name} {dict(job.wildcards)} -> {' '.join(job.log) or '(no log)'}", file=sys.stderr)
        return  # Snakemake's own error follows, and is true
    # A stop on request: SIGTERM is recorded by Snakemake's scheduler (no public API), Ctrl-C by
    # _record_interrupt. Any other failure without a failed job (an executor error, say) keeps
    # Snakemake's own message.
    if not (getattr(workflow.scheduler, "_user_kill", None) or INTERRUPTED):
        return
    print(
        "\nspin-repro stopped on request (SIGTERM or Ctrl-C) before finishing; no job failed. Jobs that"
        " Snakemake saw finish are kept; jobs stopped or still running at the stop are redone, training"
        " jobs from their checkpoints: rerun the same command to go on.",
        file=sys.stderr,
    )
    sys.exit(1)  # skip Snakemake's "At least one job did not complete successfully", which is untrue here


def print_results_summary():
    print("\nspin-repro finished. Results:")
    for target in FINAL_TARGETS:
        print(f"  {target}")
    print(f"  models: {', '.join(names.model_dir(m) for m in MODELS)}")
