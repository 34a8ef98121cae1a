"""Truth labels from the Pythia record: track origins, truth vertices, flavour ghosts, the
hard-process decay chain.

All functions loop over the flattened record of a batch of events (numba); indices stored
in the record (``mother1``, ``daughter1`` ...) are local to each event.
"""

from __future__ import annotations

import numba
import numpy as np

from hepchain.collider.pythia import Particles

# track truth origins (GN1 convention)
PILEUP, FAKE, PRIMARY, FROM_B, FROM_BC, FROM_C, FROM_TAU, OTHER_SECONDARY = range(8)
ORIGIN_NAMES = ("pileup", "fake", "primary", "fromB", "fromBC", "fromC", "fromTau",
                "otherSecondary")
#: light hadrons with cτ > 1 mm whose decay products are displaced "other secondaries"
LONG_LIVED_LIGHT = np.array([310, 3122, 3112, 3222, 3312, 3322, 3334, 130, 321, 211], np.int64)
#: ghost types
GHOST_B, GHOST_C, GHOST_TAU = 5, 4, 15
GHOST_PT_MIN = 5.0  # GeV, as in ATLAS hadron labelling


@numba.njit(cache=True)
def heavy_flavour(pid: int) -> int:
    """5 for a b hadron, 4 for a c hadron, 0 otherwise (PDG numbering)."""
    a = abs(pid)
    if a < 100 or a >= 1_000_000 or (a // 10) % 10 == 0:
        return 0
    q3 = (a // 1000) % 10
    q2 = (a // 100) % 10
    if q3 == 5 or (q3 == 0 and q2 == 5):
        return 5
    if q3 == 4 or (q3 == 0 and q2 == 4):
        return 4
    return 0


@numba.njit(cache=True)
def _labels(offsets, pid, status, mother1, x, y, z, long_lived):
    n = len(pid)
    origin = np.full(n, PRIMARY, np.int8)
    vertex = np.full(n, -1, np.int64)  # local index of the particle whose decay made it
    hf = np.zeros(n, np.int8)
    for i in range(n):
        hf[i] = heavy_flavour(pid[i])
    for ev in range(len(offsets) - 1):
        lo = offsets[ev]
        for k in range(offsets[ev + 1] - lo):
            i = lo + k
            st = abs(status[i])
            m = mother1[i]
            if st < 91 or st > 99 or m <= 0:
                continue
            j = lo + m
            displaced = (x[i] - x[j]) ** 2 + (y[i] - y[j]) ** 2 + (z[i] - z[j]) ** 2 > 1e-12
            amid = abs(pid[j])
            is_ll = False
            for q in long_lived:
                if amid == q:
                    is_ll = True
            if not (displaced and (hf[j] > 0 or amid == 15 or is_ll)):
                # strong/EM decay (or oscillation): same vertex and origin as the mother
                origin[i] = origin[j]
                vertex[i] = vertex[j]
                continue
            vertex[i] = m
            if hf[j] == 5:
                origin[i] = FROM_B
            elif hf[j] == 4:
                origin[i] = FROM_BC if origin[j] == FROM_B or origin[j] == FROM_BC else FROM_C
            elif amid == 15:
                origin[i] = FROM_TAU
            elif origin[j] == PRIMARY:
                origin[i] = OTHER_SECONDARY
            else:
                origin[i] = origin[j]
    return origin, vertex, hf


def track_labels(p: Particles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per particle: truth origin code, local index of its displaced production vertex's
    parent (-1 = primary vertex) and heavy flavour of the particle itself (5/4/0)."""
    return _labels(p.offsets, p.pid, p.status, p.mother1, p.x, p.y, p.z, LONG_LIVED_LIGHT)


@numba.njit(cache=True)
def _ghosts(offsets, pid, status, mother1, px, py, hf):
    n = len(pid)
    has_same_child = np.zeros(n, np.bool_)
    leptonic = np.zeros(n, np.bool_)
    for ev in range(len(offsets) - 1):
        lo = offsets[ev]
        for k in range(offsets[ev + 1] - lo):
            i = lo + k
            m = mother1[i]
            if m <= 0:
                continue
            j = lo + m
            if hf[i] != 0 and hf[i] == hf[j]:
                has_same_child[j] = True
            if abs(pid[j]) == 15:
                if abs(pid[i]) == 15:
                    has_same_child[j] = True
                elif abs(pid[i]) == 11 or abs(pid[i]) == 13:
                    leptonic[j] = True
    kind = np.zeros(n, np.int8)
    for i in range(n):
        if has_same_child[i] or px[i] ** 2 + py[i] ** 2 < GHOST_PT_MIN ** 2:
            continue
        if hf[i] == 5:
            kind[i] = GHOST_B
        elif hf[i] == 4:
            kind[i] = GHOST_C
        elif abs(pid[i]) == 15 and status[i] < 0 and not leptonic[i]:
            kind[i] = GHOST_TAU
    return kind


def ghost_kinds(p: Particles, hf: np.ndarray) -> np.ndarray:
    """Per particle: 5 weakly decaying b hadron, 4 c hadron, 15 hadronic τ (pT > 5 GeV), else 0."""
    return _ghosts(p.offsets, p.pid, p.status, p.mother1, p.px, p.py, hf)


@numba.njit(cache=True)
def _hard(offsets, pid, status, mother1, mother2, daughter1, daughter2):
    n = len(pid)
    keep = np.zeros(n, np.bool_)
    bottom = np.arange(n)
    parent = np.full(n, -1, np.int64)
    for ev in range(len(offsets) - 1):
        lo = offsets[ev]
        for k in range(offsets[ev + 1] - lo):
            i = lo + k
            st = abs(status[i])
            if st < 22 or st > 23:
                continue
            keep[i] = True
            b = i  # follow carbon copies down
            while (daughter1[b] > 0 and daughter1[b] == daughter2[b]
                   and pid[lo + daughter1[b]] == pid[b]):
                b = lo + daughter1[b]
            bottom[i] = b
            m = mother1[i]  # follow carbon copies up to the hard-process mother
            while m > 0 and abs(status[lo + m]) not in (21, 22, 23):
                if mother1[lo + m] == mother2[lo + m] and pid[lo + mother1[lo + m]] == pid[lo + m]:
                    m = mother1[lo + m]
                else:
                    break
            if m > 0 and 22 <= abs(status[lo + m]) <= 23:
                parent[i] = lo + m
    return keep, bottom, parent


def hard_process(p: Particles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hard-process partons and resonances (|status| 22-23): mask, index of the last carbon
    copy (for kinematics after recoil) and the global index of the hard-process parent (-1)."""
    return _hard(p.offsets, p.pid, p.status, p.mother1, p.mother2, p.daughter1, p.daughter2)
