"""``fraudrules serve``: real-time decisions over HTTP on the stream executor (docs/design.md §8).

``service`` holds the executor, the write-ahead log and checkpoints (no web
framework); ``app`` is the FastAPI layer, imported lazily because FastAPI and
uvicorn are the optional extra ``serve``.
"""
