"""The matching engine: plain Python, numpy and scikit-learn; no web framework, no ORM."""

import os
import sys

# numpy asks the kernel for transparent huge pages on every large array (madvise). Where
# the kernel then compacts memory on the first touch (defrag "madvise", Debian's default),
# a fresh 200 MB copy of the network's vectors took 0.5 s instead of 0.03 s in a process
# that had served a few hundred requests: the first search after a write went from 0.2 s to
# 0.8 s on the benchmark network, while searches and suggestions did not get faster with
# huge pages (`maillage bench`, 2026-12-01). An operator's own NUMPY_MADVISE_HUGEPAGE
# stands.
if "NUMPY_MADVISE_HUGEPAGE" not in os.environ:
    os.environ["NUMPY_MADVISE_HUGEPAGE"] = "0"  # read by numpy when it is imported
    if "numpy" in sys.modules:  # imported before this package: told at run time
        _core = getattr(sys.modules["numpy"], "_core", None) or sys.modules["numpy"].core
        _set = getattr(_core.multiarray, "_set_madvise_hugepage", None)
        if _set is not None:
            _set(False)
