# The names of pysyncobj 0.3.17 that cluster/raft uses, typed (pysyncobj ships no types).
# Only what the store reads, calls, overrides or replaces is declared; cluster/raft/compat.py
# checks at import that each of these names exists in the installed pysyncobj.
from .config import FAIL_REASON as FAIL_REASON
from .config import SERIALIZER_STATE as SERIALIZER_STATE
from .config import SyncObjConf as SyncObjConf
from .syncobj import _RAFT_STATE as _RAFT_STATE
from .syncobj import SyncObj as SyncObj
from .syncobj import SyncObjConsumer as SyncObjConsumer
from .syncobj import replicated as replicated
