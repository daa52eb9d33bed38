"""Event source mappings, as Lambda runs them: pollers that read SQS and DynamoDB Streams in
batches (size and batching window from the wiring), invoke the function, honour
``batchItemFailures``, retry, and dead-letter what keeps failing.

moto's own mappings invoke synchronously inside the writer's call, one SQS message at a time and
without partial batch responses, so the local cloud polls instead.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime
from typing import Any

from docket.wiring import EventSourceSpec

log = logging.getLogger("docket.local")


class Poller(threading.Thread):
    def __init__(self, spec: EventSourceSpec, region: str, poll_interval: float = 0.05) -> None:
        super().__init__(name=f"esm-{spec.function}", daemon=True)
        self.spec = spec
        self.region = region
        self.poll_interval = poll_interval
        self._stop_event = threading.Event()
        self.busy = False
        self.batches = 0
        self.records = 0
        self.batch_sizes: list[int] = []  # records per invocation, as delivered
        self.last_error: str | None = None

    def stop(self) -> None:
        self._stop_event.set()

    def _invoke(self, event: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
        from docket import aws

        self.batch_sizes.append(len(event["Records"]))
        del self.batch_sizes[:-1000]

        resp = aws.client("lambda").invoke(
            FunctionName=self.spec.function, Payload=json.dumps(event, default=_json_default)
        )
        payload = json.loads(resp["Payload"].read() or b"null")
        errored = bool(resp.get("FunctionError"))
        if errored:
            self.last_error = f"{payload.get('errorType')}: {payload.get('errorMessage')}"
            log.warning("%s failed: %s", self.spec.function, self.last_error)
        return payload, errored

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                worked = self.poll_once()
            except Exception as exc:  # the poller must survive anything a batch does
                log.exception("poller %s crashed on a batch: %s", self.spec.function, exc)
                worked = False
            if not worked:
                self._stop_event.wait(self.poll_interval)

    def poll_once(self) -> bool:
        raise NotImplementedError

    def idle(self) -> bool:
        raise NotImplementedError


class SqsPoller(Poller):
    """SQS → Lambda: failed messages become visible again and, after the queue's
    maxReceiveCount, move to its dead-letter queue (the redrive policy)."""

    retry_delay_s = 1

    def __init__(
        self, spec: EventSourceSpec, region: str, queue_url: str, queue_arn: str, **kw: Any
    ):
        super().__init__(spec, region, **kw)
        self.queue_url = queue_url
        self.queue_arn = queue_arn

    @property
    def _sqs(self) -> Any:
        from docket import aws

        return aws.client("sqs")

    def _receive(self, max_n: int) -> list[dict[str, Any]]:
        resp = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_n)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))

    def poll_once(self) -> bool:
        messages = self._receive(self.spec.batch_size)
        if not messages:
            return False
        self.busy = True
        try:
            deadline = time.monotonic() + self.spec.max_batching_window_s
            while len(messages) < self.spec.batch_size and time.monotonic() < deadline:
                more = self._receive(self.spec.batch_size - len(messages))
                if more:
                    messages.extend(more)
                else:
                    time.sleep(0.02)
            event = {"Records": [self._record(m) for m in messages]}
            payload, errored = self._invoke(event)
            failed: set[str] = set()
            if errored:
                failed = {m["MessageId"] for m in messages}
            elif isinstance(payload, dict) and payload.get("batchItemFailures"):
                failed = {f["itemIdentifier"] for f in payload["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.queue_url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=self.retry_delay_s,
                    )
                else:
                    self._sqs.delete_message(
                        QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"]
                    )
            self.batches += 1
            self.records += len(messages)
            return True
        finally:
            self.busy = False

    def _record(self, m: dict[str, Any]) -> dict[str, Any]:
        attrs = m.get("Attributes", {})
        return {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {
                "ApproximateReceiveCount": attrs.get("ApproximateReceiveCount", "1"),
                "SentTimestamp": attrs.get("SentTimestamp", str(int(time.time() * 1000))),
                "SenderId": attrs.get("SenderId", "AIDAIENQZJOLO23YVJ4VO"),
                "ApproximateFirstReceiveTimestamp": attrs.get(
                    "ApproximateFirstReceiveTimestamp", str(int(time.time() * 1000))
                ),
            },
            "messageAttributes": {
                k: {
                    "stringValue": v.get("StringValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": v.get("DataType", "String"),
                }
                for k, v in (m.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": m.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def idle(self) -> bool:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        pending = int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
        )
        return pending == 0 and not self.busy


class StreamPoller(Poller):
    """DynamoDB Streams → Lambda: in order per shard; with ReportBatchItemFailures the checkpoint
    moves to the first failed record; after max_retry_attempts (bisecting on error) the failing
    record goes to the on-failure destination and the shard moves on.

    Records are read from the emulator's shard in this process, as Lambda's own pollers read a
    stream without going through the public API: the same records GetRecords returns, without
    serialising every item image to JSON and parsing it back (that was a third of the local
    pipeline's interpreter time), and counting what is waiting costs nothing.
    """

    def __init__(
        self,
        spec: EventSourceSpec,
        region: str,
        stream_arn: str,
        on_failure_url: str | None,
        start_sequence: int | None = None,
        **kw: Any,
    ):
        super().__init__(spec, region, **kw)
        self.stream_arn = stream_arn
        self.on_failure_url = on_failure_url
        self.shard_id: str | None = None
        self.next_sequence: int | None = start_sequence
        self._attempts: dict[int, int] = {}
        self.dead_lettered = 0
        # idle() runs on another thread (wait_idle); it must not read at a position the poller is
        # about to move past and trim (reading a trimmed record raises)
        self._position = threading.Lock()

    def _shard(self) -> Any:
        shard = _stream_shard(self.region, self.stream_arn)
        if shard is None:
            raise RuntimeError(f"no stream shard for {self.stream_arn}")
        self.shard_id = shard.id
        if self.next_sequence is None:  # TRIM_HORIZON
            self.next_sequence = int(shard.starting_sequence_number)
        return shard

    def _waiting(self) -> int:
        """Records written after the checkpoint."""
        shard = self._shard()
        assert self.next_sequence is not None
        return max(0, len(shard.items) - (self.next_sequence - shard.starting_sequence_number))

    def _read(self, limit: int) -> list[dict[str, Any]]:
        shard = self._shard()
        assert self.next_sequence is not None
        start = self.next_sequence - shard.starting_sequence_number
        return [item.to_json() for item in shard.items[start : start + limit]]

    def poll_once(self) -> bool:
        with self._position:
            return self._poll_once()

    def _poll_once(self) -> bool:
        records = self._read(self.spec.batch_size)
        if not records:
            return False
        self.busy = True
        try:
            if len(records) < self.spec.batch_size and self.spec.max_batching_window_s > 0:
                deadline = time.monotonic() + self.spec.max_batching_window_s
                while time.monotonic() < deadline:
                    time.sleep(0.05)
                    if self._waiting() >= self.spec.batch_size:
                        break
                records = self._read(self.spec.batch_size)
            self._process(records)
            return True
        finally:
            self.busy = False

    def _process(self, records: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(r) for r in records]}
        payload, errored = self._invoke(event)
        seqs = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        if errored:
            first_failed = seqs[0]
        elif isinstance(payload, dict) and payload.get("batchItemFailures"):
            first_failed = min(int(f["itemIdentifier"]) for f in payload["batchItemFailures"])
        else:
            self._advance(seqs[-1] + 1, len(records))
            return
        attempts = self._attempts.get(first_failed, 0) + 1
        self._attempts[first_failed] = attempts
        done = [s for s in seqs if s < first_failed]
        if done:
            self._advance(first_failed, len(done))
        if attempts > self.spec.max_retry_attempts:
            failed_record = next(
                r for r in records if int(r["dynamodb"]["SequenceNumber"]) == first_failed
            )
            if self.spec.bisect_on_error and len(records) > 1 and errored:
                # Split the batch: process records one by one to isolate the poisoned one.
                for r in [
                    r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= first_failed
                ]:
                    self._process_single(r)
                return
            self._dead_letter(failed_record, payload)
            self._advance(first_failed + 1, 1)
        else:
            time.sleep(min(0.1 * 2**attempts, 2.0))

    def _process_single(self, record: dict[str, Any]) -> None:
        seq = int(record["dynamodb"]["SequenceNumber"])
        for _ in range(self.spec.max_retry_attempts + 1):
            payload, errored = self._invoke({"Records": [self._record(record)]})
            if not errored and not (isinstance(payload, dict) and payload.get("batchItemFailures")):
                self._advance(seq + 1, 1)
                return
        self._dead_letter(record, payload)
        self._advance(seq + 1, 1)

    def _dead_letter(self, record: dict[str, Any], payload: Any) -> None:
        self.dead_lettered += 1
        if not self.on_failure_url:
            return
        from docket import aws

        aws.client("sqs").send_message(
            QueueUrl=self.on_failure_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "functionArn": self.spec.function,
                        "condition": "RetryAttemptsExhausted",
                    },
                    "responseContext": {"functionError": self.last_error},
                    "DDBStreamBatchInfo": {
                        "streamArn": self.stream_arn,
                        "shardId": self.shard_id,
                        "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
                        "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
                        "batchSize": 1,
                    },
                    "record": self._record(record),
                },
                default=_json_default,
            ),
        )
        log.warning(
            "%s: record %s dead-lettered", self.spec.function, record["dynamodb"]["SequenceNumber"]
        )

    def _advance(self, next_sequence: int, n: int) -> None:
        self.next_sequence = next_sequence
        self.batches += 1
        self.records += n
        self._attempts = {k: v for k, v in self._attempts.items() if k >= next_sequence}
        _trim_stream(self.region, self.stream_arn, next_sequence)

    def _record(self, r: dict[str, Any]) -> dict[str, Any]:
        out = dict(r)
        out["eventSourceARN"] = self.stream_arn
        out["awsRegion"] = self.region
        dyn = dict(out["dynamodb"])
        if isinstance(dyn.get("ApproximateCreationDateTime"), datetime):
            dyn["ApproximateCreationDateTime"] = dyn["ApproximateCreationDateTime"].timestamp()
        out["dynamodb"] = dyn
        return out

    def idle(self) -> bool:
        if self.busy or not self._position.acquire(timeout=0.5):
            return False
        try:
            return self._waiting() == 0
        finally:
            self._position.release()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, bytes | bytearray):
        import base64

        return base64.b64encode(value).decode()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value)}")


# --- moto housekeeping: a long-running local cloud must not keep every stream record forever ---------


class _Processed:
    """Stands in for a stream record the poller has finished with (frees its item images)."""

    def to_json(self) -> dict[str, Any]:  # pragma: no cover - never read again
        raise RuntimeError("stream record already processed")


_PROCESSED = _Processed()


def _stream_shard(region: str, stream_arn: str) -> Any:
    """The emulator's shard of a table's stream (the local cloud's tables have one)."""
    from moto.dynamodb.models import dynamodb_backends

    table_name = stream_arn.split(":", 6)[5].split("/")[1]
    for backend in dynamodb_backends.values():
        table = backend[region].tables.get(table_name)
        shard = getattr(table, "stream_shard", None) if table else None
        if shard is not None:
            return shard
    return None


def _trim_stream(region: str, stream_arn: str, processed_before: int) -> None:
    """Release records the poller has processed. The list keeps its length (moto derives sequence
    numbers from it and a writer may append concurrently); only the payloads are dropped."""
    try:
        shard = _stream_shard(region, stream_arn)
        if shard is not None:
            start = getattr(shard, "_docket_released", 0)
            end = min(processed_before - shard.starting_sequence_number, len(shard.items))
            for i in range(start, end):
                shard.items[i] = _PROCESSED
            shard._docket_released = max(start, end)
    except Exception:  # housekeeping only
        log.debug("stream trim skipped", exc_info=True)


class TtlSweeper(threading.Thread):
    """DynamoDB's Time to Live, locally: every ``interval`` seconds, items whose TTL attribute
    (epoch seconds) has passed are deleted, so their tables' streams see a REMOVE as on AWS
    (where it happens within about two days; here within the interval)."""

    def __init__(self, tables: dict[str, str], region: str, interval: float = 1.0) -> None:
        super().__init__(name="ttl-sweeper", daemon=True)
        self.tables = tables  # name → TTL attribute
        self.region = region
        self.interval = interval
        self.expired = 0
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def sweep(self, now: float | None = None) -> int:
        from docket import aws

        ddb = aws.client("dynamodb", region=self.region)
        cutoff = str(int(now if now is not None else time.time()))
        deleted = 0
        for table, attribute in self.tables.items():
            keys = [
                k["AttributeName"]
                for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]
            ]
            kwargs: dict[str, Any] = {
                "TableName": table,
                "FilterExpression": "#ttl < :now",
                "ExpressionAttributeNames": {"#ttl": attribute},
                "ExpressionAttributeValues": {":now": {"N": cutoff}},
            }
            while True:
                page = ddb.scan(**kwargs)
                for item in page.get("Items", []):
                    ddb.delete_item(TableName=table, Key={k: item[k] for k in keys})
                    deleted += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        self.expired += deleted
        return deleted

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            try:
                self.sweep()
            except Exception:  # a sweep that fails is tried again at the next interval
                log.exception("TTL sweep failed")
