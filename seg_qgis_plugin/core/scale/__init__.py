"""Scale-out and resumable runs: tiles in blocks over a dask.distributed cluster (cluster.py), a
resume manifest beside the output (manifest.py), and the prelabel/encode drivers on top (runs.py)."""
