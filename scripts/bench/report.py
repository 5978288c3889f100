#!/usr/bin/env python3
"""Print the benchmark results (the JSON files the other scripts wrote) as one Markdown table.

Usage: report.py RESULTS-DIR "CONTEXT LINE"
"""

import json
import os
import sys

DIR, CONTEXT = sys.argv[1], sys.argv[2]

# The best-known Python peer on the same kind of estate (1,000 resources in moto).
PEER_SCAN_S = 87.0
PEER_API_CALLS = 989
PEER_REPEAT_S = 86.0
PEER_START_S = 1.5


def load(name):
    with open(os.path.join(DIR, name)) as f:
        return json.load(f)


def ms(value):
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def mib(kib):
    return f"{kib / 1024:.0f} MiB"


def speedup(peer, ours):
    return f"{peer / ours:,.0f}× faster" if ours > 0 else "—"


def spread(s, upper="p90"):
    return f"median **{ms(s['median'])}**, {upper} {ms(s[upper])}, max {ms(s['max'])}"


rows = []


def row(section, what, ours, peer="", gain=""):
    rows.append(f"| {section} | {what} | {ours} | {peer} | {gain} |")


cold = load("cold_start.json")
s = cold["serve_stdio_initialize_ms"]
row("a", f"cold start: `serve --stdio --demo --no-prewarm` launched → `initialize` answer read "
    f"({s['n']} runs)", spread(s), f"{PEER_START_S} s", speedup(PEER_START_S * 1000, s["median"]))
f = cold["harness_floor_cat_ms"]
row("a", "↳ harness floor: the same measurement with `cat` as the server", spread(f))
c = cold["check_demo_ms"]
row("a", f"`check --demo` (5,000 resources), whole process ({c['n']} runs)", spread(c))

for name in ("http_demo.json", "http_inventory.json", "http_inventory_distinct.json"):
    h = load(name)
    source = "demo estate" if h["label"] == "demo" else "inventory file"
    cached = "a new question each call: warm scan, answer cache missed" \
        if h.get("distinct_questions") else \
        f"the same question: answer cache hit on {h.get('answer_cache_hits', 0)} of {h['calls']}"
    what = f"`check_tag_compliance` over HTTP, {source}, {h['resources']:,} resources " \
           f"({h['calls']} calls, {cached}, {h['connections']} keep-alive connection" \
           f"{'s' if h['connections'] != 1 else ''}, {h['response_bytes'] / 1024:.0f} KiB answers)"
    for label, key in (("client, reply event read", "client_reply_ms"),
                       ("client, response complete", "client_complete_ms"),
                       ("server, tool time from the log", "server_ms")):
        v = h[key]
        stall_note = ""
        if key == "client_complete_ms" and h["tail_stalls"]:
            stall_note = f"; end of body held > 20 ms on {h['tail_stalls']} of {h['calls']} calls"
        row("b", f"{what}: {label}",
            f"median **{ms(v['median'])}**, p99 {ms(v['p99'])}, max {ms(v['max'])}{stall_note}")
        what = "↳ same"
    row("b", "↳ first call, made as soon as the server listens (waits for its start-up scan)",
        f"{ms(h['first_call_ms'])} (server {ms(h['first_call_server_ms'])})")

big = load("http_inventory.json")
row("c", f"`serve --http` with {big['resources']:,} resources loaded: VmHWM after the first call",
    f"**{mib(big['vm_hwm_kib_after_first_call'])}** "
    f"(VmRSS {mib(big['vm_rss_kib_after_first_call'])}; after {big['calls']} more calls: "
    f"VmHWM {mib(big['vm_hwm_kib_at_end'])}, VmRSS {mib(big['vm_rss_kib_at_end'])})")
ci = load("check_inventory.json")
row("c", f"`tagwarden check --inventory FILE --limit 0`, whole process, the same "
    f"{ci['file_bytes'] / 1e6:.0f} MB file ({ci['method']})",
    f"max RSS **{mib(ci['max_rss_kib'])}**, wall {ms(ci['wall_s_median'] * 1000)} "
    f"(median of {len(ci['runs'])})")

aws = load("aws_scan.json")
n = aws["seeded"]["listed_by_tagging_api"]
# The peer's figures are for 1,000 resources: no speed-up is claimed for another size.
same_size = n == 1000
note = "" if same_size else " (1,000 resources)"
walls = ", ".join(f"{r['wall_s']:.2f}" for r in aws["runs"])
row("d", f"full AWS scan, moto, {n:,} resources in us-east-1: `check --aws --regions us-east-1 "
    f"--format json --limit 0`, whole process (median of {len(aws['runs'])})",
    f"**{ms(aws['wall_s_median'] * 1000)}** (runs: {walls} s)", f"{PEER_SCAN_S:.0f} s{note}",
    speedup(PEER_SCAN_S, aws["wall_s_median"]) if same_size else "—")
calls = "/".join(map(str, aws["api_calls"]))
seen = "/".join(map(str, aws["moto_get_resources"]))
agree = "agree on every run" if aws["api_calls"] == aws["moto_get_resources"] else "DISAGREE"
row("d", "↳ AWS API calls: `data_quality.api_calls` vs GetResources requests moto served",
    f"**{calls}** vs {seen} ({agree}; {aws['seeded']['pages_expected']} pages of 100 needed)",
    f"{PEER_API_CALLS}{note}",
    f"{PEER_API_CALLS / aws['api_calls'][0]:,.0f}× fewer" if same_size else "—")
first, repeat = aws["mcp_first_call"], aws["mcp_repeat_call"]
row("d", "↳ over MCP (`serve --stdio --aws`): first `check_tag_compliance` (scans)",
    f"{ms(first['ms'])} ({first['moto_get_resources']} GetResources)")
row("d", "↳ over MCP: repeat in the same session (cache hit)",
    f"**{ms(repeat['ms'])}** ({repeat['moto_get_resources']} GetResources, cache hit: "
    f"{str(repeat['cache_hit']).lower()})", f"{PEER_REPEAT_S:.0f} s{note}",
    speedup(PEER_REPEAT_S * 1000, repeat["ms"]) if same_size else "—")

hist = load("history.json")
row("e", f"`get_violation_history` (days_back 400, group_by day) over {hist['snapshots']} daily "
    f"snapshots → {hist['points']} points ({hist['calls']} calls over stdio): server, tool time",
    f"median **{ms(hist['server_ms']['median'])}**, p99 {ms(hist['server_ms']['p99'])}, "
    f"max {ms(hist['server_ms']['max'])}")
row("e", "↳ client, request → answer read",
    f"median {ms(hist['client_ms']['median'])}, p99 {ms(hist['client_ms']['p99'])}")
row("e", "↳ storing the snapshots (one `check --snapshot` process each, 1,000 resources)",
    f"{hist['store_s']:.1f} s in all; history.db {hist['history_db_bytes'] / 1e6:.1f} MB")

print("| | measurement | tagwarden | Python peer | speed-up |")
print("|---|---|---|---|---|")
print("\n".join(rows))
print()
print(CONTEXT)
