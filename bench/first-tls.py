#!/usr/bin/env python3
"""Times a function binary's first TLS handshake with AWS, up to its ClientHello.

The bench's AWS endpoint speaks plain HTTP (moto's), so no figure of the bench
includes what a deployed function does first on every cold start: open a TLS
connection to an AWS endpoint. Here each binary is started with
AWS_ENDPOINT_URL=https://127.0.0.1:<port>, where this script listens, and the
script times, from the spawn:

- accept: the TCP connection arrives (the function's own start, up to its
  first AWS call);
- hello: the first bytes arrive, the TLS ClientHello, whose client random and
  key share are the process's first random bytes.

hello - accept is the client's work between connect and ClientHello; its
random generator's first seeding is in it. Then the connection is closed and
the process killed: nothing answers, so no certificate is needed and the
function's own TLS client (the bundled Amazon roots) is the one measured.

Only functions that call AWS inside their init (a secret read: 20 of the 26)
reach the endpoint without an event; the others make their first call in
their first request, which this script does not send.

    bench/first-tls.py --env-file .local/bench/env [--spawns 20] BINARY...

The env file is the one `infra/stack.sh up` prints (its variables give each
function its configuration; the stack itself is not called). Prints a
markdown table.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time


def read_env_file(path):
    env = {}
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, _, value = line.removeprefix("export ").partition("=")
            if value.startswith("'") and value.endswith("'"):
                value = value[1:-1].replace("'\\''", "'")
            env[name.strip()] = value
    return env


def one_start(binary, env, listener, timeout):
    """Spawn -> accept and spawn -> first bytes, in ms; None if it never came."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [binary], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        listener.settimeout(timeout)
        try:
            connection, _ = listener.accept()
        except socket.timeout:
            return None
        accepted = time.perf_counter()
        with connection:
            connection.settimeout(timeout)
            first = connection.recv(1)
            hello = time.perf_counter()
            if not first or first[0] != 0x16:  # a TLS handshake record
                raise SystemExit(f"{binary}: the first byte is not a TLS handshake record: {first!r}")
        return (accepted - started) * 1000, (hello - started) * 1000
    finally:
        process.kill()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", required=True)
    parser.add_argument("--spawns", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("binaries", nargs="+")
    args = parser.parse_args()

    stack = read_env_file(args.env_file)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    env = {
        **stack,
        "PATH": "/usr/bin:/bin",
        "AWS_ENDPOINT_URL": f"https://127.0.0.1:{port}",
        # One attempt: a refused handshake is not retried with backoff.
        "AWS_MAX_ATTEMPTS": "1",
        # Lambda's variables; the Runtime API is never reached.
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "RUST_LOG": "off",
    }
    env.pop("AWS_CA_BUNDLE", None)

    print("| binary | spawns | spawn -> connect (p50) | spawn -> ClientHello (p50) | connect -> ClientHello (p50, min-max) |")
    print("|---|--:|--:|--:|--:|")
    for binary in args.binaries:
        env["AWS_LAMBDA_FUNCTION_NAME"] = os.path.basename(binary)
        samples = []
        for _ in range(args.spawns):
            sample = one_start(binary, env, listener, args.timeout)
            if sample is None:
                print(f"{binary}: no connection within {args.timeout} s (no AWS call in its init?)", file=sys.stderr)
                break
            samples.append(sample)
        if not samples:
            print(f"| `{binary}` | 0 | – | – | – |")
            continue
        connect = [accept for accept, _ in samples]
        hello = [h for _, h in samples]
        gap = sorted(h - a for a, h in samples)
        print(
            f"| `{binary}` | {len(samples)} | {statistics.median(connect):.2f} ms | {statistics.median(hello):.2f} ms "
            f"| {statistics.median(gap):.2f} ms ({gap[0]:.2f}-{gap[-1]:.2f}) |"
        )


if __name__ == "__main__":
    main()
