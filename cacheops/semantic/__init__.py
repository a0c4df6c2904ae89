"""The semantic layer: embedding models (vectorizers), nearest-neighbour search, the wrong-answer
audit and labelled paraphrase sets. Imports inspect, layouts, server, base.
"""
