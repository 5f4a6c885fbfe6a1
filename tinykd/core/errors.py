"""The one exception type the CLI turns into a one-line error."""


class TinykdError(Exception):
    """A problem with the user's input: a file, a name or an option. Its message says what to do."""
