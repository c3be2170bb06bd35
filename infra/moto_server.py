#!/usr/bin/env python3
"""moto's server with requests serialised, as a real AWS service would guarantee.

`moto_server` (moto/server.py) serves `DomainDispatcherApplication(create_backend_app)`
with werkzeug, one thread per request. moto's backends are plain Python objects
without locking, so two threads can interleave inside one DynamoDB
`PutItem ... attribute_not_exists(PK)` or `TransactWriteItems`: both see "no
item", both write, both answer 200. Twenty concurrent creates of one slug would
then give several winners, which DynamoDB itself never does.

This runs the same WSGI app on the same werkzeug server, wrapped in a middleware
that holds one global lock around every request, so each API call is atomic
against every other one.

SQS ReceiveMessage is the exception: a long poll (WaitTimeSeconds up to 20 s)
must not stall every other caller. A ReceiveMessage that names its
WaitTimeSeconds is turned into short polls (WaitTimeSeconds=0), each run under
the lock; between polls the lock is released and the thread sleeps until
another request completes (which may have sent a message) or 100 ms pass
(visibility timeouts and delays expire with time). On each wake it first looks
at the queue's messages in moto's backend, in-process: only a queue that
holds a visible message is polled through moto's request path. The caller
sees a normal long poll, and two pollers can never take the same message at
once. (Polling every queue through the request path on every wake made an
idle stack of a dozen queues spend 60-70% of a core, and every request of a
busy test suite wake a dozen full polls, all under the one lock.) A
ReceiveMessage that omits WaitTimeSeconds (queue default applies) or whose body
cannot be read is passed to moto unlocked, exactly as `moto_server` would.

Detection: JSON protocol by the header `X-Amz-Target: AmazonSQS.ReceiveMessage`;
query protocol by `Action=ReceiveMessage` in the query string or the
form-encoded body.

Step Functions: moto's `stepfunctions.execute_state_machine` switch is on
from start-up, so StartExecution runs the state machine (the workflow
interpreter; see `_execute_state_machines`), and MOTO_PORT is set to the port
served, where its Task states send their SQS calls.

    python infra/moto_server.py --host 127.0.0.1 --port 4566
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlparse

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

RECEIVE_TARGET = "AmazonSQS.ReceiveMessage"
FORM_TYPE = "application/x-www-form-urlencoded"
# Longest sleep between two short polls of a waiting ReceiveMessage; bounds the
# delay with which a message that becomes visible by time alone is seen.
IDLE_POLL_SECONDS = 0.1
# SQS refuses WaitTimeSeconds above this; such a request goes to moto as is so
# that it answers with the real validation error.
MAX_WAIT_SECONDS = 20

StartResponse = Callable[..., Any]


def _forget_tracked_dynamodb_instances() -> None:
    """moto remembers every model object it ever created, for its dashboard
    (`/moto-api/data.json`) only. A TransactWriteItems deep-copies the table
    for rollback, once per item, so those lists grew by whole tables per
    call: gigabytes after a test run, and every later call slower. SQS
    messages and the rest pile up too, and the dashboard is also how the
    tests read sent mail back (tests/support: `mail_to`), under moto's one
    lock: so every service's list is dropped but SES's, whose messages are
    the only thing read from it."""
    from moto.core.model_instances import model_data

    for service, models in model_data.items():
        if service in ("ses", "sesv2"):
            continue
        for model in models.values():
            model.instances_tracked = []


def _back_up_only_the_items_a_transaction_touches() -> None:
    """moto backs a TransactWriteItems up for rollback by deep-copying the
    whole table, once per item in the transaction: on a table of a few
    thousand items a five-item transaction copied the table five times, and
    the suite's concurrency tests (a hundred spends racing for one balance)
    spent minutes in copies. Every request here runs under one lock, so
    backing up the items the transaction names, and putting them back if it
    is cancelled, restores exactly the same state.

    moto's own backup becomes a no-op (its `copy.deepcopy` of a Table returns
    the table itself; everything else is still copied), and its own
    "rollback" reassigns the same objects."""
    import copy

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    class _CopyWithoutTables:
        def __getattr__(self, name: str) -> Any:
            return getattr(copy, name)

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    dynamodb_models.copy = _CopyWithoutTables()  # type: ignore[assignment]
    original = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups = []
        # moto applies a transaction's writes one by one, and each write of a
        # table with a stream appends a stream record. DynamoDB streams only
        # what committed: a cancelled transaction must leave no record, or the
        # outbox relay would publish events of a change that never happened.
        stream_lengths = {
            id(table.stream_shard): (table.stream_shard, len(table.stream_shard.items))
            for table in self.tables.values()
            if getattr(table, "stream_shard", None) is not None
        }
        for entry in transact_items:
            if len(entry) != 1:
                continue  # moto refuses it before changing anything
            op = next(iter(entry.values()))
            table = self.tables.get(op.get("TableName"))
            attrs = op.get("Item") or op.get("Key") or {}
            if table is None or table.hash_key_attr not in attrs:
                continue
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in attrs:
                    continue
                range_value = DynamoType(attrs[table.range_key_attr])
            backups.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        try:
            original(self, transact_items)
        except BaseException:
            for shard, length in stream_lengths.values():
                del shard.items[length:]
            for table, hash_value, range_value, item in reversed(backups):
                if item is None:
                    if range_value is not None:
                        table.items.get(hash_value, {}).pop(range_value, None)
                    else:
                        table.items.pop(hash_value, None)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise

    dynamodb_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def _query_reads_one_partition_not_the_table() -> None:
    """moto answers a Query on the base table by listing and sorting every
    item of the table, then keeping the partition asked for, and sizes each
    item of the partition before it tests the sort key condition. With the
    single table holding every tenant's items, each Query cost grew with the
    whole suite's data (py-spy: a third of moto's busy time), and a
    `begins_with` Query of a tenant with thousands of items cost as much as
    reading all of them. During a base-table Query, `all_items` lists only
    that partition's items that meet the sort key condition, in the same
    (hash, range) order; moto then applies the same condition again, so the
    answer is the same. Index queries still scan: an index's partition is
    not a key of moto's item store."""
    from moto.dynamodb.models.table import Table

    full_listing = Table.all_items
    original_query = Table.query
    narrowed: dict[int, Any] = {}  # id(table) -> the hash key of its running Query

    def all_items(self: Table) -> list:
        query = narrowed.get(id(self))
        if query is None:
            return full_listing(self)
        hash_key, range_comparison, range_objs = query
        if hash_key not in self.items:  # `items` is a defaultdict: never index it
            return []
        partition = self.items[hash_key]
        if not self.range_key_attr:
            return [partition]
        items = partition.values()
        if range_comparison:
            # The same test moto applies to each item afterwards; applied
            # first, moto no longer sizes every item of the partition.
            items = [i for i in items if i.range_key is not None and i.range_key.compare(range_comparison, range_objs)]
        return sorted(items, key=lambda item: (item.hash_key, item.range_key))

    def query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes range_comparison, range_objs, ... index_name
        # positionally after the hash key.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None:
            return original_query(self, hash_key, *args, **kwargs)
        range_comparison = args[0] if args else kwargs.get("range_comparison")
        range_objs = args[1] if len(args) > 1 else kwargs.get("range_objs")
        narrowed[id(self)] = (hash_key, range_comparison, range_objs or [])
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            narrowed.pop(id(self), None)

    Table.all_items = all_items  # type: ignore[method-assign]
    Table.query = query  # type: ignore[method-assign]


def _parse_each_event_input_path_once() -> None:
    """An EventBridge rule target's input transformer: moto parses each of
    its JSONPaths for every event, and jsonpath_ng builds its whole LR parser
    for each parse (py-spy: a third of moto's busy time under the suite went
    to PutEvents doing that). The parsed expressions are immutable, so one
    parse per distinct path serves every event."""
    import functools

    import jsonpath_ng.ext

    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=1024)(jsonpath_ng.ext.parse)


def _forget_used_shard_iterators() -> None:
    """moto keeps every DynamoDB Streams shard iterator it ever handed out
    (472 random bytes each, plus the object), and the outbox relay asks for a
    new one with every GetRecords, ten times a second when idle. A used
    iterator is never valid again (GetRecords answers the next one), so it
    is dropped once read."""
    from moto.dynamodbstreams.models import DynamoDBStreamsBackend

    original = DynamoDBStreamsBackend.get_records

    def get_records(self: Any, iterator_arn: str, limit: int) -> dict[str, Any]:
        result = original(self, iterator_arn, limit)
        self.shard_iterators.pop(iterator_arn, None)
        return result

    DynamoDBStreamsBackend.get_records = get_records  # type: ignore[method-assign]


def _execute_state_machines() -> None:
    """moto only stores state machines unless its config says
    `execute_state_machine`; then StartExecution runs the ASL (a thread per
    execution: Task states call SQS through boto3 at MOTO_PORT, task tokens
    wait for SendTaskSuccess, TimeoutSecondsPath fires States.Timeout). Set
    here, before serving, rather than by `POST /moto-api/config` from
    local_stack.py: with the switch off moto keeps state machines in another
    backend (`stepfunctions_backends`, not `stepfunctions_parser_backends`),
    so one created before the switch would not exist for executions after it.
    The workflow interpreter (template.yaml `WorkflowInterpreter`) needs it."""
    from moto.core.config import default_user_config

    default_user_config.setdefault("stepfunctions", {})["execute_state_machine"] = True


class _Captured:
    """A finished WSGI response held in memory."""

    def __init__(self) -> None:
        self.status = "500 INTERNAL SERVER ERROR"
        self.headers: list[tuple[str, str]] = []
        self.exc_info: Any = None
        self.body = b""

    def start_response(self, status: str, headers: list, exc_info: Any = None):
        self.status, self.headers, self.exc_info = status, headers, exc_info
        return lambda data: None  # legacy write(): moto never uses it

    def replay(self, start_response: StartResponse) -> Iterable[bytes]:
        start_response(self.status, self.headers)
        return [self.body]


class SerialisingMiddleware:
    """Runs every request under one lock; long polls wait outside it."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        # Signalled after every completed locked request, so a waiting
        # ReceiveMessage re-polls as soon as something may have changed.
        self.changed = threading.Condition()
        self.generation = 0

    # -- plumbing ---------------------------------------------------------

    def _run_locked(self, environ: dict) -> _Captured:
        captured = _Captured()
        with self.lock:
            result = self.app(environ, captured.start_response)
            try:
                captured.body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                _forget_tracked_dynamodb_instances()
        return captured

    def _notify(self) -> None:
        with self.changed:
            self.generation += 1
            self.changed.notify_all()

    @staticmethod
    def _read_body(environ: dict) -> bytes:
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            return stream.read(int(length))
        if environ.get("wsgi.input_terminated"):
            return stream.read()
        return b""

    @staticmethod
    def _with_body(environ: dict, body: bytes) -> dict:
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(body)
        env["CONTENT_LENGTH"] = str(len(body))
        env.pop("HTTP_TRANSFER_ENCODING", None)
        return env

    # -- ReceiveMessage ---------------------------------------------------

    def _receive_request(self, environ: dict) -> tuple[str, bytes] | None:
        """Returns (protocol, body) for an SQS ReceiveMessage, else None.

        Reads the body only for JSON ReceiveMessage and form-encoded POSTs.
        """
        if environ.get("HTTP_X_AMZ_TARGET", "") == RECEIVE_TARGET:
            return "json", self._read_body(environ)
        query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
        if query.get("Action") == "ReceiveMessage":
            return "query-string", b""
        if environ.get("CONTENT_TYPE", "").startswith(FORM_TYPE):
            body = self._read_body(environ)
            environ["wsgi.input"] = io.BytesIO(body)  # let moto read it again
            environ["CONTENT_LENGTH"] = str(len(body))
            if dict(parse_qsl(body.decode("utf-8", "replace"))).get("Action") == "ReceiveMessage":
                return "form", body
        return None

    @staticmethod
    def _short_poll(protocol: str, environ: dict, body: bytes) -> tuple[Callable[[], dict], float, str] | None:
        """A factory of the same request with WaitTimeSeconds=0, the wait asked
        for, and the queue's URL.

        None when the request names no (valid) WaitTimeSeconds.
        """

        def zero(pairs: list[tuple[str, str]]) -> tuple[str, float, str] | None:
            params = dict(pairs)
            wait = int(params["WaitTimeSeconds"])
            if not 0 <= wait <= MAX_WAIT_SECONDS:
                return None
            query = urlencode([(k, "0" if k == "WaitTimeSeconds" else v) for k, v in pairs])
            return query, wait, params.get("QueueUrl", "")

        try:
            if protocol == "json":
                params = json.loads(body or b"{}")
                wait = params.get("WaitTimeSeconds")
                if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= MAX_WAIT_SECONDS:
                    return None
                params["WaitTimeSeconds"] = 0
                poll = json.dumps(params).encode()
                queue_url = params.get("QueueUrl")
                return (
                    (lambda: SerialisingMiddleware._with_body(environ, poll)),
                    wait,
                    queue_url if isinstance(queue_url, str) else "",
                )
            if protocol == "form":
                rewritten = zero(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
                if rewritten is None:
                    return None
                poll = rewritten[0].encode()
                return (lambda: SerialisingMiddleware._with_body(environ, poll)), rewritten[1], rewritten[2]
            rewritten = zero(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
            if rewritten is None:
                return None
            query = rewritten[0]
            return (lambda: dict(environ, QUERY_STRING=query)), rewritten[1], rewritten[2]
        except (KeyError, ValueError, UnicodeDecodeError, TypeError):
            return None

    def _may_have_messages(self, queue_url: str) -> bool:
        """Whether a short poll of the queue could answer a message, judged
        from moto's backend objects under the lock (no request, no copies).

        True whenever the queue cannot be found that way (an odd URL, a queue
        that does not exist), so moto's own answer, an error included, still
        reaches the caller. A visible message that moto will not hand out
        (its FIFO group is in flight) also says True: the poll finds that.
        """
        from moto.sqs.models import sqs_backends

        parts = urlparse(queue_url).path.strip("/").split("/")
        if len(parts) != 2:
            return True
        account, name = parts
        with self.lock:
            if account not in sqs_backends:
                return True
            for backend in list(sqs_backends[account].values()):
                queue = backend.queues.get(name)
                if queue is not None:
                    return any(m.visible and not m.delayed for m in queue._messages)
        return True

    @staticmethod
    def _has_messages(captured: _Captured) -> bool:
        """Whether a short poll's answer must go back to the caller now.

        Judged by the body, not the request's protocol: moto answers some
        query-protocol requests in JSON.
        """
        if not captured.status.startswith("200"):
            return True  # an error is an answer: hand it back at once
        body = captured.body.lstrip()
        if body.startswith(b"{"):
            try:
                return bool(json.loads(body).get("Messages"))
            except ValueError:
                return True
        return b"<Message>" in body

    def _long_poll(self, protocol: str, environ: dict, body: bytes, start_response: StartResponse):
        short = self._short_poll(protocol, environ, body)
        if short is None:
            # Unknown wait (queue default) or odd body: moto's own behaviour, unlocked.
            env = self._with_body(environ, body) if protocol == "json" else environ
            return self.app(env, start_response)
        make_env, wait, queue_url = short
        deadline = time.monotonic() + wait
        first = True
        while True:
            with self.changed:
                seen = self.generation
            remaining = deadline - time.monotonic()
            # The first poll and the last always go through moto: its answer
            # (or error) is what the caller gets.
            if first or remaining <= 0 or self._may_have_messages(queue_url):
                first = False
                captured = self._run_locked(make_env())
                remaining = deadline - time.monotonic()
                if self._has_messages(captured) or remaining <= 0:
                    return captured.replay(start_response)
            with self.changed:
                # Sleep unless another request finished since the poll began.
                if self.generation == seen:
                    self.changed.wait(min(IDLE_POLL_SECONDS, remaining))

    # -- WSGI -------------------------------------------------------------

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        receive = self._receive_request(environ)
        if receive is not None:
            protocol, body = receive
            return self._long_poll(protocol, environ, body, start_response)
        try:
            captured = self._run_locked(environ)
        finally:
            self._notify()
        return captured.replay(start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "-p", "--port", type=int, default=int(os.environ.get("MOTO_PORT", "4566")), help="port to bind"
    )
    args = parser.parse_args(argv)

    # Some backends build URLs to this server from MOTO_PORT: Step Functions
    # calls SQS through boto3 at http://localhost:$MOTO_PORT. moto_server only
    # sets a missing one; an inherited MOTO_PORT naming another port (a second
    # stack started from a shell of the first) would send those calls there.
    os.environ["MOTO_PORT"] = str(args.port)
    _execute_state_machines()

    def stop(signum: int, frame: Any) -> None:
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    _back_up_only_the_items_a_transaction_touches()
    _forget_used_shard_iterators()
    _query_reads_one_partition_not_the_table()
    _parse_each_event_input_path_once()
    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # type: ignore[attr-defined]  # as moto_server sets it
    run_simple(
        args.host,
        args.port,
        SerialisingMiddleware(app),
        threaded=True,
        use_reloader=False,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
