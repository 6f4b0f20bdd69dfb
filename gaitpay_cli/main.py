"""`gaitpay`: run the local stack, look at it, follow its traces."""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from gaitpay_cli import stack, traces
from mesh import config

app = typer.Typer(help="GaitPay: zero-interface checkout. The local stack, traces and settings.",
                  no_args_is_help=True, add_completion=False)
config_app = typer.Typer(help="Settings of the services and the stack.", no_args_is_help=True)
app.add_typer(config_app, name="config")
bench_app = typer.Typer(help="Benchmarks that print numbers.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
from gaitpay_cli.admin_commands import audit_app, templates_app, vault_app  # noqa: E402

app.add_typer(audit_app, name="audit")
app.add_typer(vault_app, name="vault")
app.add_typer(templates_app, name="templates")
from gaitpay_cli.edge_commands import edge_app  # noqa: E402

app.add_typer(edge_app, name="edge")
from gaitpay_cli.partner_commands import partner_app  # noqa: E402

app.add_typer(partner_app, name="partner")
console = Console()
err = Console(stderr=True)


@contextlib.contextmanager
def _stack_errors(command: str) -> Iterator[None]:
    """A StackError is the user's to act on: print it, exit 1, no traceback."""
    try:
        yield
    except stack.StackError as exc:
        err.print(f"[red]gaitpay {command}:[/red] {exc}")
        raise typer.Exit(1) from None


def _stage_bars(progress: Any, prefix: str = "") -> Callable[[str, int, int], None]:
    """A progress callback (stage, done, total) that gives each stage its own bar."""
    bars: dict[str, Any] = {}

    def report(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress.add_task(f"{prefix}{stage}", total=total)
        progress.update(bars[stage], completed=done)

    return report


def _settings() -> config.Settings:
    try:
        return config.load()
    except config.ConfigError as exc:
        err.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


@app.command()
def up(timeout: float = typer.Option(60.0, help="Seconds to wait for each component or service.")) -> None:
    """Start every component and service on 127.0.0.1 and wait until all are healthy."""
    settings = _settings()
    t0 = time.monotonic()

    def report(name: str, address: str, seconds: float) -> None:
        console.print(f"  [green]✓[/green] {name:<10} {address:<24} ready")

    console.print(f"starting the GaitPay stack from [bold]{settings.home}[/bold]")
    with _stack_errors("up failed"):
        state = stack.up(settings, report, timeout_s=timeout)
    console.print(f"[bold green]all {len(state.records)} parts healthy[/bold green] in "
                  f"{time.monotonic() - t0:.1f} s. `gaitpay status` to look, `gaitpay down` to stop.")
    rest = state.env.get("GAITPAY_GATEWAY_HTTP_ADDR")
    if rest:
        console.print(f"partner REST API: http://{rest}/v1/... (OpenAPI at http://{rest}/openapi.json; "
                      "`gaitpay partner create-key` issues a key)")


@app.command()
def down() -> None:
    """Stop everything `gaitpay up` started (by pid), services first."""
    settings = _settings()
    with _stack_errors("down"):
        stopped = stack.down(settings)
    console.print(f"stopped {len(stopped)} processes: {', '.join(stopped)}" if stopped else "no stack was running")


@app.command()
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Each component and service with its health. Exit code 1 if anything is unhealthy."""
    settings = _settings()
    with _stack_errors("status"):
        report = stack.status(settings)
    rows = report["components"]
    assert isinstance(rows, list)
    if as_json:
        print(json.dumps(report, indent=2))
    elif not rows:
        console.print(f"no stack running from {settings.home}")
    else:
        table = Table(title=f"GaitPay stack ({report['home']})")
        for column in ("name", "kind", "address", "pid", "health"):
            table.add_column(column)
        for row in rows:
            mark = "[green]healthy[/green]" if row["healthy"] else f"[red]{row['detail']}[/red]"
            table.add_row(row["name"], row["kind"], row["address"], str(row["pid"] or "-"), mark)
        console.print(table)
    if rows and not all(r["healthy"] for r in rows):
        raise typer.Exit(1)


@app.command("trace")
def trace_cmd(
    trace_id: Optional[str] = typer.Argument(None, help="Trace id (a unique prefix is enough)."),
    limit: int = typer.Option(20, help="How many recent traces to list without an id."),
) -> None:
    """List recent traces, or draw one as a waterfall (from the local trace files)."""
    settings = _settings()
    spans = traces.load(settings.trace_dir)
    if not spans:
        err.print(f"no spans in {settings.trace_dir} (traces go to the OTLP collector when one is configured)")
        raise typer.Exit(1)
    if trace_id is None:
        console.print(traces.summaries(spans, limit))
        return
    try:
        console.print(traces.waterfall(spans, trace_id))
    except LookupError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@config_app.command("docs")
def config_docs() -> None:
    """Print the settings reference (docs/configuration.md)."""
    print(config.documentation(), end="")


@config_app.command("show")
def config_show() -> None:
    """The settings in force, secrets masked."""
    settings = _settings()
    for key, value in config.as_environment(settings).items():
        secret = any(word in key for word in ("TOKEN", "SECRET", "KEY")) and value
        print(f"{key}={'********' if secret else value}")


from gaitpay_cli import gait_commands  # noqa: E402 - registered after the apps exist

app.command("embed")(gait_commands.embed)
app.command("train")(gait_commands.train)
app.command("eval")(gait_commands.evaluate)
bench_app.command("embed")(gait_commands.bench_embed)


@bench_app.command("matcher")
def bench_matcher(
    customers: str = typer.Option("10000,100000", help="Gallery sizes, comma-separated (1000000 for the big one)."),
    windows: int = typer.Option(2000, help="Windows streamed per size."),
    index: str = typer.Option("IVF_FLAT,FLAT", help="Milvus index types to compare, comma-separated "
                              "(IVF_FLAT: fast, approximate; FLAT: exact; HNSW: --milvus server only)."),
    payload: str = typer.Option("features", help="What the windows carry: features (embeddings, from an edge "
                                "with the model on board) or keypoints (the matcher embeds them)."),
    milvus: str = typer.Option("lite", help="lite: embedded milvus-lite (the local default); server: an embedded "
                               "Milvus standalone server (time ticks, consistency levels, HNSW), as production runs."),
    consistency: str = typer.Option("Bounded", help="Search consistency levels to compare, comma-separated "
                                    "(Bounded, the matcher's default; Strong)."),
    body_measures: bool = typer.Option(False, "--body-measures/--no-body-measures",
                                       help="Enrol customers with body measures and send them on every window (a "
                                       "store with calibrated cameras), so the matcher weighs them too."),
) -> None:
    """Window-to-decision latency and windows/s on embedded Milvus, beside exact numpy search."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from gaitpay_cli import bench_matcher as bench

    from mesh.config import MILVUS_CONSISTENCY, MILVUS_INDEXES

    if milvus not in ("lite", "server"):
        console.print(f"[red]--milvus {milvus}: expected lite or server[/red]")
        raise typer.Exit(2)
    kinds = [x.strip().upper() for x in index.split(",") if x.strip()]
    unknown = [k for k in kinds if k not in MILVUS_INDEXES or (k == "HNSW" and milvus == "lite")]
    if unknown or not kinds:
        console.print(f"[red]--index {index}: expected IVF_FLAT, FLAT or AUTOINDEX, or HNSW with --milvus server "
                      "(embedded milvus-lite refuses HNSW)[/red]")
        raise typer.Exit(2)
    levels = [x.strip().capitalize() for x in consistency.split(",") if x.strip()]
    if not levels or any(level not in MILVUS_CONSISTENCY for level in levels):
        console.print(f"[red]--consistency {consistency}: expected {' or '.join(MILVUS_CONSISTENCY)}[/red]")
        raise typer.Exit(2)
    if payload not in ("features", "keypoints"):
        console.print(f"[red]--payload {payload}: expected features or keypoints[/red]")
        raise typer.Exit(2)
    results = []
    with contextlib.ExitStack() as components:
        uri = None
        if milvus == "server":  # one server for every run (it takes a minute to start)
            from gaitpay_cli import milvus_server

            with console.status("starting an embedded Milvus standalone server"):
                try:
                    uri = components.enter_context(milvus_server.running(Path(tempfile.mkdtemp(prefix="gaitpay-milvus-"))))
                except milvus_server.MilvusServerError as exc:
                    console.print(f"[red]{exc}[/red]")
                    raise typer.Exit(1) from None
        for n in [int(x) for x in customers.split(",") if x.strip()]:
            for kind in kinds:
                for level in levels:
                    with Progress(TextColumn("{task.description}"), BarColumn(),
                                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                  console=console) as progress:
                        results.append(bench.run(n, windows, _stage_bars(progress, f"{n:,} {kind} {level}: "),
                                                 milvus_uri=uri, index_type=kind, payload=payload, engine=milvus,
                                                 consistency=level, body_measures=body_measures))
    engine = "embedded milvus-lite" if milvus == "lite" else "embedded Milvus standalone server"
    weighed = ", with body measures" if body_measures else ""
    table = Table(title=f"matcher: window arrival -> decision ({payload} windows{weighed}, {engine})")
    for c in ("customers", "index", "consistency", "windows", "p50 ms", "p99 ms", "windows/s", "recall@5 Milvus",
              "recall@5 exact", "exact search p50 / p99 ms"):
        table.add_column(c)
    for r in results:
        table.add_row(f"{r.customers:,}", r.index, r.consistency, str(r.windows), f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}",
                      f"{r.windows_per_s:,.0f}", f"{r.recall5_milvus:.3f}", f"{r.recall5_exact:.3f}",
                      f"{r.exact_p50_ms:.2f} / {r.exact_p99_ms:.2f}")
    console.print(table)


@bench_app.command("identity")
def bench_identity(
    customers: int = typer.Option(50, min=1, help="Customers to create and enrol."),
    walks: int = typer.Option(4, min=1, max=16, help="Walks enrolled per customer."),
) -> None:
    """Enrolment latency (p50/p99) through the running stack, beside a read in the same run."""
    from rich.progress import Progress

    from gaitpay_cli import bench_identity as bench
    from gaitpay_cli.admin_commands import service_address
    from mesh.client import open_sync_channel

    settings = _settings()
    channel = open_sync_channel(settings, identity="operator", service="identity",
                                address=service_address(settings, "identity"))
    with Progress(console=console) as progress:
        task = progress.add_task("enrolling", total=customers)
        rows = bench.run(channel, customers, walks, lambda i: progress.update(task, completed=i))
    channel.close()
    table = Table(title=f"identity: {customers} customers, {walks} walks each")
    for column in ("call", "p50 ms", "p99 ms", "x baseline p50"):
        table.add_column(column)
    base = rows[-1].pct(50)
    for row in rows:
        table.add_row(row.name, f"{row.pct(50):.1f}", f"{row.pct(99):.1f}", f"{row.pct(50) / base:.1f}")
    console.print(table)


def _running_stack() -> tuple[stack.StackState, config.Settings]:
    """The running local stack and the settings a client of it uses (exit 1 when none runs)."""
    state = stack.running_state(_settings())
    if state is None:
        err.print("no running stack under this GAITPAY_HOME: `gaitpay up` first")
        raise typer.Exit(1)
    return state, config.load(environ=dict(state.env))


@bench_app.command("checkout")
def bench_checkout(
    customers: int = typer.Option(10, min=1, help="Customers with a saved card (half Stripe, half Razorpay)."),
    sessions: int = typer.Option(100, min=1, help="Auto-charged checkouts to time."),
) -> None:
    """Exit-to-captured latency of auto-charged sessions through the running stack (billing,
    identity, payment, the local gateways), beside a GetSession read in the same run."""
    import statistics

    from rich.progress import Progress

    from gaitpay_cli import demo as demo_run

    state, client_settings = _running_stack()
    with Progress(console=console) as progress:
        show = _stage_bars(progress)
        demo = demo_run.Demo(client_settings, dict(state.env), demo_run.DemoOptions(), show)
        result = demo_run.bench_checkout(demo, customers, sessions, show)
    table = Table(title=f"checkout: {sessions} auto-charged sessions, {customers} customers")
    for column in ("measure", "p50 ms", "p99 ms", "x baseline p50"):
        table.add_column(column)
    base = statistics.median(result["get_session_ms"])
    import numpy as np

    for name, values in result.items():
        table.add_row(name, f"{statistics.median(values):.1f}", f"{float(np.percentile(values, 99)):.1f}",
                      f"{statistics.median(values) / base:.1f}")
    console.print(table)


@bench_app.command("gateway")
def bench_gateway(
    requests_per_run: int = typer.Option(500, "--requests", min=10, help="Reads timed each way per run."),
    runs: int = typer.Option(3, min=1, help="Runs (medians of the per-run figures are reported)."),
) -> None:
    """The partner REST gateway's added latency over direct gRPC (p50/p99), on the running stack."""
    import statistics

    from gaitpay_cli import bench_gateway as bench

    state, client_settings = _running_stack()
    with console.status(f"timing {runs} x {requests_per_run} reads each way"):
        results = bench.run(client_settings, dict(state.env), requests_per_run, runs)
    table = Table(title=f"GetSession: direct gRPC (mTLS) vs the REST gateway, {runs} runs x {requests_per_run}")
    for column in ("path", "p50 ms", "p99 ms", "x direct p50"):
        table.add_column(column)
    direct = [t.row(t.direct_ms) for t in results]
    gateway = [t.row(t.gateway_ms) for t in results]
    d50, d99 = statistics.median(p for p, _ in direct), statistics.median(p for _, p in direct)
    g50, g99 = statistics.median(p for p, _ in gateway), statistics.median(p for _, p in gateway)
    table.add_row("direct gRPC (baseline)", f"{d50:.2f}", f"{d99:.2f}", "1.0")
    table.add_row("REST gateway", f"{g50:.2f}", f"{g99:.2f}", f"{g50 / d50:.1f}")
    table.add_row("added by the gateway", f"{g50 - d50:.2f}", f"{g99 - d99:.2f}", "")
    console.print(table)
    console.print("per run p50 ms (direct / gateway): " + ", ".join(f"{a[0]:.2f} / {b[0]:.2f}"
                                                                    for a, b in zip(direct, gateway)))


@bench_app.command("stack")
def bench_stack(runs: int = typer.Option(5, min=1, help="How many up/down cycles (medians are reported).")) -> None:
    """Time `gaitpay up` and measure the memory of the whole running stack."""
    from gaitpay_cli import bench_stack as bench

    settings = _settings()
    if stack.running_state(settings):
        err.print("a stack is running from this GAITPAY_HOME: `gaitpay down` first (the bench starts its own)")
        raise typer.Exit(1)
    samples = []
    with console.status("measuring") as spinner:
        for i in range(runs):
            spinner.update(f"up/down cycle {i + 1} of {runs}")
            samples.extend(bench.measure(settings, 1))
    table = Table(title=f"gaitpay up: {runs} runs")
    for column in ("part", "RSS MiB (median)", "PSS MiB (median)"):
        table.add_column(column)
    import statistics

    for name in samples[0].rss_mib:
        table.add_row(name, f"{statistics.median(s.rss_mib[name] for s in samples):.0f}",
                      f"{statistics.median(s.pss_mib[name] for s in samples):.0f}")
    console.print(table)
    result = bench.summary(samples)
    console.print(f"up: median {result['up_seconds_median']:.2f} s (min {result['up_seconds_min']:.2f}, "
                  f"max {result['up_seconds_max']:.2f}); whole stack RSS {result['rss_mib_median']:.0f} MiB, "
                  f"PSS {result['pss_mib_median']:.0f} MiB")


@app.command()
def demo(
    customers: int = typer.Option(40, min=1, max=2000, help="Synthetic customers to enrol."),
    visits: int = typer.Option(120, min=1, max=20000, help="Store visits to simulate."),
    seed: int = typer.Option(7, help="Seed of the walkers, the visit plan and the baskets."),
    report: Optional[str] = typer.Option(None, help="Write the summary and every visit to this JSON file."),
    stranger_share: float = typer.Option(0.3, min=0.0, max=1.0, help="Share of visits by people never enrolled."),
    keep_up: bool = typer.Option(False, help="Leave the stack running afterwards (to look around)."),
) -> None:
    """The main job: bring the local stack up, enrol customers, simulate store visits with a
    gateway outage and an edge link cut, and print what happened (and write it to --report)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    import grpc

    from gaitpay_cli import demo as demo_run
    from mesh.telemetry import setup_tracing

    settings = _settings()
    started_here = False
    state = stack.running_state(settings)
    if state is None:
        console.print(f"starting the GaitPay stack from [bold]{settings.home}[/bold]")
        with _stack_errors("demo: up failed"):
            state = stack.up(settings, lambda name, address, seconds: console.print(
                f"  [green]✓[/green] {name:<10} {address:<24} ready"))
        started_here = True
    env = {k: v for k, v in state.env.items()}
    if not env.get("GAITPAY_RAZORPAY_BASE_URL") or not env.get("GAITPAY_STRIPE_API_BASE"):
        err.print("gaitpay demo needs the local gateways (localstripe and the fake Razorpay): it injects an "
                  "outage into them. Unset GAITPAY_STRIPE_API_KEY / GAITPAY_RAZORPAY_KEY_ID.")
        raise typer.Exit(2)
    client_settings = config.load(environ=env)
    setup_tracing(client_settings, "demo")
    options = demo_run.DemoOptions(customers=customers, visits=visits, seed=seed, stranger_share=stranger_share,
                                   report=Path(report) if report else None)
    try:
        with Progress(TextColumn("{task.description:<20}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            summary, visited = demo_run.Demo(client_settings, env, options, _stage_bars(progress)).run()
    except grpc.RpcError as exc:
        err.print(f"[red]gaitpay demo:[/red] a service refused a call: {exc.code().name}: {exc.details()} "
                  f"(logs under {settings.home / 'logs'})")
        raise typer.Exit(1) from None
    finally:
        from opentelemetry import trace

        provider = trace.get_tracer_provider()
        if hasattr(provider, "force_flush"):
            provider.force_flush()
        if started_here and not keep_up:
            stack.down(settings, stack.running_state(settings))
    table = Table(title=f"gaitpay demo: {customers} customers, {visits} visits, seed {seed}", show_header=False)
    table.add_column("figure")
    table.add_column("value")
    for name, value in demo_run.iter_rows(summary):
        table.add_row(name, value)
    console.print(table)
    if options.report:
        demo_run.write_report(options.report, options, summary, visited)
        console.print(f"report written to {options.report}")
    if started_here and not keep_up:
        console.print("stack stopped (--keep-up leaves it running; then the trace above opens with gaitpay trace)")
    ok = summary.false_charges == 0 and summary.double_charges == 0 and summary.lost_charges == 0 \
        and summary.ledger_balanced
    raise typer.Exit(0 if ok else 1)


@bench_app.command("edge")
def bench_edge(
    runs: int = typer.Option(3, min=1, help="Runs per stream (medians are reported)."),
    clip: Optional[Path] = typer.Option(None, help="The Sports2D demo clip (default: fetched from PyPI and cached)."),
) -> None:
    """Frames per second of one camera on a 1080p stream with one and with three people
    (CPU, or the GPU where ONNX Runtime offers one), with stage timings, beside decoding alone."""
    from rich.progress import Progress

    from gaitpay_cli import bench_edge as bench

    if clip is None:
        from gaitpay_cli.real_videos import sports2d_demo

        clip = sports2d_demo()
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("preparing the streams", total=None)
        rows = bench.run(clip, runs, lambda text: progress.update(task, description=text))
    table = Table(title=f"edge: one camera, 1920x1080, {runs} runs each (median)")
    for column in ("people", "provider", "frames/s", "runs", "decode alone frames/s", "x decode",
                   "decode ms", "detect ms", "pose ms", "track ms", "stream ms"):
        table.add_column(column)
    for r in rows:
        s = r.stages_ms
        table.add_row(str(r.people), r.providers.removesuffix("ExecutionProvider"), f"{r.median_fps:.1f}",
                      "/".join(f"{v:.0f}" for v in r.fps), f"{statistics.median(r.decode_fps):.0f}",
                      f"{r.median_fps / statistics.median(r.decode_fps):.2f}",
                      *(f"{s[k]:.1f}" for k in ("decode", "detect", "pose", "track", "stream")))
    console.print(table)
