"""Reference data of the released Unified-IO 1 network (see regenerate.py)."""
