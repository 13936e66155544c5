#!/usr/bin/env python3
"""Renders a bench/results/*.json file as the Markdown tables of docs/BENCHMARKS.md."""

import json
import sys


def f(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def ratio(a, b, digits=2):
    return None if not a or not b else a / b


def fanout_table(out, r, fo, title, targets):
    sizes = [str(s) for s in r["sizes"] if str(s) in fo]
    first = sizes[0]
    base = fo[first].get("ssh_true", {}).get("median_s")
    probe1 = fo[first].get("ssh_probe_n1", {}).get("median_s")
    out.append(f"### Fan-out, {title}: full read-only probe set of `diagnose`, median of {r['runs']} runs (seconds, wall)")
    out.append("")
    if base:
        out.append(f"One `ssh host true` **{f(base)} s**; the probe script of one node over one ssh **{f(probe1)} s**.")
        out.append("")
    out.append("| nodes | floor: `ssh host true` ×N in parallel | nats-rescue diagnose | nats-rescue status | parallel-ssh | Ansible ad-hoc | Ansible ad-hoc (pipelining) | diagnose ÷ floor | diagnose ÷ pssh | best Ansible ÷ diagnose | peak RSS nats-rescue | load (median) |")
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in sizes:
        row = fo[s]
        g = lambda t, key="median_s": (row.get(t) or {}).get(key)  # noqa: E731
        nr, fl, ps = g("nats_rescue"), g("floor"), g("pssh")
        an, anp = g("ansible"), g("ansible_pipelining")
        best_an = min([x for x in (an, anp) if x is not None], default=None)
        rss = max([x for x in (g("nats_rescue", "peak_rss_kb"), g("nats_rescue_status", "peak_rss_kb")) if x], default=None)
        fails = sum((row.get(t) or {}).get("failed", 0) for t in row)
        note = f" ({fails} failed runs)" if fails else ""
        rl = sorted((row.get("nats_rescue") or {}).get("reached") or [])
        nr_cell = f(nr)
        if rl and rl[0] < int(s):
            nr_cell += f" ⚠ reached {rl[len(rl) // 2]}/{s} (median; min {rl[0]})"
        rf, rp, ra = ratio(nr, fl), ratio(nr, ps), ratio(best_an, nr)
        out.append(f"| {s}{note} | {f(fl)} | {nr_cell} | {f(g('nats_rescue_status'))} | {f(ps)} | {f(an)} | {f(anp)} | "
                   f"{'—' if rf is None else f'{rf:.2f}×'} | {'—' if rp is None else f'{rp:.2f}×'} | {'—' if ra is None else f'{ra:.1f}×'} | "
                   f"{'—' if rss is None else f'{rss / 1024:.1f} MB'} | {f(g('nats_rescue', 'load_median'), 1)} |")
        if targets is not None:
            ok = lambda x, lim, le=True: "—" if x is None else ("yes" if (x <= lim if le else x >= lim) else "**no**")  # noqa: E731
            if s in ("3", "10", "60"):
                targets.append((f"diagnose ≤ 0.85× floor, {s} hosts", "—" if rf is None else f"{rf:.2f}×", ok(rf, 0.85)))
                targets.append((f"diagnose ≤ 0.6× parallel-ssh, {s} hosts", "—" if rp is None else f"{rp:.2f}×", ok(rp, 0.6)))
            if ra is not None:
                targets.append((f"≥ 5× faster than Ansible (best), {s} hosts", f"{ra:.1f}×", ok(ra, 5, False)))
            if s == "200":
                targets.append(("peak RSS ≤ 50 MB at 200 hosts", "—" if rss is None else f"{rss / 1024:.1f} MB", ok(rss and rss / 1024, 50)))
    if targets is not None and "3" in fo and "60" in fo:
        x = ratio((fo["60"].get("nats_rescue") or {}).get("median_s"), (fo["3"].get("nats_rescue") or {}).get("median_s"))
        targets.append(("60 hosts ≤ 2× the 3-host time (diagnose)", "—" if x is None else f"{x:.2f}×",
                        "—" if x is None else ("yes" if x <= 2 else "**no**")))
    out.append("")
    out.append("Min–max per cell (s):")
    out.append("")
    for s in sizes:
        parts = []
        for t, v in fo[s].items():
            if v.get("min_s") is not None:
                parts.append(f"{t} {v['min_s']:.2f}–{v['max_s']:.2f}")
        out.append(f"- {s} nodes: " + ", ".join(parts))
    out.append("")


def main():
    r = json.load(open(sys.argv[1]))
    out = []
    env = r.get("env", {})
    out.append(f"Run {r.get('started')} → {r.get('finished')}; load average at start `{r.get('load_start')}`, at end `{r.get('load_end')}`.")
    out.append("")
    if env:
        out.append("| | |")
        out.append("|---|---|")
        for k, v in env.items():
            out.append(f"| {k} | `{v}` |")
        out.append("")
    lc = r.get("login_cost") or {}
    for variant, v in lc.items():
        out.append(f"Login cost `{variant}`: `ssh n1 true` median {f(v.get('ssh_true_median_s'), 3)} s "
                   f"(min {f(v.get('ssh_true_min_s'), 3)} s); on the host: `{v.get('remote_env')}`.")
    if lc:
        out.append("")
    targets = []
    for key, title in (("fanout", "every SSH command pays a fixed 0.1 s login cost (default)"),
                       ("fanout_zero", "zero login cost")):
        fo = r.get(key)
        if fo:
            fanout_table(out, r, fo, title, targets if key == "fanout" else None)
    if targets:
        out.append("### Targets (issue #17), ratios within this run, fixed login cost")
        out.append("")
        out.append("| target | measured | met |")
        out.append("|---|---:|:---:|")
        for t in targets:
            out.append(f"| {t[0]} | {t[1]} | {t[2]} |")
        out.append("")
    rec = r.get("recovery")
    if rec:
        m = rec["median"]
        out.append(f"### Time to recovery from quorum loss (2 of 3 servers killed), median of {len(rec['runs']['tool'])} runs (seconds from start)")
        out.append("")
        out.append("| path | start command sent | both servers answer | leader elected (observer) | leader noticed | noticed − elected | command finished |")
        out.append("|---|---:|---:|---:|---:|---:|---:|")
        for name, label in (("tool", "`nats-rescue run insufficient-nodes --yes`"), ("manual", "by hand: `ssh nodeN ctl start` ×2 in parallel, poll `/jsz` every 0.25 s")):
            x = m[name]
            out.append(f"| {label} | {f(x['first_start_sent_s'])} | {f(x['servers_up_s'])} | {f(x['leader_true_s'])} | "
                       f"{f(x['leader_seen_s'])} | {f(x['detect_latency_s'])} | {f(x['total_s'])} |")
        t, h = m["tool"], m["manual"]
        if t["leader_seen_s"] is not None and h["leader_seen_s"] is not None:
            up = t["servers_up_s"] - h["servers_up_s"]
            det = (t["detect_latency_s"] or 0) - (h["detect_latency_s"] or 0)
            out.append("")
            out.append(f"Overhead of the tool over the manual path: **{up + det:+.2f} s** = {up:+.2f} s until both servers "
                       f"answer again + {det:+.2f} s from the election to noticing it (the election itself, "
                       f"{f(t['election_after_up_s'])} s vs {f(h['election_after_up_s'])} s after the servers are up, "
                       f"is the servers' own and random). Raw difference of the medians of 'leader noticed': "
                       f"{t['leader_seen_s'] - h['leader_seen_s']:+.2f} s. Target ≤ +0.5 s: "
                       f"{'met' if up + det <= 0.5 else 'missed by %.2f s' % (up + det - 0.5)}.")
        out.append("")
    j = r.get("journal")
    if j:
        out.append(f"### Journal: {j['records']} appends (redact + hash chain + write + fsync each), 5 runs")
        out.append("")
        out.append(f"Median **{j['median_records_per_s']:.0f} records/s** (runs: {', '.join(f'{x:.0f}' for x in j['runs'])}); journal size {j['bytes']} bytes.")
        out.append("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
