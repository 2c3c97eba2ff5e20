"""The results JSON, the PNG chart and the Markdown table of bench/README.md."""

import json
from pathlib import Path
from typing import Any

START = "<!-- results:start -->"
END = "<!-- results:end -->"


def _f(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of issue 7 with the figure measured in this run."""
    out: list[dict[str, Any]] = []
    life = results["lifecycle"]
    ours = life["tipsplit"].get("64", {}).get("per_second")
    seed = life.get("seed_literal", {}).get("64", {}).get("per_second")
    limit = life.get("limit", {}).get("pgbench", {}).get("best_tps")

    def add(name: str, target: str, measured: Any, met: bool | None) -> None:
        out.append({"target": name, "wanted": target, "measured": measured, "met": met})

    add("lifecycles/s at 64 tasks", "≥ 2,000/s", ours, ours is not None and ours >= 2000)
    share = round(ours / limit, 3) if ours and limit else None
    add("share of the pgbench limit", "≥ 65 %", share, share is not None and share >= 0.65)
    speedup = round(ours / seed, 2) if ours and seed else None
    add("speed-up over seed-literal at 64 tasks", "≥ 2x", speedup, speedup is not None and speedup >= 2)
    sizes = results["latency"]
    smallest = sizes[min(sizes, key=int)] if sizes else {}
    store_p50 = smallest.get("hybrid_durable_store", {}).get("p50_ms")
    hit_p50 = smallest.get("hybrid_get_redis_hit", {}).get("p50_ms")
    add("durable store p50", "≤ 1 ms", store_p50, store_p50 is not None and store_p50 <= 1.0)
    add("Redis-hit get p50", "≤ 0.3 ms", hit_p50, hit_p50 is not None and hit_p50 <= 0.3)
    e2e = results["e2e"].get("64", {}).get("settled_per_second")
    add("end to end at 64 clients", "≥ 200 payments/s", e2e, e2e is not None and e2e >= 200)
    flat = results["scale"].get("ratios", {}).get("lifecycle_64_at_scale_over_empty")
    add(f"lifecycle at {results['scale'].get('rows', 0):,} rows vs empty", "flat (≥ 0.85)", flat,
        flat is not None and flat >= 0.85)
    growth = results["memory"].get("growth_second_round_pct")
    add("RSS growth over the second round", "flat (≤ 5 %)", growth, growth is not None and growth <= 5)
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"**{results['form']} run, {results['date']}** — `{results['command']}` — "
        f"{m['nproc']} × {m['cpu_model']}, {m['ram_gb']} GB RAM, load average {m['loadavg_at_start']} at start, "
        f"{results.get('loadavg_at_end')} at end; {results.get('duration_seconds')} s in all.",
        "",
        "**1. Store and get latency, concurrency 1 (ms)**",
        "",
        "| entries | hybrid store p50 / p99 | Redis-hit get p50 / p99 | Redis-miss get p50 / p99 "
        "| file store p50 / p99 | file get p50 / p99 | file ÷ hybrid (store, get) |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, row in results["latency"].items():
        def pp(name: str) -> str:
            return f"{_f(row[name]['p50_ms'], 3)} / {_f(row[name]['p99_ms'], 3)}"
        r = row["ratios"]
        lines.append(
            f"| {int(size):,} | {pp('hybrid_durable_store')} | {pp('hybrid_get_redis_hit')} | "
            f"{pp('hybrid_get_redis_miss')} | {pp('file_store')} | {pp('file_get')} | "
            f"{_f(r['file_store_p50_over_hybrid_store_p50'])}x, {_f(r['file_get_p50_over_hybrid_hit_p50'])}x |"
        )
    life = results["lifecycle"]
    limit = life.get("limit", {})
    pg = limit.get("pgbench", {})
    rb = limit.get("redis_benchmark", {})
    lines += [
        "",
        "**2. Storage lifecycle (store → lock → get → archive and unlock), lifecycles/s**",
        "",
        "| tasks | tipsplit /s (p50 / p99 ms; CPU ms/op: Python, PostgreSQL) "
        "| seed-literal /s (p50 / p99 ms; CPU ms/op: Python, PostgreSQL) | tipsplit ÷ seed | tipsplit ÷ pgbench limit |",
        "|---|---|---|---|---|",
    ]
    for conc, ours in life["tipsplit"].items():
        seed = life.get("seed_literal", {}).get(conc, {})
        lines.append(
            f"| {conc} | {_f(ours['per_second'], 0)} ({_f(ours['p50_ms'])} / {_f(ours['p99_ms'])}; "
            f"{_f(ours['python_cpu_ms_per_op'], 3)}, {_f(ours.get('postgres_cpu_ms_per_op'), 3)}) | "
            f"{_f(seed.get('per_second'), 0)} ({_f(seed.get('p50_ms'))} / {_f(seed.get('p99_ms'))}; "
            f"{_f(seed.get('python_cpu_ms_per_op'), 3)}, {_f(seed.get('postgres_cpu_ms_per_op'), 3)}) | "
            f"{_f(life['ratios'].get(f'tipsplit_over_seed_{conc}'))}x | "
            f"{_f(life['ratios'].get(f'tipsplit_over_pgbench_{conc}'), 3)} |"
        )
    pg_runs = ", ".join(f"{c} clients {_f(v.get('tps'), 0)}" for c, v in pg.get("clients", {}).items())
    spread = "; ".join(
        f"{name} at {conc} tasks " + " / ".join(_f(rate, 0) for rate in run.get("rounds_per_second", []))
        for name in ("tipsplit", "seed_literal") for conc, run in life.get(name, {}).items()
    )
    lines += [
        "",
        f"Each figure is the median of the rounds run alternately (lifecycles/s per round: {spread}).",
        "",
        f"Limit: pgbench (`-M prepared`, the lifecycle's {pg.get('statements_per_lifecycle', '?')} statements per "
        f"transaction): {pg_runs or pg.get('skipped', '–')}; best {_f(pg.get('best_tps'), 0)} lifecycles/s. "
        f"redis-benchmark ({rb.get('clients', '?')} clients): "
        + (", ".join(f"{k} {_f(v, 0)}/s" for k, v in rb.get("ops_per_second", {}).items()) or rb.get("skipped", "–"))
        + f" → {_f(rb.get('lifecycles_per_second'), 0)} lifecycles/s for the Redis part.",
        "",
        "**3. End to end over HTTP (service and simulator in separate processes)**",
        "",
        "| POS clients | created /s | settled /s | create-invoice p50 / p99 ms | payment→forwarded p50 / p99 ms "
        "| CPU ms/payment: service, PostgreSQL, simulator | ÷ reference: service, PostgreSQL, simulator "
        "| simulator share | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, row in results["e2e"].items():
        cpu = row["cpu_ms_per_payment"]
        over = row.get("cpu_over_reference", {})
        lines.append(
            f"| {clients} | {_f(row['created_per_second'], 1)} | {_f(row['settled_per_second'], 1)} | "
            f"{_f(row['create_invoice']['p50_ms'], 1)} / {_f(row['create_invoice']['p99_ms'], 1)} | "
            f"{_f(row['payment_to_forwarded']['p50_ms'], 0)} / {_f(row['payment_to_forwarded']['p99_ms'], 0)} | "
            f"{_f(cpu['service'])}, {_f(cpu.get('postgres'))}, {_f(cpu['simulator'])} | "
            f"{_f(over.get('service_over_python_loop'), 4)}, {_f(over.get('postgres_over_pgbench'), 4)}, "
            f"{_f(over.get('simulator_over_python_loop'), 4)} | "
            f"{_f(row['simulator_cpu_share'], 3)} | {row['errors']} |"
        )
    lines += reference_lines(results.get("reference"), results.get("blink_latency"))
    scale = results["scale"]
    st = scale.get("stats_endpoint", {})
    lines += [
        "",
        f"**4. Scale: {scale.get('rows', 0):,} rows in payment_splits and in payment_events** "
        f"(bulk load {scale.get('bulk_load_seconds')} s)",
        "",
        "| measure | empty database | at scale | ratio (scale ÷ empty) |",
        "|---|---|---|---|",
    ]
    for conc in scale.get("lifecycle", {}).get("tipsplit", {}):
        big = scale["lifecycle"]["tipsplit"][conc]["per_second"]
        small = results["lifecycle"]["tipsplit"].get(conc, {}).get("per_second")
        lines.append(f"| lifecycles/s, {conc} tasks | {_f(small, 0)} | {_f(big, 0)} | {_f(ratio_(big, small))} |")
    for kind in ("uncached", "cached"):
        small = st.get("small", {}).get(kind, {})
        big = st.get("scale", {}).get(kind, {})
        lines.append(
            f"| GET /api/stats {kind} p50 / p99 ms | {_f(small.get('p50_ms'))} / {_f(small.get('p99_ms'))} | "
            f"{_f(big.get('p50_ms'))} / {_f(big.get('p99_ms'))} | {_f(ratio_(big.get('p50_ms'), small.get('p50_ms')))} |"
        )
    mem = results["memory"]
    lines += [
        "",
        f"**5. Memory**: service RSS {_f(mem.get('rss_mb_start'), 1)} MB at start, "
        f"{_f(mem.get('rss_mb_after_first'), 1)} MB after {_f(mem.get('payments_per_round'))} payments, "
        f"{_f(mem.get('rss_mb_after_second'), 1)} MB after {_f(mem.get('payments_per_round'))} more "
        f"({_f(mem.get('growth_second_round_pct'), 1)} % in the second round).",
        *hot_path_lines(results.get("hot_path")),
        "",
        "**Targets**",
        "",
        "| target | wanted | measured | met |",
        "|---|---|---|---|",
    ]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['wanted']} | {_f(t['measured'], 3)} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def reference_lines(ref: dict[str, Any] | None, latency: dict[str, Any] | None) -> list[str]:
    """The reference workloads the CPU ratios divide by, and payment→forwarded against a distant Blink."""
    lines: list[str] = []
    if ref:
        loop, pg = ref["python_loop"], ref["pgbench"]
        lines += [
            "",
            f"Reference workloads, timed before and after this section: a fixed pure-Python loop "
            f"({_f(loop['iterations'])} iterations) {' / '.join(_f(v, 1) for v in loop['ms'])} ms CPU "
            f"(mean {_f(loop['mean_ms'], 1)}); `{pg['command']}` "
            f"{' / '.join(_f(v, 0) for v in pg['ms']) or pg['runs'][0].get('skipped', '–')} ms wall "
            f"(mean {_f(pg['mean_ms'], 0)}). The ratios are CPU ms per payment ÷ the mean reference time "
            f"(service and simulator ÷ the loop, PostgreSQL backends ÷ pgbench).",
        ]
    if latency:
        fwd = latency["payment_to_forwarded"]
        lines += [
            "",
            f"With every Blink call answered {latency['blink_latency_ms']} ms late (simulator latency setting), "
            f"{latency['clients']} POS client, {latency['settled']} of {latency['payments']} payments: "
            f"payment→forwarded p50 {_f(fwd['p50_ms'], 0)} ms, p99 {_f(fwd['p99_ms'], 0)} ms "
            f"({_f(latency['payment_to_forwarded_p50_in_latencies'], 1)} × the latency; 7 sequential Blink calls "
            f"would be 7 ×, 3-leg concurrency about 3 ×).",
        ]
    return lines


def hot_path_lines(hot: dict[str, Any] | None) -> list[str]:
    """Section 6: PostgreSQL round trips per status poll (target 0 on a hit) and the CPU of idle streams."""
    if not hot:
        return []
    hit, miss, st = hot["status_poll_hit"], hot["status_poll_miss"], hot["streams"]
    return [
        "",
        "**6. Hot read path** (status polls of a pending sale; idle server-sent-event streams)",
        "",
        "| measure | view in Redis (hit) | view deleted before each poll (miss) |",
        "|---|---|---|",
        f"| PostgreSQL round trips per poll (target 0 on a hit) | {_f(hit['round_trips_per_poll'], 3)} "
        f"| {_f(miss['round_trips_per_poll'], 3)} |",
        f"| polls (round trips during / in an idle stretch as long) | {_f(hit['polls'])} "
        f"({_f(hit['round_trips'])} / {_f(hit['idle_round_trips'])}) | {_f(miss['polls'])} "
        f"({_f(miss['round_trips'])} / {_f(miss['idle_round_trips'])}) |",
        f"| poll latency p50 / p99 ms | {_f(hit['latency']['p50_ms'])} / {_f(hit['latency']['p99_ms'])} "
        f"| {_f(miss['latency']['p50_ms'])} / {_f(miss['latency']['p99_ms'])} |",
        "",
        f"Service CPU over {_f(st['window_seconds'], 1)} s: {_f(st['service_cpu_ms_per_s_without'])} ms/s with no "
        f"stream open, {_f(st['service_cpu_ms_per_s_with'])} ms/s with {_f(st['open'])} idle streams open "
        f"(on {_f(st['payments'])} pending sales); PostgreSQL round trips in that window: "
        f"{_f(st['postgres_round_trips_in_window'])}.",
    ]


def ratio_(a: Any, b: Any) -> float | None:
    return round(a / b, 2) if a and b else None


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4), dpi=80)
    life = results["lifecycle"]
    concs = list(life["tipsplit"])
    width = 0.25
    xs = range(len(concs))
    axes[0].bar([x - width for x in xs], [life["tipsplit"][c]["per_second"] for c in concs], width, label="tipsplit")
    axes[0].bar(list(xs), [life.get("seed_literal", {}).get(c, {}).get("per_second", 0) for c in concs], width,
                label="seed-literal")
    best = life.get("limit", {}).get("pgbench", {}).get("best_tps")
    if best:
        axes[0].axhline(best, color="grey", linestyle="--", label="pgbench limit")
    axes[0].set_xticks(list(xs), [f"{c} tasks" for c in concs])
    axes[0].set_title("storage lifecycles/s")
    axes[0].legend(fontsize=8)
    sizes = list(results["latency"])
    for name, label in (("hybrid_durable_store", "hybrid store"), ("hybrid_get_redis_hit", "hybrid get (hit)"),
                        ("file_store", "file store"), ("file_get", "file get")):
        axes[1].plot([int(s) for s in sizes], [results["latency"][s][name]["p50_ms"] for s in sizes], "o-",
                     label=label)
    axes[1].set_xscale("log")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("entries")
    axes[1].set_title("p50 latency (ms), concurrency 1")
    axes[1].legend(fontsize=8)
    e2e = results["e2e"]
    clients = list(e2e)
    axes[2].bar([str(c) for c in clients], [e2e[c]["settled_per_second"] for c in clients], label="settled/s")
    axes[2].set_xlabel("POS clients")
    axes[2].set_title("end to end payments/s")
    fig.suptitle(f"tipsplit bench — {results['form']} — {results['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write(results: dict[str, Any], out_dir: Path, stem: str, *, with_chart: bool, readme: Path | None) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / f"{stem}.json", "table": out_dir / f"{stem}.md"}
    paths["json"].write_text(json.dumps(results, indent=1) + "\n")
    table = markdown(results)
    paths["table"].write_text(table)
    if with_chart:
        paths["png"] = out_dir / f"{stem}.png"
        chart(results, paths["png"])
    if readme is not None:
        text = readme.read_text()
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")
    return paths
