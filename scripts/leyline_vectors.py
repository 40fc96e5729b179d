#!/usr/bin/python3
"""Cross-language Leyline test vectors (spec 01 "Canonical bytes and signing").

Compiles the project's .proto files with protoc, builds a fixed set of Leyline messages
with the Python protobuf runtime, signs the signed ones (HMAC-SHA256 over the canonical
bytes: the deterministic encoding with security.signature empty) and writes one JSON file
per vector to test/vectors/python/.

    /usr/bin/python3 scripts/leyline_vectors.py           # (re)write test/vectors/python
    /usr/bin/python3 scripts/leyline_vectors.py --check   # verify test/vectors/typescript

--check parses every TypeScript-made vector, re-serialises it deterministically and
requires byte identity, recomputes the HMAC of signed ones, requires that each TypeScript
vector equals the Python vector of the same name, and that the committed Python vectors
are what this script builds now. It exits non-zero on any mismatch.

Needs Debian `protobuf-compiler` (protoc 3.21) and `python3-protobuf`, hence the
interpreter in the shebang: a pyenv/venv `python3` usually lacks the protobuf module.
"""

import argparse
import hashlib
import hmac
import importlib
import json
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = REPO_ROOT / "proto"
PROTO_PACKAGE_DIR = PROTO_ROOT / "esper" / "leyline" / "v1"
PYTHON_VECTORS_DIR = REPO_ROOT / "test" / "vectors" / "python"
TYPESCRIPT_VECTORS_DIR = REPO_ROOT / "test" / "vectors" / "typescript"
# Debian's protobuf-compiler installs the well-known types here (libprotobuf-dev).
WELL_KNOWN_INCLUDE_DIRS = [Path("/usr/include"), Path("/usr/local/include")]

# The fixed test keys. Never use them outside test vectors.
KEY_ID = "vector-test"
SECRETS = {
    "vector-test": b"esper-vector-test-secret-0001",
    "vector-test-next": b"esper-vector-test-secret-0002",
}

# Fixed clock readings (Unix ms). SIGNED_AT_MS is the signer's clock; 2026-01-02T03:04:05.678Z.
SIGNED_AT_MS = 1767323045678
ISSUED_AT_MS = 1767323045000
DEFAULT_FRESHNESS_MS = 60_000
RUN_ID = "run-2026-01-02-vectors"

UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1


def fail(message):
    print(f"leyline_vectors: {message}", file=sys.stderr)
    sys.exit(1)


def compile_protos(out_dir):
    """Runs protoc --python_out over every project proto and returns the generated modules."""
    protoc = shutil.which("protoc")
    if protoc is None:
        fail("protoc not found; install it with: apt-get install protobuf-compiler")
    includes = [f"-I{PROTO_ROOT}"]
    for candidate in WELL_KNOWN_INCLUDE_DIRS:
        if (candidate / "google" / "protobuf" / "timestamp.proto").is_file():
            includes.append(f"-I{candidate}")
            break
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_PACKAGE_DIR.glob("*.proto"))
    if not protos:
        fail(f"no .proto files under {PROTO_PACKAGE_DIR}")
    result = subprocess.run(
        [protoc, *includes, f"--python_out={out_dir}", *protos],
        cwd=PROTO_ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        fail(f"protoc failed:\n{result.stderr}")
    sys.path.insert(0, str(out_dir))
    try:
        importlib.import_module("google.protobuf")
    except ImportError:
        fail("python protobuf runtime missing; run with /usr/bin/python3 "
             "after: apt-get install python3-protobuf")
    modules = {}
    for proto in protos:
        module_name = proto[: -len(".proto")].replace("/", ".") + "_pb2"
        modules[Path(proto).stem] = importlib.import_module(module_name)
    return modules


class Leyline:
    """Every generated message and enum value of package esper.leyline.v1, by name."""

    def __init__(self, modules):
        self._names = {}
        for module in modules.values():
            for name in dir(module):
                if not name.startswith("_"):
                    self._names.setdefault(name, getattr(module, name))
        self._by_full_name = {}
        for module in modules.values():
            for descriptor in module.DESCRIPTOR.message_types_by_name.values():
                self._by_full_name[descriptor.full_name] = getattr(module, descriptor.name)

    def __getattr__(self, name):
        try:
            return self._names[name]
        except KeyError:
            raise AttributeError(name) from None

    def message_class(self, full_name):
        return self._by_full_name.get(full_name)


def timestamp(ms):
    from google.protobuf.timestamp_pb2 import Timestamp

    return Timestamp(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def duration(ms):
    from google.protobuf.duration_pb2 import Duration

    return Duration(seconds=ms // 1000, nanos=(ms % 1000) * 1_000_000)


def duration_of(seconds, nanos):
    """A Duration from raw parts, for spans finer than a millisecond."""
    from google.protobuf.duration_pb2 import Duration

    return Duration(seconds=seconds, nanos=nanos)


def encode(message):
    return message.SerializeToString(deterministic=True)


def canonical_bytes(message):
    """The bytes a signature covers: the deterministic encoding with security.signature empty."""
    copy = type(message)()
    copy.CopyFrom(message)
    if copy.HasField("security"):
        copy.security.signature = b""
    return encode(copy)


def mac(key_id, data):
    return hmac.new(SECRETS[key_id], data, hashlib.sha256).digest()


def sign(message, nonce, key_id=KEY_ID, freshness_ms=DEFAULT_FRESHNESS_MS):
    """Fills security like HmacSigner.sign with a FakeClock at SIGNED_AT_MS, then signs."""
    message.ClearField("security")
    security = message.security
    security.nonce = nonce
    security.issued_at.CopyFrom(timestamp(SIGNED_AT_MS))
    security.freshness_window.CopyFrom(duration(freshness_ms))
    security.key_id = key_id
    security.signature = mac(key_id, canonical_bytes(message))
    return message


def vector(name, message, description, known_divergence=None):
    signed = message.DESCRIPTOR.fields_by_name.get("security") is not None and message.HasField(
        "security"
    )
    out = {
        "name": name,
        "type": message.DESCRIPTOR.full_name,
        "hex": encode(message).hex(),
        "signed": signed,
    }
    if signed:
        out["signature_hex"] = message.security.signature.hex()
        out["key_id"] = message.security.key_id
    out["description"] = description
    if known_divergence is not None:
        out["known_divergence"] = known_divergence
    return out


def build_vectors(L):
    """The Python vector set. Keep in step with scripts/make-ts-vectors.ts (same names, same content)."""
    vectors = []

    # --- Signed: AdaptationCommand, one vector per payload case --------------------------
    seed_defaults = L.AdaptationCommand(
        version=1,
        command_id="cmd-0001-seed-germinate",
        command_type=L.COMMAND_SEED,
        target_seed_id="seed-r0c1",
        execution_deadline_ms=250,
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="tamiyo",
        training_run_id=RUN_ID,
        seed_operation=L.CommandSeedOperation(
            operation=L.SEED_OP_GERMINATE,
            blueprint_id="bp-residual-mlp",
            blend_alpha=0.0,
            blend_mode=L.BLEND_MODE_UNSPECIFIED,
            schedule_start=0.0,
            schedule_end=-0.0,
            resume_flag=False,
            include_teacher=False,
        ),
        metadata=L.DecisionMetadata(
            policy=L.PolicyMetadata(
                action_id=7,
                value_estimate=-1.25,
                risk_score=0.375,
                policy_version="policy-v3.1",
                param_delta=-0.0,
                risk_index=2,
                blending_index=0,
            ),
            risk=L.RiskMetadata(
                reason=L.RISK_REASON_POLICY_RISK_ELEVATED,
                conservative_mode=True,
                breaker_confidence=0.9,
            ),
            blend=L.BlendConfig(
                mode=L.BLEND_MODE_CHANNEL,
                alpha=0.5,
                schedule_start=0.0,
                schedule_end=1.0,
                alpha_vec=[0.0, 0.125, 0.25, -0.0, 1.0, 0.1, 1e-45, 3.4028234663852886e38],
                logits_available=False,
                gate_k=4.0,
                gate_tau=0.2,
                alpha_lo=0.05,
                alpha_hi=0.95,
                mode_source=L.BLEND_MODE_SOURCE_POLICY,
                confidence_logits_required=False,
            ),
            coverage=L.CoverageSummary(
                average=0.875,
                groups=[
                    L.CoverageGroup(name="blueprint", value=1.0),
                    L.CoverageGroup(name="seed", value=0.75),
                    L.CoverageGroup(name="telemetry", value=0.0),
                ],
            ),
            selection=L.SelectionContext(
                seed_id="seed-r0c1",
                blueprint_id="bp-residual-mlp",
                seed_score=0.6,
                blueprint_score=-0.3,
            ),
        ),
    )
    sign(seed_defaults, nonce=seed_defaults.command_id)
    vectors.append(vector(
        "command-seed-optional-defaults",
        seed_defaults,
        "COMMAND_SEED whose proto3 optional fields are all explicitly set to their default "
        "values (0.0, UNSPECIFIED, false; schedule_end -0.0), so each is present on the wire; "
        "full DecisionMetadata with a packed alpha_vec (incl. -0.0, a subnormal and FLT_MAX) "
        "and ordered coverage groups; implicit float param_delta = -0.0 is written.",
    ))

    seed_unset = L.AdaptationCommand(
        version=1,
        command_id="cmd-0002-seed-cull",
        command_type=L.COMMAND_SEED,
        target_seed_id="seed-r1c0",
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="tamiyo",
        training_run_id=RUN_ID,
        seed_operation=L.CommandSeedOperation(operation=L.SEED_OP_CULL),
    )
    sign(seed_unset, nonce=seed_unset.command_id)
    vectors.append(vector(
        "command-seed-optional-unset",
        seed_unset,
        "COMMAND_SEED with every proto3 optional field unset (absent on the wire), no "
        "metadata, execution_deadline_ms 0 (omitted).",
    ))

    seed_empty = L.AdaptationCommand(
        version=1,
        command_id="cmd-0003-seed-empty",
        command_type=L.COMMAND_SEED,
        issued_at=timestamp(ISSUED_AT_MS),
        training_run_id=RUN_ID,
    )
    seed_empty.seed_operation.SetInParent()
    sign(seed_empty, nonce=seed_empty.command_id)
    vectors.append(vector(
        "command-seed-empty-payload",
        seed_empty,
        "Oneof case seed_operation set to an all-default message: encoded as a zero-length "
        "field 10, distinct from an unset oneof.",
    ))

    optimizer = L.AdaptationCommand(
        version=1,
        command_id="cmd-0004-optimizer",
        command_type=L.COMMAND_OPTIMIZER,
        execution_deadline_ms=UINT32_MAX,
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="tamiyo",
        training_run_id=RUN_ID,
        optimizer_adjustment=L.CommandOptimizerAdjustment(
            optimizer_id="opt-main",
            learning_rate=3e-4,
            weight_decay=0.0,
            optimizer_family=L.OPTIMIZER_FAMILY_ADAMW,
        ),
        metadata=L.DecisionMetadata(risk=L.RiskMetadata(reason=L.RISK_REASON_OPTIMIZER_HINT)),
    )
    sign(optimizer, nonce=optimizer.command_id)
    vectors.append(vector(
        "command-optimizer-adjustment",
        optimizer,
        "COMMAND_OPTIMIZER: learning_rate set, momentum unset, weight_decay explicitly 0.0, "
        "enum optional set; execution_deadline_ms = uint32 max; partial DecisionMetadata.",
    ))

    breaker = L.AdaptationCommand(
        version=1,
        command_id="cmd-0005-breaker",
        command_type=L.COMMAND_CIRCUIT_BREAKER,
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="operator:ßørén",
        training_run_id=RUN_ID,
        circuit_breaker=L.CommandCircuitBreaker(
            desired_state=L.CIRCUIT_STATE_OPEN,
            rationale="Überlast — ρ>0.9 ⚠️ 断路器 🔌",
        ),
    )
    sign(breaker, nonce=breaker.command_id)
    vectors.append(vector(
        "command-circuit-breaker",
        breaker,
        "COMMAND_CIRCUIT_BREAKER with non-ASCII strings (Latin-1, Greek, CJK, emoji with a "
        "variation selector, astral plane).",
    ))

    rollback = L.AdaptationCommand(
        version=1,
        command_id="cmd-0006-rollback",
        command_type=L.COMMAND_ROLLBACK,
        target_seed_id="seed-r0c2",
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="tolaria",
        training_run_id=RUN_ID,
        rollback=L.RollbackRequest(
            seed_id="seed-r0c2",
            stage=L.SEED_STAGE_BLENDING,
            reason="loss_spike",
            tier=L.ROLLBACK_TIER_FULL,
            target_global_step=UINT64_MAX,
        ),
    )
    sign(rollback, nonce=rollback.command_id)
    vectors.append(vector(
        "command-rollback",
        rollback,
        "COMMAND_ROLLBACK with target_global_step = uint64 max (10-byte varint).",
    ))

    emergency = L.AdaptationCommand(
        version=1,
        command_id="cmd-0007-emergency",
        command_type=L.COMMAND_EMERGENCY,
        execution_deadline_ms=50,
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="weatherlight",
        training_run_id=RUN_ID,
        emergency=L.CommandEmergency(level=L.EMERGENCY_LEVEL_HALT, reason="epoch_budget"),
    )
    sign(emergency, nonce=emergency.command_id)
    vectors.append(vector("command-emergency", emergency, "COMMAND_EMERGENCY at level HALT."))

    pause = L.AdaptationCommand(
        version=1,
        command_id="cmd-0008-pause",
        command_type=L.COMMAND_PAUSE,
        issued_at=timestamp(ISSUED_AT_MS),
        issued_by="operator",
        training_run_id=RUN_ID,
    )
    sign(pause, nonce="nonce-pause-0008", key_id="vector-test-next")
    vectors.append(vector(
        "command-pause-rotated-key",
        pause,
        "COMMAND_PAUSE with no payload (oneof unset), an explicit nonce, signed with the "
        "second ring key 'vector-test-next' (secret esper-vector-test-secret-0002): the "
        "verifier must pick the key by security.key_id.",
    ))

    open_enums = L.AdaptationCommand(
        version=1,
        command_id="cmd-0009-open-enums",
        command_type=L.COMMAND_STRUCTURAL_PRUNING,
        issued_at=timestamp(ISSUED_AT_MS),
        training_run_id=RUN_ID,
        emergency=L.CommandEmergency(level=9, reason="future_level"),
        metadata=L.DecisionMetadata(risk=L.RiskMetadata(reason=999)),
    )
    sign(open_enums, nonce=open_enums.command_id)
    vectors.append(vector(
        "command-open-enum-values",
        open_enums,
        "Enum numbers unknown to this schema (EmergencyLevel 9, RiskReason 999): proto3 "
        "enums are open, both runtimes keep and re-encode the number, the signature holds.",
    ))

    # --- Signed: PolicyUpdate and BSDS ---------------------------------------------------
    weights = bytes([0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]) + "weights:tamiyo-gnn".encode()
    policy = L.PolicyUpdate(
        version=1,
        policy_id="policy-0042",
        training_run_id=RUN_ID,
        issued_at=timestamp(ISSUED_AT_MS + 123),
        tamiyo_policy_version="policy-v3.2",
        payload=weights,
        architecture=L.PolicyArchitecture(id="tamiyo-gnn", version=3),
        checksum=hashlib.sha256(weights).digest(),
        validation=L.PolicyValidationSummary(
            passed=True,
            checks=[
                L.PolicyValidationCheck(name="mean_reward", passed=True, value=12.5, threshold=10.0),
                L.PolicyValidationCheck(
                    name="loss_regression", passed=False, value=-0.0, threshold=1e-300
                ),
                L.PolicyValidationCheck(
                    name="latency_p95_ms", passed=True, value=4.2, threshold=5e-324
                ),
            ],
            episodes=128,
            mean_reward=-3.75,
            validated_at=timestamp(ISSUED_AT_MS - 60_000),
        ),
    )
    sign(policy, nonce="nonce-policy-0010")
    vectors.append(vector(
        "policy-update",
        policy,
        "PolicyUpdate with binary payload (0x00, 0xff bytes), SHA-256 checksum, validation "
        "checks with doubles -0.0, 1e-300 and the smallest subnormal.",
    ))

    bsds = L.BSDS(
        version=1,
        blueprint_id="bp-conv3x3",
        risk_score=0.35,
        hazard_band=L.HAZARD_BAND_HIGH,
        handling_class=L.HANDLING_CLASS_RESTRICTED,
        resource_profile=L.RESOURCE_PROFILE_GPU,
        recommendation="Use behind a breaker; ≤ 2 concurrent grafts",
        issued_at=timestamp(ISSUED_AT_MS + 456),
        provenance=L.PROVENANCE_URABRASK,
        artifact_checksum="sha256:" + hashlib.sha256(b"bp-conv3x3").hexdigest(),
    )
    sign(bsds, nonce="nonce-bsds-0011", freshness_ms=1_500)
    vectors.append(vector(
        "bsds",
        bsds,
        "Blueprint safety data sheet; freshness window 1.5 s (Duration with nanos).",
    ))

    # --- Unsigned: SystemStatePacket -----------------------------------------------------
    state_full = L.SystemStatePacket(
        version=1,
        current_epoch=42,
        validation_accuracy=0.8125,
        validation_loss=math.inf,
        timestamp_ns=1767323045678000123,
        hardware_context=L.HardwareContext(
            device_type="cpu",
            device_id="cpu:0",
            total_memory_gb=31.25,
            available_memory_gb=12.5,
            temperature_celsius=-40.0,
            utilization_percent=87.5,
            compute_capability=0,
        ),
        seed_states=[
            L.SeedState(
                seed_id="seed-r0c1",
                stage=L.SEED_STAGE_BLENDING,
                gradient_norm=0.0123,
                learning_rate=1e-3,
                layer_depth=3,
                age_epochs=5,
                risk_score=0.25,
                metrics=L.SeedMetrics(
                    alpha=0.4,
                    alpha_steps=40,
                    alpha_total_steps=100,
                    alpha_temperature=1.0,
                    blend_allowed=True,
                    risk_tolerance=0.5,
                    isolation_violations=0,
                    kernel_latency_ms=0.75,
                    parameter_count=2**53 + 1,
                ),
                blueprint_id="bp-residual-mlp",
                site_id="r0c1",
            ),
            L.SeedState(seed_id="seed-r1c0", stage=L.SEED_STAGE_DORMANT, site_id="r1c0"),
        ],
        packet_id="ssp-0001",
        global_step=2**63,
        training_loss=0.6931472,
        source_subsystem="tolaria",
        training_run_id=RUN_ID,
        experiment_name="mnist·grow 成長 🌱",
        metrics=L.TrainingMetrics(
            optimizer_lr=0.01,
            optimizer_momentum=0.9,
            loss_delta=-0.015625,
            loss_ewma=0.7,
            loss_volatility=0.02,
            grad_norm_ewma=1.5,
            grad_conflict_rate=0.0,
            tamiyo_latency_ms=3.5,
            kasmina_apply_ms=1.25,
            kasmina_finalize_ms=0.5,
            step_latency_ms=120.0,
            cpu_util_percent=97.5,
            samples_per_s=2048.0,
            hook_latency_ms=0.125,
            optimizer_family=L.OPTIMIZER_FAMILY_SGD,
            input_wait_ms=8.0,
            grad_var=1e-6,
            epochs_total=100,
            gradient_norm=-math.inf,
            extra_metrics=[
                L.MetricPoint(
                    name="tolaria.epoch_ms",
                    value=1234.5,
                    unit="ms",
                    attributes={"phase": "train", "device": "cpu"},
                ),
                L.MetricPoint(name="tolaria.rollback_count", value=0.0, unit="count"),
            ],
        ),
    )
    vectors.append(vector(
        "system-state-full",
        state_full,
        "SystemStatePacket with nested seed states and SeedMetrics, TrainingMetrics with "
        "extra_metrics (attribute map), uint64 fields above 2^53 (timestamp_ns, "
        "parameter_count = 2^53+1, global_step = 2^63), +inf and -inf floats, unicode.",
    ))

    state_sparse = L.SystemStatePacket(version=1, packet_id="ssp-0002")
    state_sparse.seed_states.add()
    state_sparse.metrics.SetInParent()
    vectors.append(vector(
        "system-state-sparse",
        state_sparse,
        "Mostly-default SystemStatePacket: an all-default repeated seed state and an empty "
        "TrainingMetrics are each written as zero-length fields; unset ones are absent.",
    ))

    # --- Unsigned: FieldReport -----------------------------------------------------------
    report = L.FieldReport(
        version=1,
        report_id="fr-0001",
        command_id="cmd-0001-seed-germinate",
        training_run_id=RUN_ID,
        seed_id="seed-r0c1",
        blueprint_id="bp-residual-mlp",
        outcome=L.FIELD_REPORT_OUTCOME_REGRESSION,
        observation_window_epochs=3,
        issued_at=timestamp(ISSUED_AT_MS + 3_600_000),
        tamiyo_policy_version="policy-v3.1",
        follow_up_actions=[
            L.MitigationAction(action_type="rollback", rationale="loss rose 12 % after blending"),
            L.MitigationAction(action_type="reduce_alpha"),
        ],
        notes="Regression — see trace 🔎",
        delta=L.FieldReportDelta(
            loss_delta=0.125,
            param_delta=-0.0,
            risk_index=2.0,
            risk_score=0.5,
            tamiyo_latency_ms=3.25,
            hook_latency_ms=0.0,
            kasmina_apply_ms=1.5,
            kasmina_finalize_ms=0.25,
            value_estimate=-2.5,
            blending_index=1.0,
            selected_seed_score=0.6,
            schedule_start=0.0,
            schedule_end=1.0,
            blueprint_risk=0.35,
        ),
        extra_metrics=[
            L.MetricPoint(
                name="simic.reward",
                value=-0.75,
                unit="ratio",
                attributes={"shaped": "true", "component": "pbrs"},
            ),
            L.MetricPoint(name="simic.window_steps", value=300.0, unit="count"),
        ],
    )
    vectors.append(vector(
        "field-report",
        report,
        "FieldReport with a typed delta (incl. -0.0), two follow-up actions (one with an "
        "empty rationale), ordered extra_metrics with an attribute map.",
    ))

    # --- Unsigned: TelemetryPacket -------------------------------------------------------
    telemetry = L.TelemetryPacket(
        packet_id="tp-0001",
        timestamp=timestamp(SIGNED_AT_MS),
        source_subsystem="kasmina",
        level=L.TELEMETRY_LEVEL_WARNING,
        metrics=[
            L.MetricPoint(
                name="kasmina.apply_ms",
                value=1.25,
                unit="ms",
                attributes={"stage": "BLENDING", "seed_id": "seed-r0c1", "blueprint": "bp-residual-mlp"},
            ),
            L.MetricPoint(name="kasmina.isolation_violations", value=2.0, unit="count"),
        ],
        events=[
            L.TelemetryEvent(
                event_id="tp-0001:evt-1",
                description="isolation_violation",
                level=L.TELEMETRY_LEVEL_WARNING,
                attributes={
                    "violations": "2",
                    "über": "ja",
                    "seed_id": "seed-r0c1",
                    "größe": "3×3",
                    "Zone": "host",
                    "empty": "",
                },
            ),
            L.TelemetryEvent(
                event_id="tp-0001:evt-2",
                description="seed_stage_changed",
                level=L.TELEMETRY_LEVEL_INFO,
            ),
        ],
        spans=[
            L.TraceSpan(
                trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
                span_id="00f067aa0ba902b7",
                name="kasmina.apply",
                start_time=timestamp(SIGNED_AT_MS - 78),
                duration=duration_of(seconds=0, nanos=1_250_000),
                attributes={"seed_id": "seed-r0c1", "": "empty key"},
            ),
            L.TraceSpan(
                trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
                span_id="00f067aa0ba902b8",
                parent_span_id="00f067aa0ba902b7",
                name="kasmina.graft",
                start_time=timestamp(SIGNED_AT_MS - 77),
                duration=duration_of(seconds=2, nanos=5),
            ),
        ],
        system_health=L.SystemHealth(
            status=L.HEALTH_STATUS_DEGRADED,
            summary="1 seed isolating",
            indicators={"seed-r1c0": "DORMANT", "seed-r0c1": "BLENDING"},
        ),
        priority=L.MESSAGE_PRIORITY_HIGH,
        training_run_id=RUN_ID,
    )
    vectors.append(vector(
        "telemetry-packet",
        telemetry,
        "TelemetryPacket with metrics, events, spans and health, each with attribute maps "
        "whose keys are written sorted (Python's deterministic order = code point order; the "
        "TS side inserts keys sorted, BMP-only so UTF-16 order agrees); includes an empty "
        "key and an empty value (map entries always carry both key and value).",
    ))

    doubles = L.TelemetryPacket(
        packet_id="tp-0002",
        source_subsystem="tolaria",
        level=L.TELEMETRY_LEVEL_INFO,
        metrics=[
            L.MetricPoint(name="neg_zero", value=-0.0, unit="ratio"),
            L.MetricPoint(name="neg_inf", value=-math.inf, unit="ms"),
            L.MetricPoint(name="pos_inf", value=math.inf, unit="ms"),
            L.MetricPoint(name="min_subnormal", value=5e-324, unit="ratio"),
            L.MetricPoint(name="max_double", value=1.7976931348623157e308, unit="ratio"),
            L.MetricPoint(name="tiny_negative", value=-2.2250738585072014e-308, unit="ratio"),
            L.MetricPoint(name="third", value=1 / 3, unit="ratio"),
            L.MetricPoint(name="two_pow_53_plus_1", value=float(2**53 + 1), unit="count"),
        ],
        priority=L.MESSAGE_PRIORITY_LOW,
    )
    doubles.timestamp.SetInParent()
    vectors.append(vector(
        "telemetry-special-doubles",
        doubles,
        "Special double values: -0.0 (written for an implicit-presence field by both "
        "runtimes), +/-inf, smallest subnormal, DBL_MAX, 1/3, 2^53+1 (rounds to 2^53). "
        "Timestamp at the epoch: present but empty. NaN is deliberately absent: ECMAScript "
        "leaves the NaN bit pattern written by DataView implementation-defined.",
    ))

    # --- Unsigned: EmergencySignal and BusEnvelope ---------------------------------------
    signal = L.EmergencySignal(
        version=1,
        level=L.EMERGENCY_LEVEL_CONSERVATIVE,
        reason="rollback_deadline",
        origin="tolaria",
        triggered_at=timestamp(-1_500),
        monotonic_time_ms=123_456_789_012,
        training_run_id=RUN_ID,
        payload_checksum=hashlib.sha256(b"checkpoint-epoch-41").digest(),
        epoch=41,
        operator_initiated=True,
    )
    vectors.append(vector(
        "emergency-signal",
        signal,
        "EmergencySignal with a pre-epoch timestamp (negative seconds: 10-byte varint, "
        "positive nanos), bytes checksum and uint64 monotonic time.",
    ))

    envelope_command = L.BusEnvelope(
        message_type=L.BUS_MESSAGE_TYPE_ADAPTATION_COMMAND,
        payload=encode(seed_defaults),
        priority=L.MESSAGE_PRIORITY_CRITICAL,
        correlation_id="cmd-0001-seed-germinate",
        training_run_id=RUN_ID,
        published_at=timestamp(SIGNED_AT_MS + 22),
        attempt=1,
        message_id="msg-0001",
    )
    vectors.append(vector(
        "bus-envelope-command",
        envelope_command,
        "BusEnvelope whose payload is the encoding of command-seed-optional-defaults "
        "(signed command carried as opaque bytes).",
    ))

    envelope_telemetry = L.BusEnvelope(
        message_type=L.BUS_MESSAGE_TYPE_TELEMETRY,
        payload=encode(telemetry),
        priority=L.MESSAGE_PRIORITY_HIGH,
        training_run_id=RUN_ID,
        published_at=timestamp(SIGNED_AT_MS + 23),
        attempt=3,
        message_id="msg-0002",
    )
    vectors.append(vector(
        "bus-envelope-telemetry",
        envelope_telemetry,
        "BusEnvelope on its third delivery attempt carrying the telemetry-packet encoding; "
        "empty correlation_id omitted.",
    ))

    # --- Python-only: map-key order edge cases ----------------------------------------------
    astral = L.TelemetryPacket(
        packet_id="tp-0003",
        source_subsystem="nissa",
        metrics=[
            L.MetricPoint(
                name="keys.astral",
                value=1.0,
                unit="count",
                attributes={"😀 emoji": "b", "！ fullwidth": "a", "z": "c"},
            )
        ],
    )
    vectors.append(vector(
        "telemetry-astral-map-keys",
        astral,
        "Python-only. Map keys sorted by code point: 'z' < U+FF01 < U+1F600. protobuf-es "
        "keeps map entries in wire order when decoding, so it re-encodes this identically. "
        "Note: JavaScript's default sort orders by UTF-16 code units (U+1F600 as surrogate "
        "0xD83D sorts before U+FF01), so a TS producer that sorts keys with .sort() writes a "
        "different order than Python for keys mixing astral and U+E000..U+FFFF characters.",
    ))

    integer_keys = L.TelemetryPacket(
        packet_id="tp-0004",
        source_subsystem="nissa",
        metrics=[
            L.MetricPoint(
                name="keys.integer_like",
                value=1.0,
                unit="count",
                attributes={"9": "nine", "10": "ten", "a": "letter"},
            )
        ],
    )
    vectors.append(vector(
        "telemetry-integer-like-map-keys",
        integer_keys,
        "Python-only. Python writes map keys sorted as strings: '10' < '9' < 'a'.",
        known_divergence=(
            "protobuf-es holds map<string, _> fields in plain JS objects, which enumerate "
            "integer-like keys ('9', '10') first in numeric order whatever the insertion "
            "order, so TypeScript re-encodes this as '9', '10', 'a'. The decoded messages "
            "are equal; the bytes are not. Map-bearing messages are never signed (spec 01)."
        ),
    ))

    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names)), "duplicate vector names"
    return vectors


def render(vector_record):
    return json.dumps(vector_record, indent=2, ensure_ascii=False) + "\n"


def write_vectors(vectors):
    PYTHON_VECTORS_DIR.mkdir(parents=True, exist_ok=True)
    for stale in PYTHON_VECTORS_DIR.glob("*.json"):
        stale.unlink()
    for record in vectors:
        (PYTHON_VECTORS_DIR / f"{record['name']}.json").write_text(render(record), encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {PYTHON_VECTORS_DIR.relative_to(REPO_ROOT)}")


def load_vectors(directory):
    records = []
    for path in sorted(directory.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        if record.get("name") != path.stem:
            raise ValueError(f"{path.name}: name {record.get('name')!r} does not match the file name")
        records.append((path, record))
    return records


def check_typescript_vectors(L, python_vectors):
    """Returns a list of problems; empty means every TypeScript vector checks out."""
    problems = []
    by_name = {v["name"]: v for v in python_vectors}
    records = load_vectors(TYPESCRIPT_VECTORS_DIR)
    if not records:
        return [f"no TypeScript vectors in {TYPESCRIPT_VECTORS_DIR.relative_to(REPO_ROOT)}; "
                "run: npx tsx scripts/make-ts-vectors.ts"]
    for path, record in records:
        name = record["name"]
        message_class = L.message_class(record["type"])
        if message_class is None:
            problems.append(f"{name}: unknown type {record['type']}")
            continue
        wire = bytes.fromhex(record["hex"])
        message = message_class()
        try:
            message.ParseFromString(wire)
        except Exception as error:  # noqa: BLE001 - report any decode failure
            problems.append(f"{name}: Python cannot parse the TypeScript bytes: {error}")
            continue
        reencoded = encode(message)
        if reencoded != wire:
            problems.append(
                f"{name}: re-serialised bytes differ\n  typescript {wire.hex()}\n  python     {reencoded.hex()}"
            )
        known = type(message)()
        known.CopyFrom(message)
        known.DiscardUnknownFields()
        if encode(known) != reencoded:
            problems.append(f"{name}: holds fields unknown to the Python schema")
        has_security = "security" in message.DESCRIPTOR.fields_by_name and message.HasField("security")
        if record["signed"] != has_security:
            problems.append(f"{name}: signed={record['signed']} but security present={has_security}")
        if has_security:
            key_id = message.security.key_id
            if record.get("key_id") != key_id:
                problems.append(f"{name}: key_id {record.get('key_id')!r} != security.key_id {key_id!r}")
            if record.get("signature_hex") != message.security.signature.hex():
                problems.append(f"{name}: signature_hex differs from security.signature")
            if key_id not in SECRETS:
                problems.append(f"{name}: no test secret for key id {key_id!r}")
            else:
                expected = mac(key_id, canonical_bytes(message))
                if not hmac.compare_digest(expected, message.security.signature):
                    problems.append(
                        f"{name}: HMAC mismatch\n  typescript {message.security.signature.hex()}\n"
                        f"  python     {expected.hex()}"
                    )
        counterpart = by_name.get(name)
        if counterpart is None:
            problems.append(f"{name}: no Python vector of that name (keep the two sets in step)")
        elif counterpart["type"] != record["type"] or counterpart["hex"] != record["hex"]:
            problems.append(
                f"{name}: differs from the Python-built message of the same name\n"
                f"  typescript {record['hex']}\n  python     {counterpart['hex']}"
            )
        print(f"ok   {name} ({record['type']}{', signed' if has_security else ''})"
              if not any(p.startswith(f"{name}:") for p in problems) else f"FAIL {name}")
    return problems


def check_python_vectors_current(python_vectors):
    problems = []
    committed = {path.stem: path for path in PYTHON_VECTORS_DIR.glob("*.json")}
    built = {v["name"]: v for v in python_vectors}
    for name in sorted(set(committed) - set(built)):
        problems.append(f"python/{name}.json is stale (no longer built); regenerate")
    for name, record in built.items():
        path = committed.get(name)
        if path is None:
            problems.append(f"python/{name}.json is missing; regenerate")
        elif path.read_text(encoding="utf-8") != render(record):
            problems.append(f"python/{name}.json differs from what this script builds; regenerate")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="verify test/vectors/typescript instead of writing test/vectors/python",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leyline-py-") as out_dir:
        L = Leyline(compile_protos(out_dir))
        vectors = build_vectors(L)
        if not args.check:
            write_vectors(vectors)
            return
        problems = check_typescript_vectors(L, vectors) + check_python_vectors_current(vectors)
    if problems:
        print(f"\n{len(problems)} mismatch(es):", file=sys.stderr)
        for problem in problems:
            print(f"- {problem}", file=sys.stderr)
        sys.exit(1)
    print("all TypeScript vectors match Python byte for byte; committed Python vectors are current")


if __name__ == "__main__":
    main()
