"""Where the phases run: datatrove's local, Slurm and Ray executors, chosen by `run.executor`.

    local  one process per task on this machine; a task process that dies stops the run (exit 1) and
           rerunning the same command redoes only the tasks without a completion marker
    ray    each phase's tasks on a running Ray cluster (`run.ray.address`); Ray resubmits a task whose
           worker died; phases run one after the other, then this process writes the shards
    slurm  each phase a job array depending on the one before (`sbatch --dependency=afterok`), then one
           job running `ccpipe finalize DIR`: `ccpipe run` submits and returns, `ccpipe status DIR` follows

Every engine runs the same datatrove tasks on the same ranks with the same completion markers
(`DIR/logs/{phase}/completions/{rank}`), so the output does not depend on the engine. Nothing here
schedules anything: the engines do.
"""
