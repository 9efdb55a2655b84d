"""Pure parsers for what Spark serves: decoded JSON (or text/HTML) in, models out.

No I/O here. Every parser takes the decoded payload, `source` (the URL or path it came from, used
in error messages) and the fetch time, and returns models from `collectors.spark.models` (or small
intermediate records defined beside it). Anything that is not the expected shape raises
`SparkParseError` naming the source and what was wrong; the collector records that error for the
source and keeps the other sources of the cycle.

Parsers are lenient about optional fields (absent -> None/0) and strict about shape (a list where a
list is expected, objects inside, identifiers present, numbers that are numbers), so that a change
of Spark version that adds fields changes nothing and a response that is not what we think it is
fails loudly with context. One module per kind of source: `rest` (applications, jobs, stages,
executors), `sql`, `metrics`, `dstream`, `ui` (the StreamingQuery page), `progress` (listener
events), `master`; `common` holds what they share.
"""
