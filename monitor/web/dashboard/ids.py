"""Component ids, in one place so layouts, callbacks and tests agree."""

# -- shell (layout.py) -----------------------------------------------------------------------
URL = "url"  # dcc.Location(refresh="callback-nav"): reads the address, navigates (drill-down)
URL_SEARCH = "url-search"  # dcc.Store: the query string the address bar should show
URL_SYNC = "url-sync"  # hidden target of the clientside history.replaceState callback
INTERVAL = "interval"  # dcc.Interval, period = collection interval
RANGE = "range"  # time-range picker (RadioItems: 15m 1h 6h 24h)
CLUSTER = "cluster"  # cluster picker (Dropdown)
THEME = "theme"  # dcc.Store(storage_type="local"): "light" | "dark"
THEME_TOGGLE = "theme-toggle"
THEME_SINK = "theme-sink"
STATUS = "status-line"  # "updated 3s ago · kafka:demo up"
BANNER = "stale-banner"
ALERT_BADGE = "nav-alert-badge"  # the nav links: registry.Page.nav_id

# -- overview --------------------------------------------------------------------------------
OV_HEADLINE = "ov-headline"
OV_TOPOLOGY = "ov-topology"
OV_TOPOLOGY_META = "ov-topology-meta"
OV_INTERNAL = "ov-internal"  # checklist: show internal topics in the topology
OV_LAG = "ov-lag"
OV_LAG_META = "ov-lag-meta"
OV_HEALTH = "ov-health"

# -- topics ----------------------------------------------------------------------------------
TP_SELECT = "tp-select"
TP_TABLE = "tp-table"
TP_THROUGHPUT = "tp-throughput"
TP_THROUGHPUT_META = "tp-throughput-meta"
TP_PARTITION_RATES = "tp-partition-rates"
TP_PARTITION_META = "tp-partition-meta"
TP_PARTITIONS = "tp-partitions"
TP_PARTITIONS_NOTE = "tp-partitions-note"
TP_TITLE = "tp-title"

# -- consumer groups -------------------------------------------------------------------------
GR_TABLE = "gr-table"
GR_COUNT = "gr-count"
GR_SELECTION = "gr-selection"  # dcc.Store {cluster, group} of the drill-down
GR_SUMMARY = "gr-summary"
GR_PARTITION_LAG = "gr-partition-lag"
GR_HEATMAP = "gr-heatmap"
GR_RATES = "gr-rates"
GR_DETAIL_META = "gr-detail-meta"
GR_PARTITIONS = "gr-partitions"
GR_COMMITS = "gr-commits"  # the drill-down's recent commits (from the history)

# -- spark -----------------------------------------------------------------------------------
SP_CONTENT = "sp-content"
SP_META = "sp-meta"

# -- alerts ----------------------------------------------------------------------------------
AL_NOTICE = "al-notice"
AL_FIRING = "al-firing"
AL_PENDING = "al-pending"
AL_RESOLVED = "al-resolved"
AL_SILENCES = "al-silences"
AL_NOTIFICATIONS = "al-notifications"
