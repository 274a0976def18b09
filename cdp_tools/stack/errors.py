"""The one exception type of the stack: its message is meant for the person at the terminal."""


class StackError(Exception):
    """A service could not be started, stopped or inspected; ``str()`` says what to do."""
