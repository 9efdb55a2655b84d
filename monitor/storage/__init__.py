"""Storage: the history database (schema, Kafka and Spark stores, downsampling) and the
`HistoryReader` every reader goes through."""
from monitor.storage.errors import HistoryError
from monitor.storage.history import History
from monitor.storage.reader import HistoryReader
from monitor.storage.schema import SCHEMA_VERSION, check_history_path, probe_database

__all__ = ["History", "HistoryError", "HistoryReader", "SCHEMA_VERSION", "check_history_path", "probe_database"]
