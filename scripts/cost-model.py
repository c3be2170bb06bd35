#!/usr/bin/env python3
"""Monthly AWS cost of the API at 1 M, 10 M and 100 M requests, and the cost
of 1,000 sign-ins per auth memory size (docs/performance.md, "Cost model").

Every input is a named constant below: a price (AWS's public us-east-1 list
price, x86_64, on-demand, no free tier, checked 2026-12), a figure the bench
measured (`make bench`; the run is named in docs/performance.md), or an
assumption stated as one. Change a constant and rerun; nothing else is hidden.

    python3 scripts/cost-model.py            # markdown tables on stdout
"""

# ---------------------------------------------------------------- prices --
LAMBDA_GB_SECOND = 0.0000166667          # x86_64; arm64 is 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1e6
HTTP_API_PER_REQUEST = 1.00 / 1e6         # API Gateway HTTP API, first 300 M a month
DYNAMODB_PER_WRU = 0.625 / 1e6            # on-demand write request unit
DYNAMODB_PER_RRU = 0.125 / 1e6            # on-demand read request unit
EVENTBRIDGE_PER_EVENT = 1.00 / 1e6        # custom events put on the bus
PIPES_PER_EVENT = 0.40 / 1e6              # EventBridge Pipes, per 64 KB chunk
SQS_PER_REQUEST = 0.40 / 1e6              # standard queue, per 64 KB chunk
LAMBDA_CPU_FULL_AT_MB = 1769              # "at 1,769 MB a function has the equivalent of one vCPU"

# ------------------------------------------------ measured (bench, replayed) --
# CPU time of a warm request (ms), from `scripts/bench.sh --spawns 10
# --invocations 50`, 2026-12-03 11:37 UTC, idle machine (docs/performance.md):
# the median of the GET requests' "CPU per request" (0.35-0.67 ms over 16
# GETs). The writes' since their idempotency record rides in their
# transaction: `scripts/bench.sh --only floor,tenants,api-keys,billing
# --spawns 10 --invocations 50`, two runs, 2026-12-03 21:27-21:29 UTC
# (POST /v1/tenants 0.77 / 0.62, /v1/billing/usage 0.44 / 0.46,
# /v1/api-keys 0.91 / 0.91): the median, 0.70.
READ_OWN_MS = 0.41
WRITE_OWN_MS = 0.70
# argon2id (19 MiB, 2 passes, 1 lane) plus the login's own work at a full
# core: auth's warm `POST /v1/auth/login` CPU per request, the mean of two
# `scripts/bench.sh --only auth --spawns 4 --invocations 100` runs of the
# auth binary at opt-level 3 with argon2's working memory kept between
# hashes (16.8 and 15.7 ms; 27.3 and 26.1 ms without), 2026-12-04 20:51 UTC.
LOGIN_OWN_MS = 16.3

# ------------------------------------------------------------ assumptions --
# A DynamoDB call's round trip from Lambda in-region (ms). Not measurable
# here (moto is not DynamoDB); AWS quotes single-digit milliseconds.
DYNAMODB_CALL_MS = 5.0
# Calls per request, from the bench's AWS-calls column: a read is one Query
# (<= 4 KB, eventually consistent: 0.5 RRU) plus the rate-limit UpdateItem
# (1 WRU); a write (with an Idempotency-Key) is the rate limit and a
# transaction of ~4 items (item, audit, outbox, the idempotency record with
# its answer: 2 WRU each in a transaction) whose outbox row becomes one
# event through Pipes, the bus and one SQS delivery.
READ_CALLS, READ_RRU, READ_WRU = 2, 0.5, 1
WRITE_CALLS, WRITE_RRU, WRITE_WRU, WRITE_EVENTS = 2, 0, 1 + 4 * 2, 1
WRITE_SHARE = 0.10                        # one request in ten writes
MEMORY_MB = 256                           # template.yaml Globals


def per_request_cost(own_ms: float, calls: int, rru: float, wru: float, events: int) -> float:
    duration_s = (own_ms + calls * DYNAMODB_CALL_MS) / 1000
    lambda_cost = duration_s * MEMORY_MB / 1024 * LAMBDA_GB_SECOND + LAMBDA_PER_REQUEST
    dynamodb = rru * DYNAMODB_PER_RRU + wru * DYNAMODB_PER_WRU
    events_cost = events * (PIPES_PER_EVENT + EVENTBRIDGE_PER_EVENT + SQS_PER_REQUEST)
    return lambda_cost + HTTP_API_PER_REQUEST + dynamodb + events_cost


def monthly_table() -> str:
    read = per_request_cost(READ_OWN_MS, READ_CALLS, READ_RRU, READ_WRU, 0)
    write = per_request_cost(WRITE_OWN_MS, WRITE_CALLS, WRITE_RRU, WRITE_WRU, WRITE_EVENTS)
    mixed = (1 - WRITE_SHARE) * read + WRITE_SHARE * write
    rows = ["| requests a month | read only | 90 % reads, 10 % writes |", "|--:|--:|--:|"]
    for millions in (1, 10, 100):
        n = millions * 1e6
        rows.append(f"| {millions} M | ${n * read:,.2f} | ${n * mixed:,.2f} |")
    return "\n".join(rows)


def sign_in_table() -> str:
    rows = [
        "| auth memory | vCPU share | login duration | cost per 1,000 logins |",
        "|--:|--:|--:|--:|",
    ]
    for memory in (256, 512, 1024, 1769, 2048):
        share = min(1.0, memory / LAMBDA_CPU_FULL_AT_MB)
        # argon2id with one lane is one thread of CPU-bound work: its time
        # scales with the CPU share; the two DynamoDB calls do not.
        duration_ms = LOGIN_OWN_MS / share + 2 * DYNAMODB_CALL_MS
        cost = 1000 * (duration_ms / 1000 * memory / 1024 * LAMBDA_GB_SECOND + LAMBDA_PER_REQUEST)
        rows.append(f"| {memory} MB | {share:.2f} | {duration_ms:.0f} ms | ${cost:.5f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print("Monthly cost of the API (scripts/cost-model.py)\n")
    print(monthly_table())
    print("\nSign-in cost by auth memory size (scripts/cost-model.py)\n")
    print(sign_in_table())
