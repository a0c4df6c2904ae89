"""The interactive Textual front end (`cacheops tui`): a thin layer over the same library calls as the CLI."""

from .app import CacheopsApp

__all__ = ["CacheopsApp"]
