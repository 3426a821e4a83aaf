"""Classifying an archive beyond one machine: a deterministic split into shards for clusters
without Ray (a SLURM array) and their merge (shards.py), and a Ray Data pipeline for clusters
with it (ray_batch.py, the `[ray]` extra: the only module that imports Ray). docs/cluster.md."""
