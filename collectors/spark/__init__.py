"""streamscope: the Spark collector.

Polls Spark driver UIs (and a standalone master / History Server for discovery) over HTTP and
produces immutable `SparkAppSnapshot`s; Structured Streaming progress can also arrive through a
`ProgressFeed` (the streamscope listener publishing `progress.json` to Kafka).

- `models`: the frozen snapshot dataclasses, raw and derived (`SparkAppView`)
- `parse/`: pure parsers, one module per kind of Spark source (tested on real Spark captures)
- `client`: the HTTP fetch layer (the only network I/O)
- `discovery`: targets and how apps are found
- `progress`: `ProgressFeed` protocol and the per-query tracker
- `lag`: a query's positions, its lag per partition, the query as a consumer group
- `views`: the read model every reader gets (labels, lag per topic, the query per label)
- `collector`: `SparkCollector`
- `exporter`: the Spark metric families
"""
