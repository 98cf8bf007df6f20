"""Media work (metadata, thumbnails, transcodes, ML) consumed from the bus. Arrives with the
ingest issue; the write side already records every upload it will need."""
