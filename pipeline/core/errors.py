"""The errors the command line turns into one line and an exit code (see README, "Exit codes")."""


class RunError(RuntimeError):
    """A run that cannot start or did not finish; the message says why and where to look."""
