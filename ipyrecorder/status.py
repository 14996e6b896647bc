"""Exit statuses of the ``ipyrecorder`` command, documented in docs/cli.md."""

from enum import IntEnum, unique


@unique
class ExitStatus(IntEnum):
    OK = 0
    ERROR = 1  # an unexpected internal error
    USAGE = 2  # bad arguments, unknown sink or viewer, bad option, invalid query
    NO_FILE = 3  # a named file does not exist or cannot be read or written
    NOT_A_LOG = 4  # not an ipyrecorder log, or a newer format version
    DAMAGED = 5  # `check` found damage (and did not repair all of it)
    LOCKED = 6  # another writer holds the log's lock
    NO_CLUSTER = 7  # cannot connect to the cluster (import-hub, record)
    PORT_IN_USE = 8  # serve: the port is taken, or the address cannot be bound
    INTERRUPTED = 130  # Ctrl-C outside a live view (128 + SIGINT, as shells report it)
