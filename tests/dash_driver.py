"""A small server-side stand-in for the Dash renderer, for tests and benchmarks.

It does what a browser does when it opens a dashboard URL — fetch the layout and the callback
graph, fire the initial callbacks in dependency order, follow the pages router into the page's
layout, fire the page's callbacks — by POSTing to `/_dash-update-component` through a Flask test
client, and applies the responses (including `dash.Patch` operations) to its copy of the
component tree. Clientside callbacks are skipped. Every request is recorded (callback, bytes,
seconds), which is what `bench/bench_dashboard.py` measures.

    driver = DashDriver(flask_app.test_client())
    driver.load("/groups", "?cluster=demo&range=1h")
    driver.props("gr-table")["data"]          # rows the table shows
    driver.tick()                             # one dcc.Interval tick
"""
from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

_PATCH = "__dash_patch_update"


def id_key(cid: Any) -> str:
    """Dash's string form of a component id (dict ids: sorted-key JSON)."""
    if isinstance(cid, dict):
        return json.dumps(cid, sort_keys=True, separators=(",", ":"))
    return str(cid)


def _parse_dep(text: str) -> tuple[Any, str]:
    """'{"a":1}.prop' or 'id.prop' -> (id, prop)."""
    if text.startswith("{"):
        end = text.rindex("}.")
        return json.loads(text[: end + 1]), text[end + 2:]
    cid, _, prop = text.rpartition(".")
    return cid, prop


def _split_outputs(output: str) -> list[tuple[Any, str]]:
    if output.startswith("..") and output.endswith(".."):
        parts = output[2:-2].split("...")
    else:
        parts = [output]
    return [_parse_dep(p) for p in parts]


def _is_pattern(cid: Any) -> bool:
    return isinstance(cid, dict) and any(isinstance(v, list) for v in cid.values())


def _matches(pattern: dict, cid: Any) -> bool:
    if not isinstance(cid, dict) or set(cid) != set(pattern):
        return False
    for k, v in pattern.items():
        if isinstance(v, list):  # ALL / MATCH / ALLSMALLER wildcards: any value
            continue
        if cid[k] != v:
            return False
    return True


@dataclass
class Request:
    output: str
    bytes_out: int  # response body size
    bytes_in: int  # request body size
    seconds: float  # wall time of the request (server side: the test client calls the app)
    status: int
    reason: str  # initial | trigger | tick
    cpu_seconds: float = 0.0  # CPU time of this thread during the request


class DashDriver:
    def __init__(self, client, *, max_rounds: int = 200):
        self.client = client
        self.max_rounds = max_rounds
        self.deps: list[dict] = []
        self.components: dict[str, dict] = {}  # id key -> props (live references into the tree)
        self.ids: dict[str, Any] = {}  # id key -> id
        self.types: dict[str, str] = {}  # id key -> component type
        self.layout: Any = None
        self.requests: list[Request] = []
        self.errors: list[str] = []

    # -- tree ------------------------------------------------------------------------------------

    def _walk(self, node: Any, found: list[str]) -> None:
        if isinstance(node, list):
            for n in node:
                self._walk(n, found)
            return
        if not isinstance(node, dict):
            return
        if "props" in node and "type" in node and "namespace" in node:
            props = node["props"]
            if "id" in props:
                key = id_key(props["id"])
                self.components[key] = props
                self.ids[key] = props["id"]
                self.types[key] = node["type"]
                found.append(key)
            for value in props.values():
                self._walk(value, found)

    def props(self, cid: Any) -> dict:
        return self.components[id_key(cid)]

    def has(self, cid: Any) -> bool:
        return id_key(cid) in self.components

    def find(self, pattern: dict) -> list[Any]:
        return [cid for cid in self.ids.values() if _matches(pattern, cid)]

    def text(self, cid: Any | None = None) -> str:
        """All string children below a component (or the whole page): what a user reads."""
        out: list[str] = []

        def walk(node):
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, (int, float)) and not isinstance(node, bool):
                out.append(str(node))
            elif isinstance(node, list):
                for n in node:
                    walk(n)
            elif isinstance(node, dict) and "props" in node:
                walk(node["props"].get("children"))
                for key in ("data",):
                    rows = node["props"].get(key)
                    if node.get("type") == "DataTable" and isinstance(rows, list):
                        for r in rows:
                            out.extend(str(v) for k, v in r.items() if not k.startswith("_") and k != "id")

        walk(self.layout if cid is None else {"props": self.props(cid), "type": "", "namespace": ""})
        return "\n".join(out)

    # -- loading and firing ----------------------------------------------------------------------

    def load(self, pathname: str = "/", search: str = "") -> float:
        """Open a page like a browser; returns the server time spent (seconds)."""
        self.requests = []
        c0, t0 = time.thread_time(), time.perf_counter()
        r = self.client.get(pathname + search)
        self._record("GET " + pathname, len(r.data), 0, time.perf_counter() - t0, r.status_code,
                     "initial", time.thread_time() - c0)
        c0, t0 = time.thread_time(), time.perf_counter()
        r = self.client.get("/_dash-layout")
        self._record("GET /_dash-layout", len(r.data), 0, time.perf_counter() - t0, r.status_code,
                     "initial", time.thread_time() - c0)
        self.layout = r.get_json()
        if not self.deps:
            c0, t0 = time.thread_time(), time.perf_counter()
            r = self.client.get("/_dash-dependencies")
            self._record("GET /_dash-dependencies", len(r.data), 0, time.perf_counter() - t0,
                         r.status_code, "initial", time.thread_time() - c0)
            self.deps = [d for d in r.get_json() if not d.get("clientside_function")]
        self.components, self.ids, self.types = {}, {}, {}
        found: list[str] = []
        self._walk(self.layout, found)
        # dcc.Location components report the address when they mount
        changed = []
        for key in list(self.components):
            if self.types.get(key) == "Location":
                props = self.components[key]
                props.update({"pathname": pathname, "search": search, "href": "http://localhost" + pathname + search,
                              "hash": ""})
                changed += [(key, "pathname"), (key, "search"), (key, "href")]
        self._run(initial=found, changed=changed)
        return sum(r.seconds for r in self.requests)

    def tick(self, interval_id: str = "interval", n: int | None = None) -> list[Request]:
        """One dcc.Interval tick: fire what depends on it; returns the requests it made."""
        props = self.components[interval_id]
        props["n_intervals"] = (props.get("n_intervals") or 0) + 1 if n is None else n
        start = len(self.requests)
        self._run(initial=[], changed=[(interval_id, "n_intervals")], reason="tick")
        return self.requests[start:]

    def set_props(self, cid: Any, **values) -> list[Request]:
        """A user changing a component (typing, clicking): fire what depends on it."""
        key = id_key(cid)
        self.components[key].update(values)
        start = len(self.requests)
        self._run(initial=[], changed=[(key, p) for p in values], reason="trigger")
        return self.requests[start:]

    # -- internals -------------------------------------------------------------------------------

    def _inputs_of(self, dep: dict) -> list[tuple[Any, str]]:
        return [(i["id"], i["property"]) for i in dep["inputs"]]

    def _present(self, cid: Any) -> bool:
        return _is_pattern(cid) or id_key(cid) in self.components

    def _ready(self, dep: dict) -> bool:
        outs = _split_outputs(dep["output"])
        return all(self._present(c) for c, _ in self._inputs_of(dep)) and all(
            self._present(c) for c, _ in outs)

    def _run(self, *, initial: Iterable[str], changed: list[tuple[str, str]], reason: str = "initial") -> None:
        pending: list[tuple[dict, set[str], str]] = []  # (dep, changed prop ids, reason)

        def queue(dep, prop_ids, why):
            for i, (d, ids_, _) in enumerate(pending):
                if d is dep:
                    ids_.update(prop_ids)
                    return
            pending.append((dep, set(prop_ids), why))

        def on_new(keys: Iterable[str]):
            keys = set(keys)
            if not keys:
                return
            for dep in self.deps:
                if dep.get("prevent_initial_call"):
                    continue
                # like the renderer: callbacks with an input or an output in the new layout
                touched = any((not _is_pattern(c) and id_key(c) in keys) or
                              (_is_pattern(c) and any(_matches(c, self.ids[k]) for k in keys))
                              for c, _ in [*self._inputs_of(dep), *_split_outputs(dep["output"])])
                if touched and self._ready(dep):
                    queue(dep, set(), "initial")

        def on_change(pairs: Iterable[tuple[str, str]], source: dict | None):
            for dep in self.deps:
                if dep is source:
                    continue
                hits = set()
                for c, p in self._inputs_of(dep):
                    for key, prop in pairs:
                        if prop != p:
                            continue
                        if (not _is_pattern(c) and id_key(c) == key) or (
                                _is_pattern(c) and key in self.ids and _matches(c, self.ids[key])):
                            hits.add(f"{key}.{prop}")
                if hits and self._ready(dep):
                    queue(dep, hits, reason)

        on_new(initial)
        on_change(changed, None)
        rounds = 0
        while pending and rounds < self.max_rounds:
            rounds += 1
            # fire first a callback none of whose inputs another pending callback will change
            outputs_pending = {}
            for d, _, _ in pending:
                for c, p in _split_outputs(d["output"]):
                    outputs_pending.setdefault((id_key(c), p.split("@")[0]), []).append(d)
            pick = 0
            for i, (d, _, _) in enumerate(pending):
                blocked = any(any(o is not d for o in outputs_pending.get((id_key(c), p), []))
                              for c, p in self._inputs_of(d))
                if not blocked:
                    pick = i
                    break
            dep, prop_ids, why = pending.pop(pick)
            new_keys, changes = self._fire(dep, sorted(prop_ids), why)
            on_new(new_keys)
            on_change(changes, dep)

    def _value_entry(self, cid: Any, prop: str) -> Any:
        if _is_pattern(cid):
            return [self._value_entry(m, prop) for m in self.find(cid)]
        props = self.components.get(id_key(cid), {})
        entry = {"id": cid, "property": prop}
        if prop in props:
            entry["value"] = props[prop]
        return entry

    def _fire(self, dep: dict, prop_ids: list[str], why: str) -> tuple[list[str], list[tuple[str, str]]]:
        outs = _split_outputs(dep["output"])
        multi = dep["output"].startswith("..")
        outputs = []
        for cid, prop in outs:
            prop = prop.split("@")[0]
            if _is_pattern(cid):
                outputs.append([{"id": m, "property": prop} for m in self.find(cid)])
            else:
                outputs.append({"id": cid, "property": prop})
        body = {
            "output": dep["output"],
            "outputs": outputs if multi else outputs[0],
            "inputs": [self._value_entry(i["id"], i["property"]) for i in dep["inputs"]],
            "state": [self._value_entry(s["id"], s["property"]) for s in dep["state"]],
            "changedPropIds": prop_ids,
        }
        raw = json.dumps(body)
        c0, t0 = time.thread_time(), time.perf_counter()
        r = self.client.post("/_dash-update-component", data=raw, content_type="application/json")
        seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
        self._record(dep["output"], len(r.data), len(raw), seconds, r.status_code, why, cpu)
        if r.status_code == 204:  # PreventUpdate
            return [], []
        if r.status_code != 200:
            self.errors.append(f"{dep['output']}: HTTP {r.status_code}: {r.data[:500]!r}")
            return [], []
        payload = r.get_json()
        new_keys: list[str] = []
        changes: list[tuple[str, str]] = []
        for key, props in (payload.get("response") or {}).items():
            target = self.components.get(key)
            if target is None:
                continue
            for prop, value in props.items():
                if isinstance(value, dict) and value.get(_PATCH) == _PATCH:
                    target[prop] = apply_patch(target.get(prop), value["operations"])
                else:
                    target[prop] = value
                changes.append((key, prop))
                self._walk(target[prop], new_keys)
        return new_keys, changes

    def _record(self, output, bytes_out, bytes_in, seconds, status, why, cpu=0.0) -> None:
        self.requests.append(Request(output, bytes_out, bytes_in, seconds, status, why, cpu))


def apply_patch(value: Any, operations: list[dict]) -> Any:
    """Apply dash.Patch operations (as serialised) to a JSON value."""
    import copy

    value = copy.deepcopy(value)
    for op in operations:
        loc = op["location"]
        params = op.get("params", {})
        if not loc:
            if op["operation"] == "Assign":
                value = params["value"]
            continue
        parent = value
        for k in loc[:-1]:
            parent = parent[k]
        last = loc[-1]
        name = op["operation"]
        if name == "Assign":
            parent[last] = params["value"]
        elif name == "Extend":
            parent[last].extend(params["value"])
        elif name == "Append":
            parent[last].append(params["value"])
        elif name == "Prepend":
            parent[last].insert(0, params["value"])
        elif name == "Merge":
            parent[last].update(params["value"])
        elif name == "Delete":
            del parent[last]
        elif name == "Clear":
            parent[last].clear()
        else:
            raise NotImplementedError(name)
    return value
