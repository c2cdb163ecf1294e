"""Start-up: a fresh Python process that imports loopbp and trains one mini-batch.

Each sample runs in a new interpreter (asv's ``timeraw_``); the time covers
``import loopbp`` (and NumPy, numba) plus the first ``sgd`` call on one
mini-batch of 10 examples of the ``nielsen`` network, float64:

* ``ColdStart``: numba's cache directory (``NUMBA_CACHE_DIR``) is a new,
  empty folder, so every kernel is compiled;
* ``WarmStart``: the cache directory was filled beforehand (in
  ``setup_cache``), so the kernels are loaded from it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

#: The timed statement: import and one mini-batch.
FIRST_MINI_BATCH = textwrap.dedent("""
    import numpy as np
    import loopbp
    X = np.random.default_rng(0).random((10, 784))
    loopbp.Network([784, 30, 10], seed=0).sgd(X, np.arange(10), 1, 10, 3.0, progress=False)
""")

#: Untimed set-up of a cold sample: a new, empty cache folder, removed at exit.
EMPTY_CACHE = textwrap.dedent("""
    import atexit, os, shutil, tempfile
    cache = tempfile.mkdtemp(prefix="loopbp-numba-cache-")
    atexit.register(shutil.rmtree, cache, True)
    os.environ["NUMBA_CACHE_DIR"] = cache
""")


class ColdStart:
    number = 1
    repeat = (1, 3, 120.0)
    rounds = 1
    warmup_time = 0
    timeout = 600

    def timeraw_cold_start(self):
        return FIRST_MINI_BATCH, EMPTY_CACHE


class WarmStart:
    number = 1
    repeat = (3, 10, 20.0)
    warmup_time = 0
    timeout = 600

    def setup_cache(self):
        """Fill a cache folder (in asv's working folder for this benchmark) by one cold start."""
        cache = os.path.abspath("numba-cache")
        os.makedirs(cache, exist_ok=True)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        subprocess.run([sys.executable, "-c", FIRST_MINI_BATCH], env=env, check=True)
        return cache

    def timeraw_warm_start(self, cache):
        return FIRST_MINI_BATCH, f"import os\nos.environ['NUMBA_CACHE_DIR'] = {cache!r}\n"
