"""The pure core: parsing, statistics and filters. No Textual, no event loop, no sockets."""
