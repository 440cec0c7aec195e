"""The I/O edges: tailed files, stdin and network inputs that feed bytes into the pure core."""
