"""deploy/ validated by the tools that would run it: promtool, the Kubernetes and compose schemas."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

DEPLOY = Path(__file__).parents[2] / "deploy"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is missing: run `bash setup.sh` (installs Debian's prometheus package)"
)


def promtool(*args: str, cwd: Path) -> None:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_checks_config_rules_and_rule_unit_tests(tmp_path: Path) -> None:
    prometheus = DEPLOY / "prometheus"
    promtool("check", "rules", "rules.yml", cwd=prometheus)
    promtool("test", "rules", "rules.test.yml", cwd=prometheus)
    # The config names the rules by their path in the container; check it against the real file.
    config = (
        (prometheus / "prometheus.yml").read_text(encoding="utf-8").replace("/etc/prometheus/rules.yml", "rules.yml")
    )
    (tmp_path / "prometheus.yml").write_text(config, encoding="utf-8")
    shutil.copy(prometheus / "rules.yml", tmp_path / "rules.yml")
    promtool("check", "config", "prometheus.yml", cwd=tmp_path)


def manifests() -> list[dict[str, object]]:
    docs = []
    for path in sorted((DEPLOY / "k8s" / "base").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    return docs


def test_kubernetes_manifests_validate_against_the_kubernetes_schemas() -> None:
    kinds = set()
    for doc in manifests():
        kinds.add(doc["kind"])
        if str(doc["apiVersion"]).startswith("monitoring.coreos.com/"):
            continue  # CRDs: no upstream schema; checked below
        if doc["kind"] == "Kustomization":
            continue
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    assert {
        "Deployment",
        "ConfigMap",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "Kustomization",
    } <= kinds


def test_kustomization_lists_every_manifest_and_the_crds_agree_with_the_rest() -> None:
    base = DEPLOY / "k8s" / "base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text(encoding="utf-8"))
    assert set(kustomization["resources"]) == {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    docs = {d["kind"]: d for d in manifests()}
    rule = docs["PrometheusRule"]["spec"]
    assert rule == yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text(encoding="utf-8"))
    service_ports = {p["name"] for p in docs["Service"]["spec"]["ports"]}
    assert {e["port"] for e in docs["ServiceMonitor"]["spec"]["endpoints"]} <= service_ports
    container = docs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert docs["Deployment"]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert docs["ConfigMap"]["data"]["PARCELWATCH_METRICS_PORT"] == str(container["ports"][0]["containerPort"])
    assert docs["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] <= int(
        docs["ConfigMap"]["data"]["PARCELWATCH_PARTITIONS"]
    )


def test_compose_file_validates_against_the_compose_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale needs neither
    assert compose["services"]["redis"]["command"][1:3] == ["--appendonly", "yes"]
    assert "KAFKA_PROCESS_ROLES" in compose["services"]["kafka"]["environment"]  # KRaft, no ZooKeeper


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert len(re.findall(r"^FROM ", text, flags=re.MULTILINE)) >= 2
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "EXPOSE 9464" in text and 'ENTRYPOINT ["parcelwatch"]' in text


def test_grafana_dashboard_is_provisioned_with_its_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "parcelwatch.json").read_text(encoding="utf-8"))
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for needed in ("throughput", "lag", "latency", "dead letters", "alerts", "redis"):
        assert needed in titles
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    assert all(p["datasource"]["uid"] == uid for p in dashboard["panels"])


def test_the_kubernetes_validator_does_reject_a_broken_manifest() -> None:
    deployment = next(d for d in manifests() if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30.0", strict=True)
