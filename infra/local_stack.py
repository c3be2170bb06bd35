#!/usr/bin/env python3
"""Creates template.yaml's resources in the local emulator and writes the env file.

template.yaml is the single source of truth: this script reads it and creates,
against AWS_ENDPOINT_URL (moto), every

  AWS::DynamoDB::Table   key schema, attributes, GSIs, billing mode, then TTL
  AWS::S3::Bucket        plus its public access block and default encryption
  AWS::SQS::Queue        attributes and RedrivePolicy (dead-letter queues first)
  AWS::Events::EventBus
  AWS::Events::Rule      pattern/schedule, targets with DeadLetterConfig, RetryPolicy
  AWS::Scheduler::Schedule  in moto's EventBridge Scheduler, which stores it and
                         fires nothing: the local server fires it from
                         LOCAL_DIR/schedules.json, written here
                         (functions/local/src/schedules.rs)
  AWS::StepFunctions::StateMachine  its Definition (or DefinitionString)
                         with DefinitionSubstitutions applied, type and role
                         ARN; updated in place on a re-run. moto executes it
                         only with its `execute_state_machine` switch on,
                         which infra/moto_server.py sets at start-up
  AWS::SecretsManager::Secret  created once with its local value: the key
                         documents of shared/src/keys.rs for the secrets whose
                         Metadata says `LocalValue: platform-keys` or
                         `signing-keys` (generated here, like `keys init`
                         does in AWS); kept as they are on a re-run, so a
                         rotation made with `keys rotate` survives it
  the MailIdentity parameter  an SES email identity (sesv2 CreateEmailIdentity),
                         which moto treats as verified: its SendEmail refuses
                         any other sender (docs/mail.md)

named `saas-local-<logical-id-in-kebab-case>` (FIFO queues keep `.fifo`).
IAM roles and policies, API Gateway, Lambda, its event source mappings and
log groups are not created: locally the functions run as plain processes
(functions/local), whose pollers read the queues each function's
AWS::Lambda::EventSourceMapping names (QUEUE_URL_<BINARY>..., see build_env). A role's ARN
still resolves (`arn:aws:iam::<account>:role/<local name>`) for the resources
that name one (a schedule's target, a state machine).

Local deviations, so redelivery is observable within seconds in tests:
  LOCAL_QUEUE_VISIBILITY_SECONDS  every queue's VisibilityTimeout (default 3)
  LOCAL_MAX_RECEIVE_COUNT         every RedrivePolicy's maxReceiveCount
                                  (default: the template's)

The SAML SP key is generated once under LOCAL_DIR and kept across restarts:
saml-sp-key.pem (RSA-2048 PKCS#8) and saml-sp-cert.pem (its self-signed
certificate, CN "saas-platform SAML SP", 10 years).

Finally it writes LOCAL_DIR/schedules.json (the schedules as moto stores
them, for the local server to fire) and LOCAL_DIR/env (`export NAME='value'`
lines; docs/infra.md has the contract) and prints its path. Re-running is safe: existing resources
are kept and brought in line with the template (queue attributes, missing
GSIs, TTL, rule targets, state machine definitions).

Environment: AWS_ENDPOINT_URL (default http://127.0.0.1:${MOTO_PORT:-4566}),
LOCAL_DIR (default <repo>/.local), TEMPLATE (default <repo>/template.yaml).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
NAME_PREFIX = "saas-local"
STACK_NAME = NAME_PREFIX

# Parameters whose local value is a file: the env file carries NAME_FILE=<path>
# instead of NAME=<pem>, so multi-line PEMs never pass through a shell file.
FILE_PARAMETERS = {
    "SamlSpPrivateKey": "saml-sp-key.pem",
    "SamlSpCertificate": "saml-sp-cert.pem",
}


def log(message: str) -> None:
    print(f"local_stack: {message}", file=sys.stderr)


# --------------------------------------------------------------- template --


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that understands CloudFormation's short-form tags."""


def _construct_cfn_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_cfn_tag)


def load_template(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass


def kebab(logical_id: str) -> str:
    """TenantProvisioningQueue -> tenant-provisioning-queue, EventsDlq -> events-dlq."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", logical_id)
    return spaced.lower()


def upper_snake(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def local_name(logical_id: str) -> str:
    return f"{NAME_PREFIX}-{kebab(logical_id)}"


class Resolver:
    """Evaluates intrinsic functions against the local resources."""

    def __init__(self, template: dict, parameters: dict[str, Any]) -> None:
        self.template = template
        self.parameters = parameters
        self.refs: dict[str, str] = {}  # logical id -> Ref value (name or URL)
        self.attrs: dict[str, dict[str, str]] = {}  # logical id -> {Arn: ..., ...}
        self.account_id = "123456789012"
        self.conditions = template.get("Conditions") or {}

    def pseudo(self, name: str) -> str:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": STACK_NAME,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{self.account_id}:stack/{STACK_NAME}/local",
        }[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise KeyError(f"!Ref {name}: not a parameter or a locally created resource")

    def get_att(self, resource: str, attribute: str) -> str:
        try:
            return self.attrs[resource][attribute]
        except KeyError:
            raise KeyError(f"!GetAtt {resource}.{attribute}: not known locally") from None

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.conditions[name]))

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"  # ${!Literal}
            if expr in variables:
                return str(self.resolve(variables[expr]))
            if "." in expr and not expr.startswith("AWS::"):
                resource, attribute = expr.split(".", 1)
                return self.get_att(resource, attribute)
            return str(self.ref(expr))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                resource, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], arg[1] if len(arg) > 1 else {})
                return self.sub(arg, {})
            if key == "Fn::Join":
                return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::FindInMap":
                name, top, second = (self.resolve(a) for a in arg[:3])
                return self.template["Mappings"][name][top][second]
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::ToJsonString":
                return json.dumps(self.resolve(arg), separators=(",", ":"))
        return {k: self.resolve(v) for k, v in value.items()}


def resources_of(template: dict, *types: str) -> list[tuple[str, dict]]:
    return [
        (logical_id, resource)
        for logical_id, resource in (template.get("Resources") or {}).items()
        if resource.get("Type") in types
    ]


def logical_id_of(ref: Any) -> str | None:
    """The logical id named by a !Ref X or !GetAtt X.Attr value, if any."""
    if isinstance(ref, dict) and len(ref) == 1:
        (key, arg), = ref.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return arg[0] if isinstance(arg, list) else arg.split(".", 1)[0]
    return None


def function_of_mapping(props: dict) -> str | None:
    """The function an AWS::Lambda::EventSourceMapping feeds (!Ref X or !GetAtt X.Arn)."""
    return logical_id_of(props.get("FunctionName"))


def is_stream(props: dict) -> bool:
    """A mapping on a table's stream (!GetAtt Table.StreamArn), not on a queue."""
    source = props.get("EventSourceArn")
    return isinstance(source, dict) and (source.get("Fn::GetAtt") or [None, None])[1] == "StreamArn"


def event_source_mappings(template: dict, functions: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """Each function's queue mappings, in template order: (name, queue logical
    id). A mapping's logical id is `<function id without Function><name>Mapping`
    (WebhookDispatcherDeliveriesMapping: name Deliveries), so its env var
    names stay what the SAM `Events` entries they replaced gave."""
    out: dict[str, list[tuple[str, str]]] = {}
    for mapping_id, mapping in resources_of(template, "AWS::Lambda::EventSourceMapping"):
        props = mapping.get("Properties") or {}
        function_id = function_of_mapping(props)
        if function_id not in functions:
            raise SystemExit(f"{mapping_id}: FunctionName is not a function of this template")
        if is_stream(props):
            continue
        stem = function_id.removesuffix("Function")
        if not (mapping_id.startswith(stem) and mapping_id.endswith("Mapping") and len(mapping_id) > len(stem) + 7):
            raise SystemExit(f"{mapping_id}: an event source mapping of {function_id} is named {stem}<Name>Mapping")
        queue_id = logical_id_of(props.get("EventSourceArn"))
        if queue_id is None:
            raise SystemExit(f"{mapping_id}: EventSourceArn is not a !GetAtt of a queue of this template")
        out.setdefault(function_id, []).append((mapping_id[len(stem) : -len("Mapping")], queue_id))
    return out


# ---------------------------------------------------------------- secrets --


def write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_secrets(local_dir: Path) -> dict[str, Path]:
    local_dir.mkdir(parents=True, exist_ok=True)
    saml_key_path, saml_cert_path = ensure_saml_sp_key(local_dir)
    for path in (saml_key_path, saml_cert_path):
        os.chmod(path, 0o600)
    return {"SamlSpPrivateKey": saml_key_path, "SamlSpCertificate": saml_cert_path}


def key_documents() -> dict[str, str]:
    """First keys of a local stack, as `keys init` writes them in AWS
    (shared/src/keys.rs has the format): every ring a current and a staged
    key; the platform document lists the signing keys' public halves."""
    import base64
    import datetime
    import hashlib

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    now = datetime.datetime.now(datetime.timezone.utc)
    created = now.strftime("%Y-%m-%dT%H:%M:%SZ")

    def new_id() -> str:
        return f"{now:%Y%m%d}-{secrets.token_hex(3)}"

    def symmetric() -> dict:
        return {"id": new_id(), "secret": base64.b64encode(secrets.token_bytes(32)).decode(), "created_at": created}

    def b64url(number: int) -> str:
        return base64.urlsafe_b64encode(number.to_bytes(32, "big")).rstrip(b"=").decode()

    def signing() -> dict:
        key = ec.generate_private_key(ec.SECP256R1())
        numbers = key.public_key().public_numbers()
        # The key id TokenVerifier computes: SHA-256 over "x.y", 8 bytes, hex.
        kid = hashlib.sha256(f"{b64url(numbers.x)}.{b64url(numbers.y)}".encode()).digest()[:8].hex()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public_pem = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        return {"id": kid, "private_pem": private_pem, "public_pem": public_pem, "created_at": created}

    def ring(make) -> dict:
        current, staged = make(), make()
        return {"current": current["id"], "keys": [current, staged]}

    signing_ring = ring(signing)
    platform = {
        "format": 1,
        "cursor": ring(symmetric),
        "idempotency": ring(symmetric),
        "sealing": ring(symmetric),
        "token_verification": [{"id": k["id"], "public_pem": k["public_pem"]} for k in signing_ring["keys"]],
    }
    return {
        "platform-keys": json.dumps(platform),
        "signing-keys": json.dumps({"format": 1, "signing": signing_ring}),
    }


def ensure_saml_sp_key(local_dir: Path) -> tuple[Path, Path]:
    """The key SAML IdPs encrypt assertions to, and its self-signed certificate
    (what the SP metadata publishes; nothing checks its chain, so self-signed
    is what IdPs expect)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key_path = local_dir / FILE_PARAMETERS["SamlSpPrivateKey"]
    cert_path = local_dir / FILE_PARAMETERS["SamlSpCertificate"]
    if key_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise SystemExit(f"{key_path} is not an RSA private key; delete it to regenerate")
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        cert_path.unlink(missing_ok=True)  # a new key invalidates the old certificate
        log(f"generated SAML SP encryption key in {local_dir}")
    if not cert_path.exists():
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saas-platform SAML SP")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256())
        )
        write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def local_parameters(template: dict, secret_files: dict[str, Path]) -> dict[str, Any]:
    """Every template parameter's local value (defaults, plus generated secrets)."""
    values: dict[str, Any] = {}
    for name, spec in (template.get("Parameters") or {}).items():
        if name in FILE_PARAMETERS:
            values[name] = secret_files[name].read_text()
        elif name == "Architecture":
            values[name] = "x86_64"  # what local builds run on
        elif "Default" in spec:
            values[name] = spec["Default"]
        else:
            raise SystemExit(f"template parameter {name} has no default and no local value")
    return values


# -------------------------------------------------------------- resources --


class LocalStack:
    def __init__(self, template: dict, resolver: Resolver, endpoint: str) -> None:
        self.template = template
        self.r = resolver
        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        config = Config(retries={"max_attempts": 3, "mode": "standard"}, s3={"addressing_style": "path"})
        self.ddb = session.client("dynamodb", endpoint_url=endpoint, config=config)
        self.s3 = session.client("s3", endpoint_url=endpoint, config=config)
        self.sqs = session.client("sqs", endpoint_url=endpoint, config=config)
        self.events = session.client("events", endpoint_url=endpoint, config=config)
        self.scheduler = session.client("scheduler", endpoint_url=endpoint, config=config)
        self.sts = session.client("sts", endpoint_url=endpoint, config=config)
        self.sesv2 = session.client("sesv2", endpoint_url=endpoint, config=config)
        self.sfn = session.client("stepfunctions", endpoint_url=endpoint, config=config)
        self.secretsmanager = session.client("secretsmanager", endpoint_url=endpoint, config=config)
        self.visibility = os.environ.get("LOCAL_QUEUE_VISIBILITY_SECONDS", "3")
        self.max_receive = os.environ.get("LOCAL_MAX_RECEIVE_COUNT") or None

    def create_all(self) -> None:
        self.r.account_id = self.sts.get_caller_identity()["Account"]
        for logical_id, resource in resources_of(self.template, "AWS::DynamoDB::Table"):
            self.table(logical_id, resource.get("Properties") or {})
        for logical_id, resource in resources_of(self.template, "AWS::S3::Bucket"):
            self.bucket(logical_id, resource.get("Properties") or {})
        for logical_id, resource in self.queues_in_dependency_order():
            self.queue(logical_id, resource.get("Properties") or {})
        secrets_of_template = resources_of(self.template, "AWS::SecretsManager::Secret")
        if secrets_of_template:
            self.secrets(secrets_of_template)
        for logical_id, resource in resources_of(self.template, "AWS::Events::EventBus"):
            self.event_bus(logical_id)
        for logical_id, resource in resources_of(self.template, "AWS::Events::Rule"):
            self.rule(logical_id, resource.get("Properties") or {})
        for logical_id, _ in resources_of(self.template, "AWS::IAM::Role"):
            # Not created (moto enforces no IAM); the ARN is what others name.
            name = local_name(logical_id)
            self.r.refs[logical_id] = name
            self.r.attrs[logical_id] = {"Arn": f"arn:aws:iam::{self.r.account_id}:role/{name}"}
        for logical_id, resource in resources_of(self.template, "AWS::StepFunctions::StateMachine"):
            self.state_machine(logical_id, resource.get("Properties") or {})
        for logical_id, _ in resources_of(self.template, "AWS::Scheduler::ScheduleGroup"):
            self.schedule_group(logical_id)
        self.schedules = [
            self.schedule(logical_id, resource.get("Properties") or {})
            for logical_id, resource in resources_of(self.template, "AWS::Scheduler::Schedule")
        ]
        if "MailIdentity" in self.r.parameters:
            self.mail_identity(str(self.r.parameters["MailIdentity"]))

    # -- Secrets Manager -----------------------------------------------------

    def secrets(self, resources: list[tuple[str, dict]]) -> None:
        existing: dict[str, str] = {}
        for page in self.secretsmanager.get_paginator("list_secrets").paginate():
            for entry in page.get("SecretList", []):
                existing[entry["Name"]] = entry["ARN"]
        missing = [logical_id for logical_id, _ in resources if local_name(logical_id) not in existing]
        kinds = {
            logical_id: (resource.get("Metadata") or {}).get("LocalValue") for logical_id, resource in resources
        }
        if missing and len(missing) != len(resources) and any(kinds[m] for m in missing):
            # The key documents belong together (the platform one lists the
            # signing keys' public halves): never make one without the other.
            raise SystemExit(
                f"secrets {missing} are missing but others exist; restart the stack (infra/stack.sh down && up)"
            )
        documents = key_documents() if missing else {}
        for logical_id, _ in resources:
            name = local_name(logical_id)
            if name not in existing:
                kind = kinds[logical_id]
                if kind not in documents:
                    raise SystemExit(f"{logical_id}: Metadata.LocalValue {kind!r} is not a value this script makes")
                existing[name] = self.secretsmanager.create_secret(Name=name, SecretString=documents[kind])["ARN"]
                log(f"secret {name}: generated {kind}")
            self.r.refs[logical_id] = existing[name]
            self.r.attrs[logical_id] = {"Id": existing[name]}

    # -- SES -----------------------------------------------------------------

    def mail_identity(self, identity: str) -> None:
        """The sender identity, verified as far as moto goes: moto marks a
        created identity verified at once (AWS mails a link or checks DNS)."""
        try:
            self.sesv2.create_email_identity(EmailIdentity=identity)
            log(f"SES identity {identity} created")
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "AlreadyExistsException":
                raise

    # -- DynamoDB ----------------------------------------------------------

    def table(self, logical_id: str, props: dict) -> None:
        name = local_name(logical_id)
        gsis = [
            {
                "IndexName": g["IndexName"],
                "KeySchema": g["KeySchema"],
                "Projection": self.r.resolve(g.get("Projection") or {"ProjectionType": "ALL"}),
                **({"ProvisionedThroughput": g["ProvisionedThroughput"]} if "ProvisionedThroughput" in g else {}),
            }
            for g in self.r.resolve(props.get("GlobalSecondaryIndexes") or [])
        ]
        billing = self.r.resolve(props.get("BillingMode", "PROVISIONED"))
        try:
            existing = self.ddb.describe_table(TableName=name)["Table"]
        except self.ddb.exceptions.ResourceNotFoundException:
            existing = None
        if existing is None:
            args: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": self.r.resolve(props["AttributeDefinitions"]),
                "KeySchema": self.r.resolve(props["KeySchema"]),
                "BillingMode": billing,
            }
            if billing == "PROVISIONED":
                args["ProvisionedThroughput"] = self.r.resolve(props["ProvisionedThroughput"])
            if gsis:
                args["GlobalSecondaryIndexes"] = gsis
            if props.get("LocalSecondaryIndexes"):
                args["LocalSecondaryIndexes"] = self.r.resolve(props["LocalSecondaryIndexes"])
            if props.get("StreamSpecification"):
                args["StreamSpecification"] = {"StreamEnabled": True, **self.r.resolve(props["StreamSpecification"])}
            existing = self.ddb.create_table(**args)["TableDescription"]
            log(f"created table {name}")
        else:
            stream = self.r.resolve(props.get("StreamSpecification"))
            current = existing.get("StreamSpecification") or {}
            if stream and current.get("StreamEnabled") and current.get("StreamViewType") != stream.get("StreamViewType"):
                # DynamoDB changes a view type only by disabling the stream and
                # enabling a new one; moto 5.2.5 refuses to enable a stream
                # on a table that ever had one. So a long-running stack keeps
                # its old view type until moto restarts (its state is in memory).
                log(
                    f"WARNING: table {name} streams {current.get('StreamViewType')}, the template says "
                    f"{stream.get('StreamViewType')}; moto cannot replace a stream: restart the stack "
                    "(infra/stack.sh down && infra/stack.sh up)"
                )
            if stream and not current.get("StreamEnabled"):
                existing = self.ddb.update_table(
                    TableName=name, StreamSpecification={"StreamEnabled": True, **stream}
                )["TableDescription"]
                log(f"enabled the stream of table {name}")
            have = {g["IndexName"] for g in existing.get("GlobalSecondaryIndexes", [])}
            for gsi in gsis:
                if gsi["IndexName"] not in have:
                    self.ddb.update_table(
                        TableName=name,
                        AttributeDefinitions=self.r.resolve(props["AttributeDefinitions"]),
                        GlobalSecondaryIndexUpdates=[{"Create": gsi}],
                    )
                    log(f"added index {gsi['IndexName']} to table {name}")
        ttl = self.r.resolve(props.get("TimeToLiveSpecification"))
        if ttl and ttl.get("Enabled"):
            current = self.ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or current.get(
                "AttributeName"
            ) != ttl["AttributeName"]:
                self.ddb.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
                )
        self.r.refs[logical_id] = name
        self.r.attrs[logical_id] = {"Arn": existing["TableArn"]}
        if existing.get("LatestStreamArn"):
            self.r.attrs[logical_id]["StreamArn"] = existing["LatestStreamArn"]

    # -- S3 ----------------------------------------------------------------

    def bucket(self, logical_id: str, props: dict) -> None:
        name = local_name(logical_id)
        try:
            self.s3.head_bucket(Bucket=name)
        except ClientError:
            self.s3.create_bucket(Bucket=name)
            log(f"created bucket {name}")
        block = self.r.resolve(props.get("PublicAccessBlockConfiguration"))
        if block:
            self.s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        encryption = self.r.resolve(props.get("BucketEncryption"))
        if encryption:
            # CloudFormation's ServerSideEncryptionByDefault is the API's
            # ApplyServerSideEncryptionByDefault.
            rules = [
                {
                    ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                    for k, v in rule.items()
                }
                for rule in encryption["ServerSideEncryptionConfiguration"]
            ]
            self.s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        self.r.refs[logical_id] = name
        self.r.attrs[logical_id] = {
            "Arn": f"arn:aws:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
        }

    # -- SQS ---------------------------------------------------------------

    def queues_in_dependency_order(self) -> list[tuple[str, dict]]:
        """Queues, each after the dead-letter queue its RedrivePolicy names."""
        queues = dict(resources_of(self.template, "AWS::SQS::Queue"))
        ordered: list[tuple[str, dict]] = []
        visiting: set[str] = set()

        def visit(logical_id: str) -> None:
            if logical_id in visiting or any(q == logical_id for q, _ in ordered):
                return
            visiting.add(logical_id)
            redrive = (queues[logical_id].get("Properties") or {}).get("RedrivePolicy") or {}
            dlq = logical_id_of(redrive.get("deadLetterTargetArn"))
            if dlq in queues:
                visit(dlq)
            ordered.append((logical_id, queues[logical_id]))

        for logical_id in queues:
            visit(logical_id)
        return ordered

    def queue(self, logical_id: str, props: dict) -> None:
        props = self.r.resolve(props)
        fifo = str(props.get("FifoQueue", "")).lower() == "true"
        name = local_name(logical_id) + (".fifo" if fifo else "")
        attributes: dict[str, str] = {}
        for key in (
            "DelaySeconds",
            "MaximumMessageSize",
            "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds",
            "VisibilityTimeout",
            "ContentBasedDeduplication",
            "DeduplicationScope",
            "FifoThroughputLimit",
            "SqsManagedSseEnabled",
        ):
            if key in props:
                attributes[key] = str(props[key]).lower() if isinstance(props[key], bool) else str(props[key])
        # Local deviation: redelivery within seconds instead of minutes.
        attributes["VisibilityTimeout"] = str(self.visibility)
        if props.get("RedrivePolicy"):
            redrive = dict(props["RedrivePolicy"])
            if self.max_receive:
                redrive["maxReceiveCount"] = int(self.max_receive)
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": int(redrive["maxReceiveCount"])}
            )
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            settable = {k: v for k, v in attributes.items() if k not in ("FifoQueue",)}
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
        except self.sqs.exceptions.QueueDoesNotExist:
            if fifo:
                attributes["FifoQueue"] = "true"
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            log(f"created queue {name}")
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.r.refs[logical_id] = url
        self.r.attrs[logical_id] = {"Arn": arn, "QueueName": name, "QueueUrl": url}

    # -- EventBridge -------------------------------------------------------

    def event_bus(self, logical_id: str) -> None:
        name = local_name(logical_id)
        try:
            arn = self.events.describe_event_bus(Name=name)["Arn"]
        except self.events.exceptions.ResourceNotFoundException:
            arn = self.events.create_event_bus(Name=name)["EventBusArn"]
            log(f"created event bus {name}")
        self.r.refs[logical_id] = name
        self.r.attrs[logical_id] = {"Arn": arn, "Name": name}

    def rule(self, logical_id: str, props: dict) -> None:
        name = local_name(logical_id)
        bus = self.r.resolve(props.get("EventBusName", "default"))
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": props.get("State", "ENABLED")}
        if "EventPattern" in props:
            pattern = self.r.resolve(props["EventPattern"])
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in props:
            args["ScheduleExpression"] = self.r.resolve(props["ScheduleExpression"])
        if "Description" in props:
            args["Description"] = self.r.resolve(props["Description"])
        arn = self.events.put_rule(**args)["RuleArn"]
        targets = []
        for target in self.r.resolve(props.get("Targets") or []):
            entry = {
                k: target[k]
                for k in ("Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy", "SqsParameters")
                if k in target
            }
            if isinstance(entry.get("Input"), dict):
                entry["Input"] = json.dumps(entry["Input"])
            targets.append(entry)
        if targets:
            result = self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
            if result.get("FailedEntryCount"):
                raise SystemExit(f"put_targets for {name} failed: {result['FailedEntries']}")
        self.r.refs[logical_id] = f"{bus}|{name}" if bus != "default" else name
        self.r.attrs[logical_id] = {"Arn": arn}

    # -- Step Functions ----------------------------------------------------

    def state_machine(self, logical_id: str, props: dict) -> None:
        name = local_name(logical_id)
        if "Definition" in props:
            definition: Any = self.r.resolve(props["Definition"])
        elif "DefinitionString" in props:
            definition = json.loads(self.r.resolve(props["DefinitionString"]))
        else:
            raise SystemExit(f"{logical_id}: only Definition or DefinitionString is supported locally")
        substitutions = {k: str(v) for k, v in (self.r.resolve(props.get("DefinitionSubstitutions")) or {}).items()}

        def substitute(value: Any) -> Any:
            # CloudFormation replaces ${Name} for the names it is given and
            # nothing else (ASL paths like $.x never take that form).
            if isinstance(value, str):
                return re.sub(
                    r"\$\{([^}]+)\}", lambda m: substitutions.get(m.group(1), m.group(0)), value
                )
            if isinstance(value, list):
                return [substitute(v) for v in value]
            if isinstance(value, dict):
                return {substitute(k): substitute(v) for k, v in value.items()}
            return value

        body = json.dumps(substitute(definition))
        role_arn = self.r.resolve(props["RoleArn"])
        arn = f"arn:aws:states:{REGION}:{self.r.account_id}:stateMachine:{name}"
        try:
            self.sfn.describe_state_machine(stateMachineArn=arn)
            # Running executions keep the definition they started with.
            self.sfn.update_state_machine(stateMachineArn=arn, definition=body, roleArn=role_arn)
        except self.sfn.exceptions.StateMachineDoesNotExist:
            arn = self.sfn.create_state_machine(
                name=name,
                definition=body,
                roleArn=role_arn,
                type=self.r.resolve(props.get("StateMachineType", "STANDARD")),
            )["stateMachineArn"]
            log(f"created state machine {name}")
        self.r.refs[logical_id] = arn
        self.r.attrs[logical_id] = {"Arn": arn, "Name": name}

    # -- EventBridge Scheduler ---------------------------------------------

    def schedule_group(self, logical_id: str) -> None:
        """The tenants' schedule group (the API functions make schedules in
        it; the local server lists and fires them)."""
        name = local_name(logical_id)
        try:
            # moto's create replaces a group with its schedules: look first.
            arn = self.scheduler.get_schedule_group(Name=name)["Arn"]
        except self.scheduler.exceptions.ResourceNotFoundException:
            arn = self.scheduler.create_schedule_group(Name=name)["ScheduleGroupArn"]
            log(f"created schedule group {name}")
        self.r.refs[logical_id] = name
        self.r.attrs[logical_id] = {"Arn": arn}

    def schedule(self, logical_id: str, props: dict) -> dict:
        """Creates (or updates) the schedule in moto; answers what the local
        server needs to fire it, read back from moto."""
        name = local_name(logical_id)
        props = self.r.resolve(props)
        group = props.get("GroupName") or "default"
        target = {
            k: props["Target"][k]
            for k in ("Arn", "RoleArn", "Input", "RetryPolicy", "DeadLetterConfig", "SqsParameters")
            if k in props["Target"]
        }
        if isinstance(target.get("Input"), dict):
            target["Input"] = json.dumps(target["Input"])
        args: dict[str, Any] = {
            "Name": name,
            "GroupName": group,
            "ScheduleExpression": props["ScheduleExpression"],
            "FlexibleTimeWindow": props["FlexibleTimeWindow"],
            "Target": target,
            "State": props.get("State", "ENABLED"),
        }
        for key in ("Description", "ScheduleExpressionTimezone"):
            if key in props:
                args[key] = props[key]
        try:
            self.scheduler.get_schedule(Name=name, GroupName=group)
            self.scheduler.update_schedule(**args)
        except self.scheduler.exceptions.ResourceNotFoundException:
            self.scheduler.create_schedule(**args)
            log(f"created schedule {name}")
        stored = self.scheduler.get_schedule(Name=name, GroupName=group)
        self.r.refs[logical_id] = name
        self.r.attrs[logical_id] = {"Arn": stored["Arn"]}
        target_arn = stored["Target"]["Arn"]
        queue_url = next(
            (self.r.refs[q] for q, attrs in self.r.attrs.items() if attrs.get("Arn") == target_arn and "QueueUrl" in attrs),
            None,
        )
        return {
            "logical_id": logical_id,
            "name": stored["Name"],
            "arn": stored["Arn"],
            "expression": stored["ScheduleExpression"],
            "state": stored.get("State", "ENABLED"),
            "target_arn": target_arn,
            # Only SQS targets are fired locally (the local server sends the
            # Input to this queue); null for any other target.
            "queue_url": queue_url,
            "input": stored["Target"].get("Input"),
        }


# ---------------------------------------------------------------- env file --


def build_env(template: dict, resolver: Resolver, endpoint: str, secret_files: dict[str, Path]) -> dict[str, str]:
    env: dict[str, str] = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "LOCAL_MODE": "true",
    }
    origin: dict[str, str] = {}

    def put(name: str, value: str, where: str) -> None:
        if name in env and env[name] != value:
            raise SystemExit(
                f"env var {name} has different values in {origin.get(name, 'base')} and {where}; "
                "one env file cannot hold both"
            )
        env[name] = value
        origin.setdefault(name, where)

    def add_variables(variables: dict, where: str) -> None:
        for name, raw in (variables or {}).items():
            param = raw.get("Ref") if isinstance(raw, dict) and len(raw) == 1 else None
            if param in FILE_PARAMETERS:
                put(f"{name}_FILE", str(secret_files[param]), where)
                continue
            value = resolver.resolve(raw)
            put(name, str(value).lower() if isinstance(value, bool) else str(value), where)

    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {})
    add_variables(globals_env.get("Variables") or {}, "Globals")

    queues = dict(resources_of(template, "AWS::SQS::Queue"))
    functions = dict(resources_of(template, "AWS::Serverless::Function"))
    mappings = event_source_mappings(template, functions)
    for logical_id, function in functions.items():
        props = function.get("Properties") or {}
        add_variables(((props.get("Environment") or {}).get("Variables")) or {}, logical_id)
        binary = ((function.get("Metadata") or {}).get("BuildProperties") or {}).get("Binary") or kebab(logical_id)
        sqs_sources = [(name, source) for name, source in mappings.get(logical_id, []) if source in queues]
        for index, (name, queue_id) in enumerate(sqs_sources):
            # The first SQS source is QUEUE_URL_<BINARY>; further ones get
            # their name appended (WebhookDispatcherDeliveriesMapping ->
            # QUEUE_URL_WEBHOOK_DISPATCHER_DELIVERIES).
            suffix = upper_snake(binary) + ("" if index == 0 else "_" + upper_snake(kebab(name)))
            put(f"QUEUE_URL_{suffix}", resolver.refs[queue_id], logical_id)
            redrive = (queues[queue_id].get("Properties") or {}).get("RedrivePolicy") or {}
            dlq_id = logical_id_of(redrive.get("deadLetterTargetArn"))
            if dlq_id:
                put(f"DLQ_URL_{suffix}", resolver.refs[dlq_id], logical_id)
        # A DynamoDB stream source's OnFailure queue: STREAM_DLQ_URL_<BINARY>
        # (the local stream feed parks a batch there after its retries).
        for mapping_id, mapping in resources_of(template, "AWS::Lambda::EventSourceMapping"):
            mapping_props = mapping.get("Properties") or {}
            if function_of_mapping(mapping_props) != logical_id or not is_stream(mapping_props):
                continue
            on_failure = ((mapping_props.get("DestinationConfig") or {}).get("OnFailure")) or {}
            queue_id = logical_id_of(on_failure.get("Destination"))
            if queue_id in queues:
                put(f"STREAM_DLQ_URL_{upper_snake(binary)}", resolver.refs[queue_id], mapping_id)

    for logical_id, _ in resources_of(template, "AWS::S3::Bucket"):
        put(f"{upper_snake(kebab(logical_id))}_NAME", resolver.refs[logical_id], logical_id)
    return env


def shell_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def write_env(path: Path, env: dict[str, str]) -> None:
    lines = ["# Written by infra/local_stack.py from template.yaml; do not edit (re-run `infra/stack.sh up`)."]
    lines += [f"export {name}={shell_quote(value)}" for name, value in env.items()]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".env.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    os.chmod(tmp, 0o600)  # it carries the cursor secret
    os.replace(tmp, path)


def write_schedules(path: Path, schedules: list[dict]) -> None:
    """LOCAL_DIR/schedules.json: the schedules as moto stores them, for the
    local server to fire (moto never does)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".schedules.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"schedules": schedules}, handle, indent=2)
        handle.write("\n")
    os.replace(tmp, path)


def main() -> None:
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"
    local_dir = Path(os.environ.get("LOCAL_DIR") or REPO / ".local").resolve()
    template_path = Path(os.environ.get("TEMPLATE") or REPO / "template.yaml").resolve()

    template = load_template(template_path)
    secret_files = ensure_secrets(local_dir)
    resolver = Resolver(template, local_parameters(template, secret_files))
    stack = LocalStack(template, resolver, endpoint)
    stack.create_all()
    write_schedules(local_dir / "schedules.json", stack.schedules)

    env_path = local_dir / "env"
    env = build_env(template, resolver, endpoint, secret_files)
    # Request metrics (shared/src/metrics.rs): the EMF lines go to a file the
    # suite checks rather than into the server's log, and the rollups are
    # flushed every second instead of every 10.
    env["METRICS_EMF"] = str(local_dir / "metrics.emf.jsonl")
    env["METRICS_FLUSH_SECONDS"] = "1"
    write_env(env_path, env)
    log(f"resources ready at {endpoint}")
    print(env_path)


if __name__ == "__main__":
    main()
