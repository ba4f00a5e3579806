"""The benchmark's table: medians of interleaved repeats with their spread, and ratios
(bench/run_bench.py measures, this summarises; docs/performance.md explains the columns).

A sample is one measurement: one mode (label), one number of calls, one payload size, one
GRE direction, one repeat. A row is every repeat of one (label, calls, payload, direction).
Spread is min-max over the repeats. A ratio is the ratio of the two rows' medians, and in
brackets the min-max of the per-repeat ratios (repeat i of this row against repeat i of the
other: they were measured next to each other, so drift of the machine cancels).
"""
import statistics

KERNEL_HELPER = "kernel-helper"
ROUTING = "routing"
BASELINE_SUFFIX = "@baseline"
DIRECTIONS = {"s2c": "server to client (the PAC's GRE toward the public address)",
              "c2s": "client to server (the PNS's GRE through the masquerade)"}


# What "CPU-seconds" means: all cores' busy time (the machine's cost, but a shared machine's
# other work counts too), or the time of what moves the packets (bench_lab.OwnCpu).
CPU_BASES = {"machine": "busy_cpu_seconds", "own": "own_cpu_seconds"}


def per_cpu_second(sample, basis):
    spent = sample.get(CPU_BASES[basis]) or 0
    return sample["received"] / spent if spent > 0 else 0.0


def group(samples):
    """Rows in the order the samples came, each with its samples in repeat order."""
    rows = {}
    for s in samples:
        rows.setdefault((s["label"], s["calls"], s["payload"], s["direction"]), []).append(s)
    return rows


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarise(key, samples, basis):
    label, calls, payload, direction = key
    rates = [per_cpu_second(s, basis) for s in samples]
    lost = [1 - s["received"] / s["sent"] if s["sent"] else 0.0 for s in samples]
    return {"label": label, "calls": calls, "payload": payload, "direction": direction, "repeats": len(samples),
            "per_cpu_second": median(rates), "per_cpu_second_min": min(rates), "per_cpu_second_max": max(rates),
            "per_cpu_second_each": [round(r) for r in rates],
            "received_pps": median(s["received"] / s["seconds"] for s in samples if s["seconds"]),
            "lost": median(lost), "lost_max": max(lost),
            "busy_cpu_seconds": median(s["busy_cpu_seconds"] for s in samples),
            "own_cpu_seconds": median(s.get("own_cpu_seconds") for s in samples),
            "softirq_cpu_seconds": median(s["softirq_cpu_seconds"] for s in samples),
            "daemon_cpu_seconds": median(s["daemon_cpu_seconds"] for s in samples),
            "kib_per_call": median(s.get("kib_per_call") for s in samples),
            "rss_kib": median(s.get("daemon_rss_kib") for s in samples),
            "repeat_rates": {s["repeat"]: r for s, r in zip(samples, rates)}}


def ratio(row, other):
    """(ratio of medians, min of per-repeat ratios, max of them), or None."""
    if other is None or not other["per_cpu_second"]:
        return None
    paired = [rate / other["repeat_rates"][rep] for rep, rate in row["repeat_rates"].items()
              if other["repeat_rates"].get(rep)]
    spread = len(paired) > 1  # one repeat has no spread
    return (row["per_cpu_second"] / other["per_cpu_second"], min(paired) if spread else None,
            max(paired) if spread else None)


def baseline_of(label):
    return None if label.endswith(BASELINE_SUFFIX) else label + BASELINE_SUFFIX


def summary_rows(samples, basis="machine"):
    """Every row with its ratios against the kernel helper, routing and the baseline build;
    ordered by calls, payload, direction, then the order the modes ran in."""
    rows = {key: summarise(key, group_samples, basis) for key, group_samples in group(samples).items()}
    order = {label: i for i, label in enumerate(dict.fromkeys(k[0] for k in rows))}
    for (label, calls, payload, direction), row in rows.items():
        def against(other_label):
            return ratio(row, rows.get((other_label, calls, payload, direction)))
        row["vs_kernel_helper"] = against(KERNEL_HELPER) if label != KERNEL_HELPER else (1.0, None, None)
        row["vs_routing"] = against(ROUTING)
        row["vs_baseline"] = against(baseline_of(label)) if baseline_of(label) else None
    direction_order = list(DIRECTIONS)
    return sorted(rows.values(), key=lambda r: (r["calls"], r["payload"], direction_order.index(r["direction"]),
                                                order[r["label"]]))


def show_ratio(r, spread=True):
    if r is None:
        return "-"
    if not spread or r[1] is None:
        return "%.2f" % r[0]
    return "%.2f (%.2f-%.2f)" % r


def show(value, fmt, none="-"):
    return none if value is None else fmt % value


HEAD = ["mode", "calls", "payload", "direction", "repeats", "pkts per CPU-s", "min-max", "vs kernel helper",
        "vs baseline", "vs routing", "lost", "received pps", "busy CPU-s", "softirq", "own CPU-s", "pptp-alg",
        "KiB/call"]


def table_lines(rows):
    lines = []
    for r in rows:
        daemon = r["label"].startswith(("pptp-alg", "netdev-prototype"))  # both run the daemon
        lines.append([r["label"], str(r["calls"]), str(r["payload"]), r["direction"], str(r["repeats"]),
                      "%.0f" % r["per_cpu_second"], "%.0f-%.0f" % (r["per_cpu_second_min"], r["per_cpu_second_max"]),
                      show_ratio(r["vs_kernel_helper"]), show_ratio(r["vs_baseline"]),
                      show_ratio(r["vs_routing"], spread=False),
                      "%.1f%%" % (100 * r["lost"]), show(r["received_pps"], "%.0f"), "%.2f" % r["busy_cpu_seconds"],
                      "%.2f" % r["softirq_cpu_seconds"], show(r["own_cpu_seconds"], "%.2f"),
                      "%.2f" % r["daemon_cpu_seconds"] if daemon else "-",
                      show(r["kib_per_call"], "%.2f") if daemon else "-"])
    return lines


def table(rows, markdown):
    lines = table_lines(rows)
    if markdown:
        out = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
    else:
        widths = [max(len(x) for x in col) for col in zip(HEAD, *lines)]
        out = ["  ".join(x.ljust(w) for x, w in zip(line, widths)).rstrip() for line in [HEAD] + lines]
    return "\n".join(out)


BASIS_TEXT = {"machine": "busy CPU-second of the whole machine (busy CPU-s)",
              "own": "CPU-second of the sender, the softirq threads and pptp-alg (own CPU-s; not other work on the "
                     "machine)"}


def legend(repeats, basis):
    return ("pkts per CPU-s: median over %d interleaved repeat(s) of packets received per %s; min-max: its spread."
            "\nvs ...: ratio of the medians, in brackets min-max of the "
            "per-repeat ratios (each repeat against the other mode's same repeat).\ndirection: s2c = %s; c2s = %s.\n"
            "KiB/call: the daemon's resident memory (VmRSS) with the calls up minus before the set-up, per call."
            % (repeats, BASIS_TEXT[basis], DIRECTIONS["s2c"], DIRECTIONS["c2s"]))


def setup_lines(samples, first_payload):
    """Call set-up through the router per mode and number of calls: medians over repeats."""
    ones = [s for s in samples if s["payload"] == first_payload and s["direction"] == samples[0]["direction"]
            and s.get("setup_seconds")]
    out = []
    for (label, calls, _, _), group_samples in group(ones).items():
        seconds = median(s["setup_seconds"] for s in group_samples)
        out.append("  %-24s %6d calls in %6.2f s: %6.0f calls/s; Outgoing-Call-Request to reply: median %.3f ms,"
                   " p99 %.3f ms" % (label, calls, seconds, calls / seconds if seconds else 0,
                                    median(s["rtt_median_ms"] for s in group_samples),
                                    median(s["rtt_p99_ms"] for s in group_samples)))
    return out


def memory_lines(rows):
    first = {}
    for r in rows:
        if r["rss_kib"] is not None:
            first.setdefault((r["label"], r["calls"]), r)
    return ["  %-24s %6d calls: %d KiB (%s KiB per call over the daemon before the set-up)"
            % (label, calls, r["rss_kib"], show(r["kib_per_call"], "%.2f")) for (label, calls), r in first.items()]
