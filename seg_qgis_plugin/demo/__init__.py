"""The offline demo (`seg demo`, `make demo`) and the synthetic scene it, the tests and the
benchmarks segment."""
