"""The routing tree (`alerts.routing.match_routes`), Alertmanager's semantics, as a table:

- Rule 1 - the root always matches; with no matching child it takes the alert itself
- Rule 2 - depth first: the first matching child takes the alert, its siblings are not tried
- Rule 3 - a matching child with `continue` lets the next siblings be tried as well
- Rule 4 - a matching child whose own children do not match takes the alert itself
- Rule 5 - a child whose matchers fail is skipped, however its children would match
"""
from __future__ import annotations

import gc

import pytest

from alerts.matchers import parse_matchers
from alerts.routing import Route, match_routes


def route(route_id: str, matchers=(), *children: Route, continue_: bool = False) -> Route:
    return Route(id=route_id, matchers=parse_matchers(matchers), receivers=(route_id,), group_by=None,
                 group_wait=0.0, group_interval=0.0, repeat_interval=0.0, continue_=continue_,
                 children=tuple(children))


TREE = route(
    "root", ["team=nobody-matches-the-root"],  # the root's matchers are never applied
    route("kafka", ['source="kafka"'],
          route("kafka.critical", ['severity="critical"']),
          route("kafka.lag", ['alertname=~"ConsumerLag.*"'])),
    route("spark", ['source="spark"'], continue_=True),
    route("audit", ['source=~"spark|kafka"']),
    route("unreachable", ['source="kafka"'], route("unreachable.child", ['severity=~".*"'])),
)


@pytest.mark.parametrize("labels, routes", [
    ({"source": "flink"}, ["root"]),  # Rule 1
    ({"source": "kafka", "severity": "critical", "alertname": "ConsumerLagHigh"}, ["kafka.critical"]),  # Rule 2
    ({"source": "kafka", "alertname": "ConsumerLagHigh"}, ["kafka.lag"]),  # Rule 2, second child
    ({"source": "spark"}, ["spark", "audit"]),  # Rule 3
    ({"source": "kafka", "alertname": "BrokerDown"}, ["kafka"]),  # Rule 4, and Rule 2: "audit" not tried
    ({"source": "", "severity": "critical"}, ["root"]),  # Rule 5: "unreachable.child" would match
])
def test_match_routes_rule_table(labels, routes):
    assert [r.id for r in match_routes(TREE, labels)] == routes


def test_routing_an_alert_leaves_no_garbage_for_the_cyclic_collector():
    """Routing runs for every alert that changes state: a reference cycle per call (a nested
    function calling itself through its closure) is work for the cyclic collector each time."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(50):
            match_routes(TREE, {"source": "kafka", "alertname": "ConsumerLagHigh"})
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()
