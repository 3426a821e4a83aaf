"""The classification worker and everything that talks to it, owned here:

    protocol  the wire format: typed requests and replies, one encoder and decoder
    server    the worker process itself (`python -m TumorClassifierLib.worker`)
    process   WorkerProcess: starts the worker and reads its replies without blocking
    jobs      Job and JobRunner: what the Slicer module, its console calls and the web viewer
              drive (progress, result, error, cancel, "the worker went away")

Nothing here imports torch or Qt at file scope: the Slicer application imports this package.
"""
