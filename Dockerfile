# streamscope image: the monitor (`streamscope run`), the demo producer/consumers and the demo
# Spark jobs (pyspark + Java 17 + the Spark Kafka connector jars), as used by docker-compose.yml.
#
#   docker build -t streamscope .
#   docker run --rm -p 127.0.0.1:8050:8050 streamscope \
#       streamscope run --bootstrap-servers kafka-1:9092 --host 0.0.0.0
#
# Build stage: builds the wheels (pyspark is a 400+ MB source distribution built once here) and
# resolves the Spark Kafka connector jars from Maven Central (python -m demo.jars). The runtime
# stage gets the wheels and the jar cache, but no Maven and no compilers.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# Java 17 for Spark (pyspark's spark-submit); procps: Spark's launch scripts call `ps`.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*

FROM base AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends maven \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY collectors ./collectors
COPY alerts ./alerts
COPY demo ./demo
COPY dashboards ./dashboards
RUN pip wheel --wheel-dir /wheels ".[spark]"
# The connector jars must match the installed pyspark: install it, then resolve.
RUN pip install --no-index --find-links /wheels "streamscope[spark]" \
 && STREAMSCOPE_CACHE=/opt/streamscope/cache python -m demo.jars spark-kafka

FROM base
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-index --find-links /tmp/wheels "streamscope[spark]" \
 && rm -rf /tmp/wheels
COPY --from=build /opt/streamscope/cache /opt/streamscope/cache
COPY docker/demo_traffic.py /opt/streamscope/docker/demo_traffic.py
RUN useradd --system --uid 10001 --home-dir /var/lib/streamscope --create-home streamscope \
 && mkdir -p /var/lib/streamscope/spark \
 && chown -R streamscope:streamscope /var/lib/streamscope
ENV STREAMSCOPE_CACHE=/opt/streamscope/cache \
    HOME=/var/lib/streamscope
USER streamscope
WORKDIR /var/lib/streamscope
EXPOSE 8050 4040 4041
CMD ["streamscope", "run", "--config", "/etc/streamscope/streamscope.yaml"]
