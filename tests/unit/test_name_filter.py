"""CompiledFilter: a configured allow/deny list of regexes, a name kept when it fully matches an
allow pattern and no deny pattern. Its answers are kept between calls (every group and topic name
is judged every cycle), at most `KNOWN_LIMIT` of them: kept or not, the answers are the regexes'."""
from __future__ import annotations

import pickle
import random
import re

from collectors.kafka.settings import CompiledFilter

ALLOW, DENY = ("orders-.*", "payments", "a.c"), ("orders-test.*", ".*-dlq")


def by_regex(name: str) -> bool:
    return (any(re.fullmatch(p, name, re.DOTALL) for p in ALLOW)
            and not any(re.fullmatch(p, name, re.DOTALL) for p in DENY))


def names(rng: random.Random, n: int) -> list[str]:
    parts = ["orders-", "orders-test", "payments", "abc", "a\nc", "-dlq", "x", "eu", "\n"]
    return ["".join(rng.choice(parts) for _ in range(rng.randint(1, 3))) for _ in range(n)]


def test_answers_kept_or_not_are_the_regexes(monkeypatch):
    rng = random.Random(7)
    monkeypatch.setattr(CompiledFilter, "KNOWN_LIMIT", 50)
    f = CompiledFilter(ALLOW, DENY)
    asked = names(rng, 400)
    assert any(map(by_regex, asked)) and not all(map(by_regex, asked))
    for _ in range(3):  # asked again: from what is kept, or judged again past the bound
        for name in asked:
            assert f(name) == by_regex(name), name
        assert len(f._known) <= 50


def test_a_filter_crosses_to_the_child_without_what_it_kept():
    f = CompiledFilter(ALLOW, DENY)
    f("orders-eu")
    copy = pickle.loads(pickle.dumps(f))
    assert copy._known == {} and copy("orders-eu") and not copy("orders-test-1")
