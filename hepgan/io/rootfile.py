"""What kind of ROOT object or file hepgan is looking at, said in plain words.

uproot 5.7 writes ``f["hits"] = {...}`` as an RNTuple (ROOT 6.34's successor to TTree); hepgan
reads both. A file that is not ROOT at all (empty, text, CSV) is named as such, rather than
through uproot's error about chunk lengths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepgan.errors import InputError

__all__ = ["TREE_CLASSES", "branch_layout", "check_root_signature", "is_event_tree"]

#: ROOT classes read as trees of events: TTrees, and RNTuples (ROOT 6.34's successor to TTree,
#: and what uproot 5.7 writes by default).
TREE_CLASSES = ("TTree", "ROOT::RNTuple")


def is_event_tree(obj: Any) -> bool:
    """A TTree, or an RNTuple (what uproot >= 5.7 writes for ``f["hits"] = {...}``)."""
    return isinstance(obj, uproot.TTree | uproot.behaviors.RNTuple.RNTuple)


def branch_layout(tree: Any, name: str) -> tuple[bool, np.dtype | None]:
    """(jagged, number dtype) of a TTree branch or an RNTuple field; dtype None when it holds
    something other than numbers or lists of numbers (strings, objects, nested lists)."""
    if isinstance(tree, uproot.TTree):
        interpretation = tree[name].interpretation
        jagged = isinstance(interpretation, uproot.AsJagged)
        if jagged:
            interpretation = interpretation.content
        return jagged, interpretation.to_dtype if isinstance(interpretation, uproot.AsDtype) else None
    form = tree[name].to_akform()[0].contents[0]
    jagged = isinstance(form, ak.forms.ListOffsetForm | ak.forms.ListForm)
    if jagged:
        form = form.content
    if not isinstance(form, ak.forms.NumpyForm) or form.inner_shape:
        return jagged, None
    return jagged, np.dtype(ak.types.numpytype.primitive_to_dtype(form.primitive))


def check_root_signature(path: Path) -> None:
    """Say in plain words what a file is when it is not ROOT (empty, text, CSV), rather than
    pass on uproot's error about chunk lengths."""
    try:
        with path.open("rb") as fh:
            head = fh.read(64)
    except OSError as err:
        msg = f"{path}: cannot read ({err.strerror or err})"
        raise InputError(msg) from err
    if not head:
        msg = f"{path}: cannot open as a ROOT file: the file is empty (0 bytes)"
        raise InputError(msg)
    if head.startswith(b"root"):
        return
    text = head.decode("utf-8", errors="replace").splitlines()[0][:40]
    hint = ""
    if b"," in head and head.isascii():
        hint = "; CSV events (TrackML, ACTS) are converted with: hepgan import --format trackml|acts-csv"
    msg = f"{path}: cannot open as a ROOT file: it starts with {text!r}, not ROOT's 'root' signature{hint}"
    raise InputError(msg)
