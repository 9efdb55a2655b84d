"""Collection: each Kafka cluster and Spark as a source, their loops, and the latest snapshot."""
