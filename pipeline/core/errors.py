"""The errors the command line turns into one line and an exit code (see README, "Exit codes")."""


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says why and where to look."""


class Refused(RunError):
    """Refused before any work (exit 2): an `--output` that cannot hold this run (a file, another run, not
    writable), an engine whose program is missing (`sbatch`)."""


class Interrupted(RunError):
    """Ctrl-C during a run: the message says what was done; rerunning the same command resumes."""
