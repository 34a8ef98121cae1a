"""Study ``decayaware``: ttH(bb) vs tt + jets with the decay chain as an auxiliary target
(seed 002): a set transformer over the event's objects with a hop-count head and a
SPANet-style assignment head, against a BDT on high-level variables."""
