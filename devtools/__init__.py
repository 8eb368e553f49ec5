"""The shared core of Reducer DevTools.

Everything the other packages agree on lives here: the message/event/snapshot model
(:mod:`devtools.model`), frame parsing that never raises (:mod:`devtools.frames`), canonical
JSON and state hashes (:mod:`devtools.canonical`), the log store (:mod:`devtools.schema`,
:mod:`devtools.store`), JSON Lines interchange (:mod:`devtools.jsonl`), the devtools-channel
protocol as plain data (:mod:`devtools.protocol`), the reference reducer-server runtime
(:mod:`devtools.server`) and the thin ``rdt`` command line (:mod:`devtools.cli`).

This package imports only the standard library and its declared dependencies; it never imports
``recorder``, ``replayer`` or ``tui`` except inside :mod:`devtools.cli`.
"""

__version__ = "0.1.0"
