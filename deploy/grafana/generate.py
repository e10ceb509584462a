#!/usr/bin/env python3
"""Writes memglass's Grafana dashboards (deploy/grafana/*.json) and the ConfigMap that
Grafana's dashboard sidecar loads (deploy/kubernetes/grafana-dashboards.yaml).

    deploy/grafana/generate.py          rewrite the files
    deploy/grafana/generate.py --check  exit 1 if a file differs from what would be written

The dashboards are data: this script only lays out panels and their PromQL, so a reader
edits one place (like kubernetes-mixin's jsonnet, without the toolchain). Every query
works on Prometheus and on Prometheus-compatible stores (VictoriaMetrics, Thanos, Mimir),
with or without a `node` target label: series are joined to their node by `instance`
through `memglass_node_info`. crates/memglass/tests/dashboards.rs runs every query against
a real Prometheus scraping a real agent.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DS = {"type": "prometheus", "uid": "${datasource}"}

# Joins any memglass series to its node (and filters by the node variable).
NODE_JOIN = '* on(instance) group_left(node) memglass_node_info{node=~"$node"}'
POD = 'namespace="$namespace", pod="$pod", container=""'
ANY_POD = 'pod!="", container=""'
NS_POD = 'namespace="$namespace", pod="$pod"'
WS_PODS = f"memglass_cgroup_memory_working_set_kubelet_bytes{{{ANY_POD}}}"
NODE_BREAKDOWN = 'memglass_node_memory_bytes{type=~"application|kernel_named|alloc_page|mem_free"}'
VERDICTS = ('memglass_pod_memory_sizing_verdict'
            '{verdict=~"over_requested|under_requested|no_request|no_limit|near_limit"} == 1')
# Figures a pod's memory is made of, without overlap (shmem and dirty are parts of them).
PIE_TYPES = "inactive_anon|active_anon|inactive_file|active_file|kernel|unevictable"
# The memory types a person can rank pods by (the `type` variable).
RANK_TYPES = ["working_set", "working_set_kubelet", "usage", "anon", "inactive_anon",
              "active_anon", "file", "active_file", "inactive_file", "shmem", "file_dirty",
              "file_writeback", "file_mapped", "kernel", "swap", "unevictable", "peak"]
# OOM kills of a window, right on Prometheus and VictoriaMetrics alike (docs/metrics.md):
# increase() for a victim's series that existed when the window began, and all of a series
# born inside it (Prometheus' increase() misses a series' first sample; VictoriaMetrics'
# counts it, so adding the two would count a new victim twice there).
def kills(selector, window="$__range"):
    x = f"memglass_oom_kills_total{{{selector}}}"
    existed = f"(increase({x}[{window}]) and {x} offset {window})"
    born = f"(max_over_time({x}[{window}]) unless {x} offset {window})"
    return f"({existed} or {born})"


def on_node(expr):
    return f"(({expr}) {NODE_JOIN})"


def any_type(selector):
    """Every per-cgroup figure as one series set with a `type` label, kept for $type."""
    return (
        "(\n"
        f'  label_replace(memglass_cgroup_memory_working_set_bytes{{{selector}}}, "type", "working_set", "", "")\n'
        f'  or label_replace(memglass_cgroup_memory_working_set_kubelet_bytes{{{selector}}}, "type", "working_set_kubelet", "", "")\n'
        f'  or label_replace(memglass_cgroup_memory_usage_bytes{{{selector}}}, "type", "usage", "", "")\n'
        f"  or memglass_cgroup_memory_bytes{{{selector}}}\n"
        ') and on(type) label_replace(vector(1), "type", "$type", "", "")'
    )


class Layout:
    """Panels placed left to right in rows of 24 columns."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def row(self, title):
        if self.x:
            self.y += self.row_h
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.x, self.y, self.row_h = 0, self.y + 1, 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


def target(expr, legend="", instant=False, fmt="time_series", ref="A"):
    t = {"datasource": DS, "refId": ref, "expr": expr, "legendFormat": legend}
    if instant:
        t.update({"instant": True, "range": False, "format": fmt})
    else:
        t.update({"range": True, "instant": False})
    return t


def panel(kind, title, description, targets, unit="bytes", **extra):
    p = {"type": kind, "title": title, "description": description, "datasource": DS,
         "targets": [dict(t, refId=chr(ord("A") + i)) for i, t in enumerate(targets)],
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
    p.update(extra)
    return p


def timeseries(title, description, targets, unit="bytes", stack=False):
    p = panel("timeseries", title, description, targets, unit)
    p["fieldConfig"]["defaults"]["custom"] = {"fillOpacity": 10 if stack else 0,
                                              "stacking": {"mode": "normal" if stack else "none"}}
    p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}}
    return p


def table(title, description, targets, unit="bytes", hide=()):
    p = panel("table", title, description, targets, unit)
    exclude = {"Time": True, "__name__": True, "job": True, "instance": True, "exported_node": True}
    exclude.update({h: True for h in hide})
    p["transformations"] = [{"id": "merge", "options": {}},
                            {"id": "organize", "options": {"excludeByName": exclude}}]
    p["options"] = {"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]}
    return p


def var_query(name, label, query, multi=False, include_all=False):
    v = {"name": name, "label": label, "type": "query", "datasource": DS,
         "query": {"query": query, "refId": name}, "definition": query, "refresh": 2,
         "sort": 1, "multi": multi, "includeAll": include_all, "hide": 0, "current": {}, "options": []}
    if include_all:
        v["allValue"] = ".*"
    return v


def datasource_var():
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "current": {}, "hide": 0, "options": [], "refresh": 1}


def node_var():
    return var_query("node", "Node", "label_values(memglass_node_info, node)", multi=True, include_all=True)


def dashboard(uid, title, description, layout, variables):
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["memglass", "memory", "kubernetes"], "editable": True, "graphTooltip": 1,
        "schemaVersion": 39, "version": 1, "refresh": "30s", "timezone": "",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [datasource_var(), *variables]},
        "annotations": {"list": []}, "links": [],
        "panels": layout.panels,
    }


def pods_dashboard():
    l = Layout()
    l.row("Pod memory distribution")
    l.add(panel("piechart", "Memory of $namespace/$pod by kind",
                "The pod cgroup's memory.stat split without overlap: anon and file LRUs "
                "(active/inactive), kernel memory and unevictable pages. shmem (tmpfs) sits "
                "on the anon lists, dirty pages on the file lists.",
                [target(f'sum by (type) (memglass_cgroup_memory_bytes{{{POD}, type=~"{PIE_TYPES}"}})',
                        "{{type}}", instant=True)],
                options={"pieType": "pie", "legend": {"displayMode": "table", "placement": "right",
                                                        "values": ["value", "percent"]},
                         "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}),
          10, 9)
    l.add(table("Working sets, limit and request of $namespace/$pod",
                "Both working sets side by side: the seeds' (anon + active_file) and kubelet's "
                "(usage − inactive_file, what evictions and kubectl top use); the pod cgroup's "
                "limit and the pod's effective memory request from its spec.",
                [target(f'label_replace(memglass_cgroup_memory_working_set_bytes{{{POD}}}, "figure", "working_set", "", "")', instant=True, fmt="table"),
                 target(f'label_replace(memglass_cgroup_memory_working_set_kubelet_bytes{{{POD}}}, "figure", "working_set_kubelet", "", "")', instant=True, fmt="table"),
                 target(f'label_replace(memglass_cgroup_memory_limit_bytes{{{POD}}}, "figure", "limit", "", "")', instant=True, fmt="table"),
                 target(f'label_replace(memglass_pod_memory_request_bytes{{{POD}}}, "figure", "request", "", "")', instant=True, fmt="table")],
                hide=("cgroup", "container")), 14, 9)

    l.row("Pod resource analysis")
    l.add(table("Top pods by $type",
                "Pods of the selected nodes ranked by the chosen memory type (the `type` "
                "variable), e.g. inactive_anon: anonymous memory not touched lately, the "
                "seeds' first suspect for a leak.",
                [target(f"topk(20, {on_node(any_type(ANY_POD))})", instant=True, fmt="table")],
                hide=("container",)), 24, 10)

    l.row("Pod memory details")
    l.add(timeseries("$namespace/$pod over time",
                     "Page cache (file), inactive_file, inactive_anon, active_anon, shmem and "
                     "dirty from memory.stat; both working sets; the limit and the request.",
                     [target(f'memglass_cgroup_memory_bytes{{{POD}, type=~"file|inactive_file|inactive_anon|active_anon|shmem|file_dirty"}}', "{{type}}"),
                      target(f"memglass_cgroup_memory_working_set_bytes{{{POD}}}", "working_set"),
                      target(f"memglass_cgroup_memory_working_set_kubelet_bytes{{{POD}}}", "working_set_kubelet"),
                      target(f"memglass_cgroup_memory_limit_bytes{{{POD}}}", "limit"),
                      target(f"memglass_pod_memory_request_bytes{{{POD}}}", "request")]), 16, 10)
    l.add(timeseries("Containers of $namespace/$pod",
                     "Each container's kubelet working set against its own cgroup limit.",
                     [target('memglass_cgroup_memory_working_set_kubelet_bytes{namespace="$namespace", pod="$pod", container!=""}', "{{container}}"),
                      target('memglass_cgroup_memory_limit_bytes{namespace="$namespace", pod="$pod", container!=""}', "{{container}} limit")]), 8, 10)

    l.row("Pod file cache")
    l.add(table("Files in the page cache of $namespace/$pod",
                "The largest files of the largest page-cache holders (memglass_file_cache_bytes; "
                "the agent measures them about once a minute): which files fill the pod's memory.",
                [target('sort_desc(memglass_file_cache_bytes{namespace="$namespace", pod="$pod"})', instant=True, fmt="table"),
                 target('memglass_file_cache_dirty_bytes{namespace="$namespace", pod="$pod"}', instant=True, fmt="table")],
                hide=("namespace", "pod")), 16, 9)
    l.add(table("OOM kills of $namespace/$pod",
                "Kills in the time range, by container, whose limit was hit (scope) and what "
                "dominated (cause).",
                [target(f"sum by (container, scope, cause) ({kills(NS_POD)})", instant=True, fmt="table")],
                unit="none"), 8, 9)
    l.add(table("Findings of $namespace/$pod",
                "What memglass finds wrong with the pod and its containers now (memglass_finding: "
                "OOM kills, near the limit, next to be evicted, leaks, requests to change, memory "
                "hiding in page cache, tmpfs, dirty pages, deleted files, the kernel). "
                "`memglass diagnose --pod` or the agent's Findings page give each one's figures "
                "and remedy.",
                [target(f"sum by (severity, kind, container) (memglass_finding{{{NS_POD}}})", instant=True, fmt="table")],
                unit="none"), 24, 7)
    return dashboard("memglass-pods", "memglass / Pods",
                     "Where a pod's memory is: by kind, ranked across the cluster, over time, "
                     "and which files fill its page cache.", l,
                     [node_var(),
                      var_query("namespace", "Namespace",
                                'label_values(memglass_cgroup_memory_usage_bytes{pod!=""}, namespace)'),
                      var_query("pod", "Pod",
                                'label_values(memglass_cgroup_memory_usage_bytes{namespace="$namespace", pod!="", container=""}, pod)'),
                      {"name": "type", "label": "Rank by", "type": "custom", "hide": 0,
                       "query": ",".join(RANK_TYPES), "current": {"text": "inactive_anon", "value": "inactive_anon"},
                       "options": [{"text": t, "value": t, "selected": t == "inactive_anon"} for t in RANK_TYPES],
                       "multi": False, "includeAll": False}])


def nodes_dashboard():
    l = Layout()
    l.row("Findings")
    l.add(table("Findings on the selected nodes",
                "Everything memglass finds wrong, per node, most severe first "
                "(memglass_finding; docs/diagnose.md lists the kinds). The agent's Findings page "
                "and `memglass diagnose` give each one's figures and what to do.",
                [target(f"sort_desc(sum by (node, severity, kind, namespace, pod, container) ({on_node('memglass_finding')}))",
                        instant=True, fmt="table")],
                unit="none"), 24, 8)

    l.row("OOM kills")
    l.add(table("OOM kills in the time range",
                "Every victim: its node, pod and container, whose limit was hit (node, kubepods "
                "= node allocatable, qos, pod, container, cgroup) and what dominated (anon, "
                "shmem, file, kernel).",
                [target(f"sum by (node, namespace, pod, container, scope, cause) ({on_node(kills(''))})", instant=True, fmt="table")],
                unit="none"), 16, 9)
    l.add(timeseries("OOM kills by scope and cause",
                     "Kills per interval, by whose limit and what filled it.",
                     [target(f"sum by (scope, cause) ({on_node('increase(memglass_oom_kills_total[$__rate_interval])')})", "{{scope}} / {{cause}}")],
                     unit="none"), 8, 9)

    l.row("Eviction")
    l.add(timeseries("Eviction signals against their thresholds",
                     "kubelet's memory.available and allocatableMemory.available, as kubelet "
                     "computes them, and the hard thresholds: kubelet evicts below them.",
                     [target(on_node("memglass_eviction_signal_available_bytes"), "{{node}} {{signal}}"),
                      target(on_node("memglass_eviction_signal_threshold_bytes"), "{{node}} {{signal}} threshold")]), 12, 9)
    l.add(panel("bargauge", "Room before eviction",
                "Available − threshold per node and signal: how much memory kubelet leaves "
                "before it starts evicting.",
                [target(f"sort({on_node('memglass_eviction_signal_available_bytes - memglass_eviction_signal_threshold_bytes')})",
                        "{{node}} {{signal}}", instant=True)],
                options={"orientation": "horizontal", "displayMode": "basic",
                         "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}), 12, 9)
    l.add(table("Who kubelet evicts next",
                "Each node's pods in kubelet's eviction order (rank 1 first; pods above their "
                "request first, then lower priority, then the largest excess); `next` is the "
                "first evictable one.",
                [target(f"sort({on_node('memglass_pod_eviction_rank <= 5')})", instant=True, fmt="table"),
                 target(f"{on_node('memglass_pod_eviction_next == 1')}", instant=True, fmt="table")],
                unit="none", hide=("container",)), 24, 9)

    l.row("Requests against allocatable")
    l.add(timeseries("Requests, limits and use against allocatable",
                     "What the scheduler fills (allocatable) with requests, never with real use: a "
                     "pod requesting more than allocatable − requests stays Pending.",
                     [target(on_node("memglass_node_allocatable_memory_bytes"), "{{node}} allocatable"),
                      target(on_node("memglass_node_memory_requests_bytes"), "{{node}} requests"),
                      target(on_node("memglass_node_memory_limits_bytes"), "{{node}} limits"),
                      target(f"sum by (node) ({on_node(WS_PODS)})", "{{node}} working set")]), 12, 9)
    l.add(table("Pods to resize",
                "Over- and under-requested pods with the request and limit memglass suggests "
                "from their measured peaks.",
                [target(on_node(VERDICTS), instant=True, fmt="table"),
                 target(f"{on_node('memglass_pod_memory_suggested_request_bytes')}", instant=True, fmt="table")],
                unit="none", hide=("container",)), 12, 9)

    l.row("Node memory")
    l.add(timeseries("Node memory breakdown",
                     "Application memory (LRUs, unevictable, hugetlb), named kernel memory, "
                     "alloc_page (handed out by the page allocator, named by no counter) and free.",
                     [target(on_node(NODE_BREAKDOWN), "{{node}} {{type}}")],
                     stack=True), 24, 9)
    return dashboard("memglass-nodes", "memglass / Nodes",
                     "Findings, OOM kills with whose limit was hit and why, kubelet's eviction "
                     "signals and next victims, and requests against allocatable, per node.", l,
                     [node_var()])


def configmap(dashboards):
    lines = ["# Grafana's dashboard sidecar (kube-prometheus-stack, the grafana chart) loads",
             "# ConfigMaps labelled grafana_dashboard=\"1\". Written by deploy/grafana/generate.py.",
             "apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: memglass-grafana-dashboards",
             "  namespace: memglass", "  labels:", "    app.kubernetes.io/name: memglass",
             "    grafana_dashboard: \"1\"", "data:"]
    for name, text in dashboards:
        lines.append(f"  {name}: |-")
        lines.extend("    " + line for line in text.splitlines())
    return "\n".join(lines) + "\n"


def outputs():
    dashboards = [("memglass-pods.json", pods_dashboard()), ("memglass-nodes.json", nodes_dashboard())]
    texts = [(name, json.dumps(d, indent=2, ensure_ascii=False) + "\n") for name, d in dashboards]
    files = {HERE / name: text for name, text in texts}
    files[REPO / "deploy/kubernetes/grafana-dashboards.yaml"] = configmap(texts)
    return files


def main(argv):
    check = argv[1:] == ["--check"]
    stale = []
    for path, text in outputs().items():
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    if stale:
        print(f"generate.py: out of date: {', '.join(str(p.relative_to(REPO)) for p in stale)}; "
              "run deploy/grafana/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
