"""The Unified-IO network, its construction from a config, decoding and losses."""
