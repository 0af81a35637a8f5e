"""Layer 0, base: plain utilities that know nothing of WSOL (atomic file writes and digests, the allocator switch).

May import: the standard library and third-party packages only, never another part of :mod:`wsol_utils`.
"""
