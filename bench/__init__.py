"""tipsplit's benchmark suite (issue 7): `make bench` and `make bench-smoke`; see bench/README.md."""
