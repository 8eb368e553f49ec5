"""The recording proxy.

Accepts client websocket connections, forwards every frame unchanged both ways to the upstream
server, records a parsed copy of each direction (and, through the server's devtools channel, its
events and snapshots) into the log store, and serves the control endpoint used for live watching,
injection and marks. ``recorder/proxy.py`` is the one module that talks websockets.
"""
