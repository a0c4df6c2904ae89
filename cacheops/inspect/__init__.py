"""The inspection layer: caches and their summaries (catalog), single entries and prompt look-ups
(finder), stats, doctor, and reading cacheops' tag index. Read-only; imports layouts, server, base.
"""
