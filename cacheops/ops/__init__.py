"""The operations layer: selection, evict and its backup/restore, the operations log (history),
tagging, warm with its playbooks and app model, migrate-embeddings. Everything that writes.
Imports semantic, inspect, layouts, server, base.
"""
