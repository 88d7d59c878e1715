"""Tooling for the device side: run edge-screen on an emulated Raspberry Pi userland
(``emulate``) and gather every wheel an offline Pi needs (``wheelhouse``)."""
