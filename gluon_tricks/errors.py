"""Errors that are the user's to fix (a flag, a file, a record): the command lines print
their one-line message and exit 2; everything else is a bug and keeps its traceback."""


class UserError(ValueError):
    """Something the user handed us is wrong; the message is one line naming it."""


class RunError(UserError):
    """A training run cannot start or go on as asked (flags, devices, run folder, teacher)."""
