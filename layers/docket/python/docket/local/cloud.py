"""LocalCloud: start moto, build the wiring, dispatch Lambdas in-process, poll event sources,
and keep state in a data directory across restarts."""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from docket.local import runtime, sigv4, state
from docket.local.pollers import Poller, SqsPoller, StreamPoller, TtlSweeper
from docket.wiring import (
    AGENT_STATE_MACHINE,
    ANSWER_CACHE_TABLE,
    GENERATIONS_TABLE,
    INGEST_DLQ,
    KEYS_TABLE,
    LIMITS_TABLE,
    PIPELINE_DLQ,
    REEMBED_STATE_MACHINE,
    SYNC_BACKFILL_STATE_MACHINE,
    SYNC_TABLE,
    TICKETS_SOURCE,
    WIRING,
    TableSpec,
    Wiring,
)

log = logging.getLogger("docket.local")

ACCOUNT = "123456789012"
REPO_ROOT = Path(__file__).resolve().parents[5]


def functions_dir() -> Path:
    return Path(os.environ.get("DOCKET_FUNCTIONS_DIR", REPO_ROOT / "functions"))


def state_machines_dir() -> Path:
    return Path(os.environ.get("DOCKET_STATE_MACHINES_DIR", REPO_ROOT / "state_machines"))


def _table_definition(t: TableSpec) -> dict[str, Any]:
    keys = [(t.partition_key, "HASH")] + ([(t.sort_key, "RANGE")] if t.sort_key else [])
    attributes = {name for name, _ in keys}
    definition: dict[str, Any] = {
        "TableName": t.name,
        "KeySchema": [{"AttributeName": n, "KeyType": k} for n, k in keys],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if t.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": i.name,
                "KeySchema": [
                    {"AttributeName": i.partition_key, "KeyType": "HASH"},
                    {"AttributeName": i.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for i in t.indexes
        ]
        attributes |= {a for i in t.indexes for a in (i.partition_key, i.sort_key)}
    definition["AttributeDefinitions"] = [
        {"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)
    ]
    return definition


# Written when a stop drained the pipeline before its last snapshot; absent after a crash.
CLEAN_STOP = "clean-stop"


class LocalCloud:
    def __init__(
        self,
        data_dir: Path,
        *,
        wiring: Wiring = WIRING,
        region: str = "us-east-1",
        env: dict[str, str] | None = None,
        batch_sizes: dict[str, int] | None = None,
        persist: bool = True,
        verbose: bool = False,
        api_containers: int | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        if api_containers is not None:
            # concurrent requests the API (and the MCP server) serve at once, as Lambda scales
            # them out (each container imports the handler on its own); the wiring's otherwise
            if api_containers < 1:
                raise ValueError("api_containers must be at least 1")
            wiring = replace(
                wiring,
                functions=tuple(
                    replace(f, local_containers=api_containers)
                    if f.name
                    in (wiring.api_function, wiring.mcp_function, wiring.authorizer_function)
                    else f
                    for f in wiring.functions
                ),
            )
        self.wiring = wiring
        self.credentials = sigv4.local_credentials(self.data_dir)
        self.region = region
        self.extra_env = env or {}
        self.batch_sizes = batch_sizes or {}
        self.persist = persist
        # how soon after a write the state is saved (kill -9 loses at most about this much)
        self.snapshot_seconds = float(os.environ.get("DOCKET_LOCAL_SNAPSHOT_SECONDS", "2"))
        self.verbose = verbose
        self.queue_urls: dict[str, str] = {}
        self.queue_arns: dict[str, str] = {}
        self.stream_arns: dict[str, str] = {}
        self.state_machine_arns: dict[str, str] = {}
        self.pollers: list[Poller] = []
        self.sweeper: TtlSweeper | None = None  # DynamoDB's TTL (docket.local.pollers)
        self.runtime: runtime.FunctionRuntime | None = None
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._snapshot_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.s3_endpoint: str | None = None
        self._s3_server: Any = None

    # -- lifecycle -----------------------------------------------------------------------------

    def environment(self) -> dict[str, str]:
        env = {
            # the data directory's own key: the endpoint on port+1 checks signatures against it
            "AWS_ACCESS_KEY_ID": self.credentials[0],
            "AWS_SECRET_ACCESS_KEY": self.credentials[1],
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "MOTO_ALLOW_NONEXISTENT_REGION": "true",
            "DOCKET_REGION": self.region,
            "DOCKET_STAGE": "local",
            "DOCKET_INDEX_DIR": str(self.data_dir / "index"),
            "DOCKET_GENERATIONS_TABLE": GENERATIONS_TABLE,
            "DOCKET_KEYS_TABLE": KEYS_TABLE,
            "DOCKET_LIMITS_TABLE": LIMITS_TABLE,
            "DOCKET_SYNC_TABLE": SYNC_TABLE,
            "DOCKET_ANSWER_CACHE_TABLE": ANSWER_CACHE_TABLE,
            "DOCKET_SYNC_SOURCES": json.dumps([TICKETS_SOURCE]),
            "DOCKET_REEMBED_JOB_RUNNER": "local",
            "DOCKET_AUTH_MODE": "local",
            "POWERTOOLS_SERVICE_NAME": "docket",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "Docket",
            "POWERTOOLS_LOG_LEVEL": "INFO" if self.verbose else "WARNING",
            "DOCKET_EMAIL_OUTBOX_DIR": str(self.data_dir / "outbox"),
            "DOCKET_SLACK_SINK_PATH": str(self.data_dir / "slack.jsonl"),
        }
        if not self.verbose:
            env["POWERTOOLS_METRICS_DISABLED"] = "true"
        env.update(self.extra_env)
        return env

    def start(self, *, s3_port: int | None = None, pollers: bool = True) -> LocalCloud:
        from moto import mock_aws

        from docket import aws
        from docket.config import reset_settings

        self.data_dir.mkdir(parents=True, exist_ok=True)
        for k, v in self.environment().items():
            self._saved_env[k] = os.environ.get(k)
            os.environ[k] = v
        from docket.local import moto_speedups

        moto_speedups.apply()
        state.track_writes()
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        # moto puts its well-known fake keys in the environment; presigned URLs must carry ours
        os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"] = self.credentials
        aws.reset_clients()
        reset_settings()
        self.runtime = runtime.FunctionRuntime(functions_dir(), self.wiring.functions, self.region)
        runtime.install(self.runtime)
        if s3_port is not None:
            self._start_s3_server(s3_port)
        self._create_resources()
        if pollers:
            self.start_pollers()
        self._sweep_approvals()
        if self.persist:
            self._snapshot_thread = threading.Thread(
                target=self._snapshot_loop, name="snapshot", daemon=True
            )
            self._snapshot_thread.start()
        return self

    def stop(self, *, drain_timeout: float = 10.0) -> None:
        from docket import aws
        from docket.config import reset_settings
        from docket.search.factory import close_indexes

        if self._mock is None:
            return
        idle = False
        try:
            idle = self.wait_idle(timeout=drain_timeout, raise_on_timeout=False)
        finally:
            self._stopping.set()
            if self.sweeper is not None:
                self.sweeper.stop()
                self.sweeper.join(timeout=30)
            for p in self.pollers:
                p.stop()
            for p in self.pollers:
                p.join(timeout=30)
            if self.persist:
                self.snapshot()
                if idle:  # tables and indexes agree: the next start need not reconcile them
                    (self.data_dir / CLEAN_STOP).write_text("drained and saved\n")
            close_indexes()
            if self._s3_server is not None:
                self._s3_server.stop()
                self._s3_server = None
            runtime.uninstall()
            self._mock.stop()
            self._mock = None
            aws.reset_clients()
            for k, v in self._saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            for k in (
                "DOCKET_AGENT_STATE_MACHINE_ARN",
                "DOCKET_REEMBED_STATE_MACHINE_ARN",
                "DOCKET_APPROVAL_BASE_URL",
            ):
                if k not in self.extra_env:  # set by start() and by the gateway
                    os.environ.pop(k, None)
            reset_settings()
            _reset_cached_services()

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- resources -----------------------------------------------------------------------------

    def _start_s3_server(self, port: int) -> None:
        if not self.verbose:
            logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request
        self._s3_server = _signed_moto_server(
            {self.credentials[0]: self.credentials[1]}, ip_address="127.0.0.1", port=port
        )
        self._s3_server.start()
        self.s3_endpoint = f"http://127.0.0.1:{port}"
        os.environ["DOCKET_S3_PUBLIC_ENDPOINT"] = self.s3_endpoint
        from docket.config import reset_settings

        reset_settings()

    def _create_resources(self) -> None:
        from docket import aws

        w = self.wiring
        s3, ddb, sqs, lam, iam = (aws.client(n) for n in ("s3", "dynamodb", "sqs", "lambda", "iam"))
        for bucket in w.buckets:
            s3.create_bucket(Bucket=bucket)
        for q in w.queues:
            attrs = {"VisibilityTimeout": str(q.visibility_timeout)}
            if q.dead_letter_queue:
                import json

                attrs["RedrivePolicy"] = json.dumps(
                    {
                        "deadLetterTargetArn": self.queue_arns[q.dead_letter_queue],
                        "maxReceiveCount": q.max_receive_count,
                    }
                )
            url = sqs.create_queue(QueueName=q.name, Attributes=attrs)["QueueUrl"]
            self.queue_urls[q.name] = url
            self.queue_arns[q.name] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        os.environ["DOCKET_INGEST_DLQ_URL"] = self.queue_urls[INGEST_DLQ]
        from docket.config import reset_settings

        reset_settings()
        for t in w.tables:
            ddb.create_table(**_table_definition(t))
            if t.ttl_attribute:
                ddb.update_time_to_live(
                    TableName=t.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": t.ttl_attribute},
                )
        # Restore state before streams and notifications exist, so nothing is processed twice.
        if self.persist:
            state.restore(self.data_dir / "state", s3, ddb, w)
        for t in w.tables:
            if t.stream:
                desc = ddb.update_table(
                    TableName=t.name,
                    StreamSpecification={
                        "StreamEnabled": True,
                        "StreamViewType": "NEW_AND_OLD_IMAGES",
                    },
                )["TableDescription"]
                self.stream_arns[t.name] = desc["LatestStreamArn"]
        role = iam.create_role(
            RoleName="docket-local-lambda",
            AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}',
        )["Role"]["Arn"]
        for f in w.functions:
            lam.create_function(
                FunctionName=f.name,
                Runtime="python3.11",
                Role=role,
                Handler=f"{f.code_dir}/{f.handler}",
                Code={"ZipFile": _placeholder_zip()},
                Timeout=f.timeout_s,
                MemorySize=f.memory_mb,
            )
        for n in w.notifications:
            s3.put_bucket_notification_configuration(
                Bucket=n.bucket,
                NotificationConfiguration={
                    "QueueConfigurations": [
                        {
                            "QueueArn": self.queue_arns[n.queue],
                            "Events": list(n.events),
                            "Filter": {
                                "Key": {"FilterRules": [{"Name": "prefix", "Value": n.prefix}]}
                            },
                        }
                    ]
                },
            )
        self._create_state_machines(role)
        self._create_agent_sinks()
        if self.persist:
            self._recover()

    def _create_state_machines(self, role: str) -> None:
        import json

        from docket import aws
        from docket.config import reset_settings

        sfn = aws.client("stepfunctions")
        for sm in self.wiring.state_machines:
            text = (state_machines_dir() / sm.definition).read_text()
            for placeholder, function in sm.functions.items():
                arn = f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{function}"
                text = text.replace("${" + placeholder + "}", arn)
            json.loads(text)  # a placeholder left unfilled or a broken file fails here, loudly
            arn = sfn.create_state_machine(
                name=sm.name, definition=text, roleArn=role, type="STANDARD"
            )["stateMachineArn"]
            self.state_machine_arns[sm.name] = arn
        for name, variable in (
            (AGENT_STATE_MACHINE, "DOCKET_AGENT_STATE_MACHINE_ARN"),
            (REEMBED_STATE_MACHINE, "DOCKET_REEMBED_STATE_MACHINE_ARN"),
            (SYNC_BACKFILL_STATE_MACHINE, "DOCKET_SYNC_BACKFILL_STATE_MACHINE_ARN"),
        ):
            if name in self.state_machine_arns:
                os.environ[variable] = self.state_machine_arns[name]
        reset_settings()

    def _create_agent_sinks(self) -> None:
        """Locally, e-mail goes through moto's SES (a verified sender) and into outbox/*.eml;
        Slack messages into slack.jsonl; both under the data directory."""
        from docket import aws
        from docket.config import get_settings

        settings = get_settings()
        aws.client("ses").verify_email_identity(EmailAddress=settings.email_sender)

    def _recover(self) -> None:
        """Repair what a crash or a stop in the middle of work left behind: a ``kill -9`` loses
        the writes since the last snapshot while the index on disk keeps its own, and the
        executions of the emulated Step Functions do not outlive the process."""
        from docket import aws
        from docket.agent.factory import get_agent_service
        from docket.ingest.factory import get_ingest_service
        from docket.ingest.reconcile import reconcile

        marker = self.data_dir / CLEAN_STOP
        clean = marker.exists()
        marker.unlink(missing_ok=True)  # from here on, a crash is not a clean stop
        if not clean:
            repairs = reconcile(get_ingest_service())
            if repairs.any():
                log.warning("repaired the index against the tables: %s", vars(repairs))
        ended = get_agent_service().end_unfinished(
            "interrupted: the local cloud stopped while the task ran; start it again"
        )
        if ended:
            log.warning("ended %d agent tasks the stop interrupted", ended)
        state.requeue_pending(self, aws.client("s3"), aws.client("dynamodb"))

    def _sweep_approvals(self) -> None:
        """Decisions a stopped local cloud recorded but never delivered (its executions are gone
        after a restart, so they close as expired instead of waiting for their timeout)."""
        try:
            self.invoke("docket-agent-approval", {"action": "sweep"})
        except Exception:
            log.exception("approval sweep failed")

    def start_pollers(self) -> None:
        """Start the event source mappings (``start(pollers=False)`` leaves events queued)."""
        for es in self.wiring.event_sources:
            if es.function in self.batch_sizes:
                es = replace(es, batch_size=self.batch_sizes[es.function])
            if es.kind == "sqs":
                p: Poller = SqsPoller(
                    es, self.region, self.queue_urls[es.source], self.queue_arns[es.source]
                )
            else:
                p = StreamPoller(
                    es,
                    self.region,
                    self.stream_arns[es.source],
                    self.queue_urls.get(es.on_failure_queue or "", None),
                )
            p.start()
            self.pollers.append(p)
        ttl = {t.name: t.ttl_attribute for t in self.wiring.tables if t.ttl_attribute}
        if ttl and self.sweeper is None:
            self.sweeper = TtlSweeper(ttl, self.region)
            self.sweeper.start()

    # -- observing -----------------------------------------------------------------------------

    def wait_idle(self, timeout: float = 60.0, *, raise_on_timeout: bool = True) -> bool:
        """Block until every queue and stream is drained and no function is running."""
        deadline = time.monotonic() + timeout
        quiet = 0
        pause = 0.05
        while time.monotonic() < deadline:
            # The cheap signs of work first: asking the emulator whether queues and streams are
            # empty walks their messages and competes with the pipeline for the interpreter.
            busy = (
                (self.runtime is not None and self.runtime.in_flight > 0)
                or any(p.busy for p in self.pollers)
                or any(not p.idle() for p in self.pollers)
            )
            quiet = 0 if busy else quiet + 1
            if quiet >= 3:
                return True
            # a long wait is asked less often (up to every 0.5 s); quiet is confirmed quickly
            pause = min(pause * 1.5, 0.5) if busy else 0.05
            time.sleep(pause)
        if raise_on_timeout:
            raise TimeoutError(f"local cloud still busy after {timeout}s")
        return False

    def dead_letters(self, queue: str = INGEST_DLQ) -> list[dict[str, Any]]:
        """Peek at a dead-letter queue's messages (they stay in the queue)."""
        import json

        from docket import aws

        sqs = aws.client("sqs")
        out: list[dict[str, Any]] = []
        resp = sqs.receive_message(
            QueueUrl=self.queue_urls[queue],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        )
        for m in resp.get("Messages", []):
            out.append(json.loads(m["Body"]))
        return out

    def endpoint_resource(self, service: str) -> Any:
        """A boto3 resource (``dynamodb``, ``s3``...) of the local AWS endpoint (port+1), signed
        with its key: what a user's own code or tool would use."""
        import boto3

        if self.s3_endpoint is None:
            raise RuntimeError("the local cloud's AWS endpoint is not started")
        return boto3.resource(
            service,
            endpoint_url=self.s3_endpoint,
            region_name=self.region,
            aws_access_key_id=self.credentials[0],
            aws_secret_access_key=self.credentials[1],
        )

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        import json

        from docket import aws

        resp = aws.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event))
        return json.loads(resp["Payload"].read() or b"null")

    # -- persistence -----------------------------------------------------------------------------

    def snapshot(self) -> None:
        from docket import aws

        state.snapshot(
            self.data_dir / "state", aws.client("s3"), aws.client("dynamodb"), self.wiring
        )

    def _snapshot_loop(self) -> None:
        """Snapshot soon after writes, busy or not, so a crash loses only the last seconds;
        spaced to at least ten times the last snapshot's duration, so it never costs the
        pipeline more than a tenth of a core."""
        saved = state.writes()
        took = 0.0
        last = time.monotonic()
        while not self._stopping.wait(0.5):
            now = time.monotonic()
            if state.writes() == saved or now - last < max(self.snapshot_seconds, 10 * took):
                continue
            saved = state.writes()
            try:
                self.snapshot()
            except Exception:
                log.exception("snapshot failed")
            last = time.monotonic()
            took = last - now


PIPELINE_DLQ_NAME = PIPELINE_DLQ


def _signed_moto_server(secrets_by_key: dict[str, str], ip_address: str, port: int) -> Any:
    from moto.server import DomainDispatcherApplication, ThreadedMotoServer, create_backend_app
    from werkzeug.serving import make_server

    class SignedMotoServer(ThreadedMotoServer):
        """moto's server behind ``SigV4Guard``: unsigned or mis-signed requests get 403."""

        def _server_entry(self) -> None:
            from moto.server import MotoRequestHandler  # type: ignore[attr-defined]

            app = sigv4.SigV4Guard(DomainDispatcherApplication(create_backend_app), secrets_by_key)
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SignedMotoServer(ip_address=ip_address, port=port, verbose=False)


def _placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("README", "dispatched in-process by docket.local.runtime")
    return buf.getvalue()


def _reset_cached_services() -> None:
    """Per-process singletons hold clients bound to the mock that just stopped."""
    from docket.ingest.factory import get_ingest_service

    get_ingest_service.cache_clear()
    try:
        from docket.api.app import documents

        documents.cache_clear()
    except ImportError:
        pass
    try:
        from docket.query import get_query_service

        get_query_service.cache_clear()
    except ImportError:
        pass
    from docket.agent import factory as agent_factory

    agent_factory.reset()
    from docket.generations.factory import get_rebuild_service

    get_rebuild_service.cache_clear()
