"""The one error of the storage layer."""


class HistoryError(Exception):
    """The history database cannot be opened, created, migrated or written."""
