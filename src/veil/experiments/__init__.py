"""The papers' protocols (demo, tables, pair test, trade-off curves), built from the library pieces."""
