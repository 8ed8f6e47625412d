"""The one exception type the command line turns into a one-line error and exit code 2."""


class UserError(Exception):
    """Bad input from the user: a path, a file, an option. The message is one line that
    says what is wrong and how to fix it; the CLI prints it without a traceback."""
