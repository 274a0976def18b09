"""The local Kafka and Redis that `cdp stack up|down|status`, `make demo` and `make test` run.

Fixtures call ``up()``, ``down()`` and ``status()``; every failure is a ``StackError`` whose
message says what to do.
"""

from cdp_tools.stack.control import ServiceState, down, status, up
from cdp_tools.stack.errors import StackError

__all__ = ["ServiceState", "StackError", "down", "status", "up"]
