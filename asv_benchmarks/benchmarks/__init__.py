"""asv benchmarks for loopbp (see ``asv_benchmarks/README.md``)."""
