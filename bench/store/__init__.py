"""The results store: one JSON record per cell (``results``), the claims runners hold on cells
(``leases``), every file written atomically (``atomic``), free space before a run (``space``)
and ``bench.py verify``'s check of a store (``verify``). It knows files and records, never a
dataset or a method: the run layer hands it what it needs of them."""
