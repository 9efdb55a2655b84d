"""Translation of a cluster's librdkafka `client` settings for the batched group client."""
from __future__ import annotations

import pytest

from collectors.kafka.collector import KafkaCollector, KafkaCollectorSettings
from collectors.kafka.group_requests import kafka_python_config

TRANSLATED = [
    ({}, {}),
    ({"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "u", "sasl.password": "p"},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "u",
      "sasl_plain_password": "p"}),
    ({"sasl.mechanisms": "PLAIN"}, {"sasl_mechanism": "PLAIN"}),
    ({"ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/c.pem", "ssl.key.location": "/k.pem",
      "ssl.key.password": "kp", "ssl.endpoint.identification.algorithm": "none"},
     {"ssl_cafile": "/ca.pem", "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem", "ssl_password": "kp",
      "ssl_check_hostname": False}),
    ({"ssl.endpoint.identification.algorithm": "https"}, {"ssl_check_hostname": True}),
    # librdkafka tuning that does not decide how to connect is not kafka-python's business
    ({"statistics.interval.ms": 100, "socket.keepalive.enable": True, "client.id": "me"}, {"client_id": "me"}),
]
UNSUPPORTED = [
    {"sasl.oauthbearer.method": "oidc"},
    {"ssl.keystore.location": "/ks.p12"},
    {"security.protocol": "SSL", "ssl.engine.location": "/engine.so"},
]


@pytest.mark.parametrize("librdkafka, expected", TRANSLATED)
def test_connection_settings_are_translated(librdkafka, expected):
    assert kafka_python_config(librdkafka) == expected


@pytest.mark.parametrize("librdkafka", UNSUPPORTED)
def test_a_connection_setting_without_equivalent_means_one_call_per_group(librdkafka):
    assert kafka_python_config(librdkafka) is None
    collector = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                      client_config=librdkafka))
    assert collector._batched_requests() is None


def test_batched_requests_can_be_switched_off():
    off = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1",
                                                batched_group_requests=False))
    assert off._batched_requests() is None
    on = KafkaCollector(KafkaCollectorSettings(cluster="c", bootstrap_servers="127.0.0.1:1"))
    assert on._batched_requests() is not None  # created lazily; connects at its first request
