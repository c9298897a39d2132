"""agentd: agent WebSocket sessions, check request fanout and ad hoc executions (runtime.md §1)."""

from .adhoc import AdhocExecutor, adhoc_key, adhoc_prefix
from .agentd import AgentListenError, Agentd
from .fanout import Fanout
from .requests import build_check_request, check_request_prefix, load_check_request, publish_check_request
from .session import Session, SessionServices

__all__ = [
    "AdhocExecutor",
    "AgentListenError",
    "Agentd",
    "Fanout",
    "Session",
    "SessionServices",
    "adhoc_key",
    "adhoc_prefix",
    "build_check_request",
    "check_request_prefix",
    "load_check_request",
    "publish_check_request",
]
