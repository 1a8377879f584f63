"""Hit grids: an event's hits counting-sorted into cells (layer, row along the layer, phi
column), each row sorted by phi, and the look-ups over them.

Both searches of a window (layer, u range, phi range) over an event's hits go through one:
the seeder (:mod:`hepgan.reco.seeding`) and the track completion (:mod:`hepgan.reco.completion`,
:mod:`hepgan.reco.outward`). u is z on a barrel, r on a disk. A grid's layout is
``(uinv, n_rows, base, n_phi)`` from :func:`layout`: layer ``la`` has ``n_rows[la]`` rows of
``1 / uinv[la]`` mm from ``umin[la]``, each of ``n_phi`` columns, its first cell at
``base[la]``; :func:`build_grid` returns the hits' grid order and the cells' offsets into it.
Within a row the cells follow each other in phi, so a phi range of one row is one contiguous
run of the grid order, found from its first column (:func:`first_in_row`).
"""

from __future__ import annotations

import math

import numpy as np

from hepgan.reco.jit import kernel

__all__ = ["build_grid", "first_in_row", "layout", "phi_ranges", "row_run", "row_span", "rows"]

_PI = math.pi
_TWO_PI = 2.0 * math.pi


def layout(umin: np.ndarray, umax: np.ndarray, row_width, n_phi: int) -> tuple:
    """``(uinv, n_rows, base, n_phi)`` of a grid over layers spanning [umin, umax] along u (mm):
    rows of `row_width` mm (a scalar or one per layer; None: one row per layer)."""
    span = np.asarray(umax, np.float64) - np.asarray(umin, np.float64)
    if row_width is None:
        n_rows = np.ones(len(span), np.int64)
    else:
        n_rows = np.maximum(1, np.ceil(span / np.asarray(row_width, np.float64))).astype(np.int64)
    base = np.zeros(len(span) + 1, np.int64)
    base[1:] = np.cumsum(n_rows * n_phi)
    return n_rows / span, n_rows, base, n_phi


@kernel()
def build_grid(layer, phi, u, r, umin, uinv, n_rows, base, n_phi):
    """Counting sort of the hits into cells (layer, row, phi column), then insertion sort by
    (phi, u, r) inside each cell, so each row is sorted by phi. Returns (order,
    cell_offsets): hit ``order[j]`` is the j-th in grid order and cell c holds
    ``order[cell_offsets[c]:cell_offsets[c + 1]]``. Every hit must have a layer (>= 0)."""
    n = layer.shape[0]
    n_cells = base[base.shape[0] - 1]
    cell = np.empty(n, np.int64)
    counts = np.zeros(n_cells + 1, np.int64)
    inv_phi = n_phi / _TWO_PI
    for i in range(n):
        la = layer[i]
        row = int((u[i] - umin[la]) * uinv[la])
        row = min(max(row, 0), n_rows[la] - 1)
        col = int((phi[i] + _PI) * inv_phi)
        col = min(max(col, 0), n_phi - 1)
        c = base[la] + row * n_phi + col
        cell[i] = c
        counts[c + 1] += 1
    for c in range(n_cells):
        counts[c + 1] += counts[c]
    offsets = counts.copy()
    fill = counts[:n_cells].copy()
    order = np.empty(n, np.int64)
    for i in range(n):
        c = cell[i]
        order[fill[c]] = i
        fill[c] += 1
    _sort_cells(order, offsets, phi, u, r)
    return order, offsets


@kernel(allocates=False)
def _sort_cells(order, offsets, phi, u, r):
    """Insertion sort by (phi, u, r) of each cell ``order[offsets[c]:offsets[c + 1]]``: a cell
    holds a few hits."""
    for c in range(offsets.shape[0] - 1):
        _sort_cell(order, offsets[c], offsets[c + 1], phi, u, r)


@kernel(allocates=False, inline="always")
def _sort_cell(order, lo, hi, phi, u, r):
    for j in range(lo + 1, hi):
        h = order[j]
        k = j - 1
        while k >= lo:
            g = order[k]
            if phi[g] < phi[h] or (phi[g] == phi[h] and (u[g] < u[h] or (u[g] == u[h] and r[g] <= r[h]))):
                break
            order[k + 1] = g
            k -= 1
        order[k + 1] = h


@kernel(inline="always")
def phi_ranges(phi_lo, phi_hi, rng):
    """[phi_lo, phi_hi] (may cross -pi/pi) as up to 2 ranges within [-pi, pi] in ``rng``;
    returns the number of ranges."""
    if phi_hi - phi_lo >= _TWO_PI:
        rng[0] = -_PI
        rng[1] = _PI
        return 1
    if phi_lo < -_PI:
        rng[0] = phi_lo + _TWO_PI
        rng[1] = _PI
        rng[2] = -_PI
        rng[3] = phi_hi
        return 2
    if phi_hi >= _PI:
        rng[0] = phi_lo
        rng[1] = _PI
        rng[2] = -_PI
        rng[3] = phi_hi - _TWO_PI
        return 2
    rng[0] = phi_lo
    rng[1] = phi_hi
    return 1


@kernel(inline="always")
def rows(la, u_lo, u_hi, umin, uinv, n_rows):
    """First and last row of layer `la` that [u_lo, u_hi] touches (clamped to the layer; first >
    last when it misses the layer). Bounds may be huge (1e300): clamped before the int."""
    n = n_rows[la]
    lo = int(math.floor(min(max((u_lo - umin[la]) * uinv[la], -1.0), n)))
    hi = int(math.floor(min(max((u_hi - umin[la]) * uinv[la], -1.0), n)))
    return max(lo, 0), min(hi, n - 1)


@kernel(inline="always")
def row_span(la, u_lo, u_hi, umin, uinv, n_rows):
    """Rows of layer `la` to read for every hit with u in [u_lo, u_hi], u_lo <= u_hi: as
    :func:`rows`, but a range beyond the layer's extent reads its edge row, which
    :func:`build_grid` filled with the hits beyond it."""
    lo, hi = rows(la, u_lo, u_hi, umin, uinv, n_rows)
    return min(lo, n_rows[la] - 1), max(hi, 0)


@kernel(inline="always")
def first_in_row(offsets, row_base, phi, n_phi):
    """Grid position of the first cell of the row whose column holds `phi`."""
    col = int((phi + _PI) * (n_phi / _TWO_PI))
    col = min(max(col, 0), n_phi - 1)
    return offsets[row_base + col]


@kernel(allocates=False, inline="always")
def row_run(offsets, base, n_phi, la, row, phi_lo, phi_hi, phi_sorted):
    """(start, stop): the grid positions of the hits of row `row` of layer `la` with phi in
    [phi_lo, phi_hi] are range(start, stop) (the row is sorted by phi)."""
    row_base = base[la] + row * n_phi
    start = first_in_row(offsets, row_base, phi_lo, n_phi)
    end = offsets[row_base + n_phi]
    while start < end and phi_sorted[start] < phi_lo:
        start += 1
    stop = start
    while stop < end and phi_sorted[stop] <= phi_hi:
        stop += 1
    return start, stop
