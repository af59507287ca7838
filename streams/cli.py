"""``parcelwatch`` command line.

worker, replay, alerts export and decide, desk, rules check and publish, simulate, demo.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import orjson
from pydantic import SecretStr, ValidationError

from detectors.errors import DetectorError
from streams.adapters import ADAPTERS, guess_format
from streams.errors import StreamsError
from streams.settings import DEV_SECRET, Settings
from streams.simulate import SCENARIOS

log = logging.getLogger("parcelwatch.cli")


def _settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(f"PARCELWATCH_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise StreamsError(f"bad settings: {problems}") from None


def cmd_worker(_args: argparse.Namespace) -> int:
    settings = _settings()
    from prometheus_client import CollectorRegistry

    from streams.app import create_app
    from streams.health import Health, serve
    from streams.metrics import Metrics

    check_window_layout(settings)
    metrics = Metrics(CollectorRegistry())
    health = Health()
    app = create_app(settings, metrics, health)
    tune_garbage_collection(settings.gc_young_threshold)
    try:
        if settings.metrics_port:
            serve(metrics.registry, health, settings.metrics_address, settings.metrics_port)
    except OSError as exc:
        raise StreamsError(
            f"cannot serve /metrics on {settings.metrics_address}:{settings.metrics_port} ({exc.strerror}); "
            "set PARCELWATCH_METRICS_PORT to a free port, or 0 to turn metrics off"
        ) from None
    # --quiet drops Faust's start-up banner: the log stays pure JSON lines.
    # --without-web: Faust's CLI would otherwise open its own web server on 0.0.0.0:6066 whatever the app
    # config says; our endpoints are served by streams.health on the configured address.
    loop = "aio" if settings.event_loop == "asyncio" else settings.event_loop  # Faust's name for asyncio
    sys.argv = ["parcelwatch", "--quiet", "--loop", loop, "worker", "--without-web", "--loglevel", settings.log_level]
    app.main()


def check_window_layout(settings: Settings) -> None:
    """Refuse, before joining the group, a shard count other than the one the deployment's window
    state was written with (a ConfigError: the CLI's exit 2), and warn of shard settings that are
    likely a mistake. Redis unreachable is not an answer: the worker starts, its store calls wait
    for Redis and check again."""
    from detectors.errors import StoreError
    from streams.wiring import load_ruleset, redis_client, shard_advice, window_config, window_store

    for advice in shard_advice(settings):
        log.warning("%s", advice)

    async def check() -> None:
        client = redis_client(settings)
        try:
            # the rules are read here too, before Redis is touched: bad rules are refused first, and
            # it runs before Faust's app is made: asyncio.run closes its loop and leaves none set
            await window_store(settings, client, window_config(settings, load_ruleset(settings))).check_layout()
        except StoreError as exc:
            log.warning("could not check the window store's shard count before starting: %s", exc)
        finally:
            await client.aclose()

    asyncio.run(check())


def tune_garbage_collection(young_threshold: int) -> None:
    """Fewer collections, and none of what start-up built.

    A batch allocates some ten objects an event, almost all freed by reference counting. With
    Python's default (a young collection every 700 allocations) the collector runs, and passes over
    the worker's long-lived objects (imports, Faust, entity caches), far more often than the few
    reference cycles need; benchmarks/throughput.py runs the worker both ways, side by side. What
    start-up built is frozen out of every collection; the caches filled later are not.
    """
    if young_threshold:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(young_threshold, middle, old)
    gc.freeze()


@contextlib.contextmanager
def _servers(settings: Settings, own: bool) -> Iterator[Settings]:
    """Self-started Tansu and redis-server when none are configured."""
    if not own:
        yield settings
        return
    from streams.servers import redis_server, tansu_broker

    with tansu_broker() as broker, redis_server() as redis:
        update: dict[str, object] = {"broker_url": broker.url, "redis_url": redis.url}
        if "PARCELWATCH_METRICS_PORT" not in os.environ:
            update["metrics_port"] = 0  # a throw-away worker serves no metrics unless asked to
        if settings.pseudonym_secret is None:
            update["pseudonym_secret"] = SecretStr(DEV_SECRET)
        yield settings.model_copy(update=update)


def _configured_servers() -> bool:
    return "PARCELWATCH_BROKER_URL" in os.environ or "PARCELWATCH_REDIS_URL" in os.environ


def cmd_replay(args: argparse.Namespace) -> int:
    from streams.replay import ReplayInput, run_replay

    inputs = [ReplayInput(Path(p), args.format or guess_format(Path(p))) for p in args.inputs]
    for item in inputs:
        if not item.path.is_file():
            raise StreamsError(f"input {item.path} does not exist")
    settings = _settings()
    own = not _configured_servers()
    if own and args.no_worker:
        raise StreamsError("--no-worker needs PARCELWATCH_BROKER_URL and PARCELWATCH_REDIS_URL of running servers")
    with _servers(settings, own) as live:
        summary = run_replay(live, inputs, args.alerts_out, with_worker=not args.no_worker, timeout_s=args.timeout)
    sys.stdout.write(summary.as_json().decode() + "\n")
    return 0


def cmd_alerts_export(args: argparse.Namespace) -> int:
    from streams.replay import export_alerts

    count = asyncio.run(export_alerts(_settings(), args.out))
    sys.stderr.write(f"wrote {count} alerts to {args.out}\n")
    return 0


def cmd_alerts_decide(args: argparse.Namespace) -> int:
    import time

    from detectors.feedback import decide
    from streams.wiring import build_detector, build_stores, redis_client

    settings = _settings()
    if args.suppress_days <= 0:
        raise StreamsError("--suppress-days must be positive")

    async def run() -> bytes:
        client = redis_client(settings)
        try:
            windows, alerts = build_stores(settings, build_detector(settings), client)
            decision = await decide(
                alerts,
                windows,
                args.alert_id,
                args.decision,
                args.analyst,
                args.note,
                now_ms=int(time.time() * 1000),
                suppress_for_s=int(args.suppress_days * 86400),
            )
            return orjson.dumps(decision.as_dict())
        finally:
            await client.aclose()

    sys.stdout.write(asyncio.run(run()).decode() + "\n")
    return 0


def cmd_desk(args: argparse.Namespace) -> int:
    from aiohttp import web

    from detectors.alert_store import RedisAlertStore
    from detectors.parcel_store import RedisParcelStore
    from streams.desk.index import AlertIndex
    from streams.desk.server import Desk, build_app
    from streams.wiring import load_ruleset, redis_client, window_config, window_store

    settings = _settings()
    address = args.address or settings.desk_address
    port = args.port or settings.desk_port
    client = redis_client(settings)
    desk = Desk(
        RedisAlertStore(client, prefix=settings.redis_prefix),
        window_store(settings, client, window_config(settings, load_ruleset(settings))),
        RedisParcelStore(client, prefix=settings.redis_prefix),
        AlertIndex(client, prefix=settings.redis_prefix),
        suppress_days=settings.desk_suppress_days,
    )
    sys.stderr.write(f"parcelwatch desk on http://{address}:{port}/ (alerts from {settings.redis_where})\n")
    try:
        web.run_app(build_app(desk), host=address, port=port, print=None, handle_signals=True)
    except OSError as exc:
        raise StreamsError(
            f"cannot serve the desk on {address}:{port} ({exc.strerror}); choose another with --port "
            "or PARCELWATCH_DESK_PORT"
        ) from None
    return 0


def cmd_rules_check(args: argparse.Namespace) -> int:
    from detectors.rules import load_rules

    rules = load_rules(args.file)
    sys.stdout.write(f"{args.file}: version {rules.version}, {len(rules.rules)} rules, valid\n")
    return 0


def cmd_rules_publish(args: argparse.Namespace) -> int:
    from streams.rules_control import publish_rules

    settings = _settings()
    rules = asyncio.run(publish_rules(settings, args.file))
    sys.stdout.write(
        f"published version {rules.version} ({len(rules.rules)} rules) to {settings.topic('rules.control')}; "
        "every worker applies it from its next batch\n"
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from streams.simulate import simulate

    truth = simulate(seed=args.seed, days=args.days, out=args.out, scale=args.scale, scenario=args.scenario)
    sys.stderr.write(
        f"wrote {truth['events']} events of {truth['parcels']} parcels ({len(truth['campaigns'])} campaigns) "
        f"to {args.out}; ground truth in {truth['truth_path']}\n"
    )
    return 0


def _table(alerts: Sequence[dict[str, object]]) -> str:
    header = f"{'severity':<9} {'rule':<22} {'entity':<18} {'ep':>2} {'parcels':>7} {'suspect kg':>10}  detected"
    lines = [header, "-" * len(header)]
    for a in sorted(alerts, key=lambda a: str(a["last_event_time"])):
        lines.append(
            f"{a['severity']!s:<9} {a['rule']!s:<22} {a['entity_type']!s:<18} {a['episode']!s:>2} "
            f"{a['parcel_count']!s:>7} {float(str(a['suspect_mass_kg'])):>10.1f}  {a['last_event_time']}"
        )
    return "\n".join(lines)


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from streams.replay import ReplayInput, run_replay
    from streams.simulate import simulate

    settings = _settings()
    with tempfile.TemporaryDirectory(prefix="pw-demo-") as tmp:
        stream = Path(tmp) / "stream.jsonl"
        truth = simulate(seed=args.seed, days=args.days, out=stream, scale=args.scale)
        sys.stderr.write(f"simulated {truth['events']} events, {len(truth['campaigns'])} smuggling campaigns\n")
        alerts_path = Path(tmp) / "alerts.jsonl"
        with _servers(settings, own=True) as live:
            sys.stderr.write("started Tansu and redis-server on free loopback ports; replaying...\n")
            summary = run_replay(live, [ReplayInput(stream, "canonical")], alerts_path, timeout_s=args.timeout)
        alerts = [orjson.loads(line) for line in alerts_path.read_bytes().splitlines() if line.strip()]
        sys.stdout.write(_table(alerts) + "\n\n")
        campaign_parcels = {p for c in truth["campaigns"] for p in c["parcel_ids"]}
        right = sum(1 for a in alerts if sum(p in campaign_parcels for p in a["parcel_ids"]) * 2 > len(a["parcel_ids"]))
        sys.stdout.write(f"{right} of {len(alerts)} alerts point mostly at campaign parcels (ground truth)\n")
        sys.stdout.write(summary.as_json().decode() + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="parcelwatch", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("worker", help="run the Faust worker (settings from PARCELWATCH_* variables)").set_defaults(
        func=cmd_worker
    )

    replay = sub.add_parser("replay", help="push recorded streams through the real pipeline")
    replay.add_argument("inputs", nargs="+", metavar="INPUT")
    replay.add_argument(
        "--format", choices=sorted(ADAPTERS), help="default: by file suffix (.csv, .xml, else canonical)"
    )
    replay.add_argument("--alerts-out", type=Path, help="write the alerts as JSON lines here")
    replay.add_argument("--no-worker", action="store_true", help="only publish; workers run elsewhere")
    replay.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for processing (900)")
    replay.set_defaults(func=cmd_replay)

    alerts = sub.add_parser("alerts", help="the alert store")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True)
    export = alerts_sub.add_parser("export", help="write the alert store as JSON lines")
    export.add_argument("--out", type=Path, required=True)
    export.set_defaults(func=cmd_alerts_export)
    decide = alerts_sub.add_parser(
        "decide", help="record an analyst's decision; a false positive suppresses the rule for the entity"
    )
    decide.add_argument("alert_id")
    decide.add_argument("decision", choices=["confirmed", "false_positive"])
    decide.add_argument("--analyst", required=True, help="who decides (kept with the decision)")
    decide.add_argument("--note", default="", help="why")
    decide.add_argument(
        "--suppress-days", type=float, default=90.0, help="how long a false positive silences the rule (90)"
    )
    decide.set_defaults(func=cmd_alerts_decide)

    desk = sub.add_parser("desk", help="the analyst desk: a web page to triage alerts (loopback by default)")
    desk.add_argument("--address", help="bind address (default PARCELWATCH_DESK_ADDRESS, 127.0.0.1)")
    desk.add_argument("--port", type=int, help="port (default PARCELWATCH_DESK_PORT, 8470)")
    desk.set_defaults(func=cmd_desk)

    rules = sub.add_parser("rules", help="the alert rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True)
    check = rules_sub.add_parser("check", help="validate a rules file as the worker would")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_rules_check)
    publish = rules_sub.add_parser("publish", help="validate, then send a rules file to every running worker")
    publish.add_argument("file", type=Path)
    publish.set_defaults(func=cmd_rules_publish)

    sim = sub.add_parser("simulate", help="write a synthetic recorded stream and its ground truth")
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--days", type=int, default=14)
    sim.add_argument("--scale", type=float, default=1.0, help="multiplies the legitimate background volume")
    sim.add_argument("--scenario", choices=sorted(SCENARIOS), default="default", help="campaign mix (default)")
    sim.add_argument("--out", type=Path, required=True)
    sim.set_defaults(func=cmd_simulate)

    demo = sub.add_parser("demo", help="embedded demo: own broker and Redis, simulate, replay, show alerts")
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--days", type=int, default=10)
    demo.add_argument("--scale", type=float, default=0.5)
    demo.add_argument("--timeout", type=float, default=600.0)
    demo.set_defaults(func=cmd_demo)
    return parser


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    # SystemExit unwinds the context managers: self-started servers and worker are stopped, temp dirs removed.
    raise SystemExit(143)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.func is not cmd_worker:  # the Faust worker handles its own signals
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        return int(args.func(args) or 0)
    except (StreamsError, DetectorError) as exc:
        sys.stderr.write(f"parcelwatch: {exc}\n")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
