"""Exception types that separate a user's mistake from a bug.

`InputError` is a `ValueError`: anything that is wrong with what the user gave us (a file, a
model, an option). The CLI turns it into a one-line message and exit code 2.
"""


class InputError(ValueError):
    """Bad input from the user: the message names the file or option and the problem."""


class ConstantImage(InputError):
    """Every voxel has the same value: no scan, though a valid (empty) mask."""


class RegistrationFailed(InputError):
    """The scan could not be aligned with the atlas: it may not be a brain MRI."""


class Cancelled(Exception):
    """The user cancelled a run; nothing was left half done."""
