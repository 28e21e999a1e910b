"""The LoRA endpoint in the Azure deployment: off by default, Entra tokens only, vLLM with runtime LoRA updating,
its identity limited to reading adapters and pulling its image, and the app pointed at it when it is on."""

from __future__ import annotations

import re

from tests.unit.test_infra import (INFRA, MAIN, ROOT, _block, _code, _function_app_settings, _resources, _yaml)

ENDPOINT = INFRA / "app" / "lora-endpoint.bicep"
HOOK = INFRA / "hooks" / "build-lora-server.sh"
IMAGE = ROOT / "lora-server" / "Dockerfile"


def _resource(path, type_prefix):
    return next(r for r in _resources(path) if r.type.startswith(type_prefix) and not r.existing)


def test_the_lora_endpoint_is_off_by_default_and_its_gpu_and_cost_are_documented():
    main = _code(MAIN)
    assert re.search(r"param loraServerEnabled bool = false", main)
    assert re.search(r"param loraInstanceType string = 'Standard_N", main), "a GPU (N-series) instance"
    module = re.search(r"module loraEndpoint '\./app/lora-endpoint\.bicep' = if \(loraServerEnabled", main)
    assert module, "deployed only when switched on"
    header = ENDPOINT.read_text(encoding="utf-8").split("\nparam")[0]
    assert "USD an hour" in header and "quota" in header


def test_the_endpoint_takes_entra_tokens_and_runs_vllm_with_runtime_lora_updating():
    endpoint = _resource(ENDPOINT, "Microsoft.MachineLearningServices/workspaces/onlineEndpoints@")
    assert re.search(r"authMode:\s*'AADToken'", endpoint.body)
    deployment = _resource(ENDPOINT, "Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments@")
    variables = _block(deployment.body, deployment.body.index("environmentVariables:"))
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True'" in variables and "FORGE_ADAPTER_STORAGE:" in variables
    entry = IMAGE.read_text(encoding="utf-8")
    assert "--enable-lora" in entry and "--middleware forge_adapters.BlobAdapters" in entry
    assert re.search(r"(?m)^ARG VLLM_IMAGE=vllm/vllm-openai:v[\d.]+$", entry), "a pinned vLLM the operator can swap"


def test_the_function_app_is_pointed_at_the_endpoint_only_when_it_is_on():
    settings = _function_app_settings()
    assert settings["FORGE_LORA_SERVER"] == "loraServerEnabled ? 'vllm' : 'auto'"
    url = settings["FORGE_LORA_SERVER_URL"]
    assert url.startswith("loraServerEnabled ? 'https://${loraEndpointName}.${location}.inference.ml.azure.com/v1'")
    assert "FORGE_LORA_SERVER_API_KEY" not in settings  # the app's identity, never a key in settings


def test_the_hook_builds_the_image_and_deploys_the_endpoint_only_when_asked_and_reads_only_outputs():
    script = HOOK.read_text(encoding="utf-8")
    assert script.startswith("#!/bin/sh") and "set -eu" in script
    assert 'sh infra/hooks/build-lora-server.sh' in (ROOT / _yaml(ROOT / "azure.yaml")["hooks.postprovision.posix.run"]
                                                      ).read_text(encoding="utf-8")
    off = re.search(r'if \[ "\$\{FORGE_LORA_SERVER_ENABLED:-false\}" != "true" \]; then\s*exit 0', script)
    assert off, "a no-op unless switched on"
    outputs = set(re.findall(r"(?m)^output\s+(\w+)\s", _code(MAIN)))
    assert set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script)) - outputs <= {"AZURE_ENV_NAME"}
    assert "--template-file infra/app/lora-endpoint.bicep" in script and "az acr build" in script
