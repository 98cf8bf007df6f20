"""Media work consumed from the bus: metadata, thumbnails, web versions (and ML, later).

Each processor is a plain function `(JobInput) -> dict` that runs in a child process (so a crash,
a hang or a leak in a media library never takes the worker down) and returns the result that the
completion command records as an event on the asset.
"""
