"""The Azure deployment files, checked without the Bicep CLI: modules, settings, roles, hooks, no secrets."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from forge.config import Provider, Settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
API = INFRA / "app" / "api.bicep"
GUID = r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}"

# Settings fields the Function App is deliberately not given; every other field must be an app setting,
# so a new field fails this test until main.bicep provides it.
AZURE_EXEMPT = {
    "storage_connection": "storage is reached by URL with the app's identity; a connection string would hold a key",
    "node_modules": "only locates Azurite, which does not run in Azure",
    "tenant": "the CLI's default tenant; API calls take the tenant from the API key",
    "domain": "the CLI's default domain; API calls and jobs name their domain",
    "api_host": "`forge serve` only; in Azure the Functions host serves HTTP",
    "api_port": "`forge serve` only; in Azure the Functions host serves HTTP",
    "api_max_body_bytes": "the default suits Azure too",
    "trace_shards": "the default suits Azure too; changing it needs `forge storage migrate` first",
    "curate_workers": "the default (every core of the instance) suits Azure too; a job's curation fans out over "
                      "shard activities there (FORGE_CURATE_FANOUT)",
    "api_key_ttl_s": "the default (10 s) suits Azure too; an operator may set it (azd env / portal)",
    "price_table": "a file on the machine that runs Forge; in Azure the built-in, dated price table applies",
    "notify_url": "optional: an operator sets it (azd env / portal) when they want job notifications",
    "lora_cost_per_hour": "optional: an operator sets it (azd env / portal) to the LoRA endpoint's hourly price; "
                          "unset, LoRA students are priced per token like hosted ones",
    "applicationinsights_connection_string": "read as APPLICATIONINSIGHTS_CONNECTION_STRING (checked below)",
    "applicationinsights_authentication_string": "read as APPLICATIONINSIGHTS_AUTHENTICATION_STRING (checked below)",
    "teacher_api_key": "Azure OpenAI is called with the app's identity; a key would be a secret in app settings",
    "student_api_key": "Azure OpenAI is called with the app's identity; a key would be a secret in app settings",
    "grader_api_key": "Azure OpenAI is called with the app's identity; a key would be a secret in app settings",
    "grader_base_url": "unset in Azure: the judge is served by the teacher's endpoint",
    "trainer_command": "provider `local` only: the Function App never runs forge-trainer itself",
    "local_trainer_config": "provider `local` only: a file on the machine that runs the trainer",
    "azure_openai_api_key": "Azure OpenAI fine-tuning uses the app's identity; a key would be a secret in app settings",
    "azure_openai_api_version": "the default suits Azure; set it only to pin another data-plane API version",
    "azure_openai_deployment_sku": "the default (Standard) suits a first student; an operator changes it (azd env)",
    "azure_openai_deployment_capacity": "the default suits a first student; an operator raises it (azd env)",
    "openai_api_key": "provider `openai` (existing OpenAI customers) is not the Azure default; a key is a secret",
    "openai_base_url": "provider `openai` only; its default is api.openai.com",
    "openai_webhook_secret": "provider `openai` only, and a secret: the operator adds it as a Key Vault reference",
    "eventgrid_webhook_key": "in Azure, Event Grid calls the eventgrid_training function, which the platform "
                             "authenticates; the key guards the HTTP webhook of `forge serve` hosts",
    "sandbox_unjailed": "never in Azure: benchmark code runs in the session pool, or the evaluation stops",
    "notify_eventgrid_key": "in Azure the app publishes to its topic with its identity; a key would be a secret",
    "lora_server_api_key": "the LoRA endpoint takes the app's identity; a key is a Key Vault reference the operator "
                           "adds (docs/serving.md)",
    "lora_drain_s": "the default (30 s) suits Azure too",
    "llama_cpp_scripts": "the embedded llama.cpp server and GGUF exports run on a laptop or VM, not in Azure",
}
# Settings later issues read (not yet fields of Settings) and the telemetry the host needs.
PROVIDER_SETTINGS = {
    "FORGE_AZURE_OPENAI_ENDPOINT", "FORGE_AZUREML_SUBSCRIPTION_ID", "FORGE_AZUREML_RESOURCE_GROUP",
    "FORGE_AZUREML_WORKSPACE", "FORGE_AZUREML_COMPUTE", "FORGE_TRAINER_IMAGE",
    "APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
SESSION_EXECUTOR = "0fb8eba5-a2bb-4abe-b1c1-49dfad359bb0"  # Azure ContainerApps Session Executor
# Each data plane the app calls → the built-in roles that grant it, and the resource type it is scoped to.
DATA_PLANES = {
    "blob": ({"b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"},
             "Microsoft.Storage/storageAccounts"),
    "queue": ({"974c5e8b-45b9-4653-ba55-5f855dd0fb88"}, "Microsoft.Storage/storageAccounts"),
    "table": ({"0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"}, "Microsoft.Storage/storageAccounts"),
    "telemetry": ({"3913510d-42f4-4e42-8a64-420c390055eb"}, "Microsoft.Insights/components"),
    "openai": ({"a001fd3d-188f-4b5d-821b-7da978bf7442"}, "Microsoft.CognitiveServices/accounts"),
    "azureml": ({"f6c7c914-8db3-469d-8ca1-694a8f32e121"}, "Microsoft.MachineLearningServices/workspaces"),
    "sessions": ({SESSION_EXECUTOR}, "Microsoft.App/sessionPools"),
    "notifications": ({"d5a91429-5739-47e2-a06b-3470a27159e7"}, "Microsoft.EventGrid/topics"),
}
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"  # the GPU cluster's own identity pulls the trainer image
BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"  # the LoRA endpoint's identity reads adapters, nothing more
APP_PRINCIPAL = "appPrincipalId"
HOOK_INPUTS_NOT_FROM_OUTPUTS = {"AZURE_ENV_NAME": "set by azd", "FORGE_SKIP_TRAINER_IMAGE": "an operator's opt-out"}


# --- a small Bicep reader: comments off, balanced braces, top-level keys --------------------------------

def _code(path: Path) -> str:
    text = re.sub(r"/\*.*?\*/", "", path.read_text(encoding="utf-8"), flags=re.S)
    return re.sub(r"(?m)(^|\s)//.*$", r"\1", text)  # 'https://…' survives: its // follows ':'


def _block(text: str, start: int) -> str:
    """The body of the first {…} at or after `start`."""
    opened = text.index("{", start)
    depth = 0
    for i in range(opened, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[opened + 1 : i]
    raise AssertionError(f"unbalanced braces after: {text[start:start + 80]!r}")


def _items(body: str) -> dict[str, str]:
    """Top-level `key: value` pairs of an object body (value = rest of the line)."""
    items, depth = {}, 0
    for line in body.splitlines():
        match = re.match(r"\s*'?([A-Za-z_][\w.-]*)'?\s*:\s*(.*)$", line)
        if depth == 0 and match:
            items[match.group(1)] = match.group(2).strip()
        depth += sum(line.count(c) for c in "{[(") - sum(line.count(c) for c in "}])")
    return items


@dataclass(frozen=True)
class Resource:
    path: Path
    symbol: str
    type: str
    existing: bool
    body: str


def _bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def _resources(path: Path) -> list[Resource]:
    text = _code(path)
    found = re.finditer(r"(?m)^\s*resource\s+(\w+)\s+'([^']+)'\s*(existing)?", text)
    return [Resource(path, m[1], m[2], bool(m[3]), _block(text, m.end())) for m in found]


def _module_body(text: str, target: str) -> str:
    match = re.search(rf"(?m)^module\s+\w+\s+'{re.escape(target)}'", text)
    assert match, f"main.bicep deploys no module '{target}'"
    return _block(text, match.end())


def _function_app_settings() -> dict[str, str]:
    """What the Function App gets: main.bicep's appSettings for app/api.bicep plus the platform settings there."""
    module = _module_body(_code(MAIN), "./app/api.bicep")
    api = _code(API)
    platform = _block(api, api.index("union(appSettings,"))
    return {**_items(_block(module, module.index("appSettings:"))), **_items(platform)}


@dataclass(frozen=True)
class Assignment:
    where: str
    role: str
    principal: str
    scope_type: str


def _role_assignments() -> list[Assignment]:
    out = []
    for path in _bicep_files():
        named = {k: v.lower() for k, v in re.findall(rf"(\w+):\s*'({GUID})'", _code(path))}
        types = {r.symbol: r.type.split("@")[0] for r in _resources(path)}
        for r in _resources(path):
            if not r.type.startswith("Microsoft.Authorization/roleAssignments"):
                continue
            definition = re.search(r"roleDefinitionId:\s*(.+)", r.body)[1]
            literal, ref = re.search(GUID, definition), re.search(r"\b\w+\.(\w+)\)", definition)
            role = literal[0].lower() if literal else named.get(ref[1] if ref else "", f"unresolved: {definition}")
            principal = re.search(r"principalId:\s*([\w.]+)", r.body)[1]
            scope = re.search(r"(?m)^\s*scope:\s*(\w+)\s*$", r.body)
            scope_type = types.get(scope[1], f"not a resource: {scope[1]}") if scope else "the deployment's scope"
            out.append(Assignment(f"{path.relative_to(ROOT)}:{r.symbol}", role, principal, scope_type))
    return out


def _yaml(path: Path) -> dict[str, str]:
    """azure.yaml as dotted paths → scalars (mappings only, which is all azure.yaml uses)."""
    out, stack = {}, []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"(\s*)([\w.-]+):\s*(.*?)\s*$", line.split(" #")[0])
        if line.lstrip().startswith("#") or not match:
            continue
        indent, key, value = len(match[1]), match[2], match[3]
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
        if value:
            out[".".join(k for _, k in stack)] = value.strip("'\"")
    return out


# --- the checks ----------------------------------------------------------------------------------------

def test_every_module_the_bicep_references_exists():
    for path in _bicep_files():
        text = _code(path)
        for target in re.findall(r"(?m)^\s*module\s+\w+\s+'([^']+)'", text):
            assert not re.match(r"(br|ts)[:/]", target), f"{path.name}: registry module {target} cannot be checked here"
            assert (path.parent / target).is_file(), f"{path.relative_to(ROOT)} references missing module {target}"
        for target in re.findall(r"load(?:Json|Text)Content\('([^']+)'", text):
            assert (path.parent / target).is_file(), f"{path.relative_to(ROOT)} loads missing file {target}"


def test_every_setting_forge_config_reads_in_azure_is_given_to_the_function_app():
    assert set(AZURE_EXEMPT) <= set(Settings.model_fields), "AZURE_EXEMPT names a field Settings no longer has"
    required = {f"FORGE_{name.upper()}" for name in Settings.model_fields if name not in AZURE_EXEMPT}
    missing = required - set(_function_app_settings())
    assert not missing, f"add to appSettings in infra/main.bicep (or exempt with a reason): {sorted(missing)}"


def test_the_provider_and_telemetry_settings_are_given_to_the_function_app():
    missing = PROVIDER_SETTINGS - set(_function_app_settings())
    assert not missing, f"infra/main.bicep or infra/app/api.bicep lacks {sorted(missing)}"


def test_forge_home_is_under_tmp_because_the_rest_of_the_file_system_is_read_only():
    assert _function_app_settings()["FORGE_HOME"].strip("'").startswith("/tmp/")


def test_the_function_app_reaches_storage_with_its_identity_not_a_key():
    settings = _function_app_settings()
    assert settings.get("AzureWebJobsStorage__credential") == "'managedidentity'"
    for service in ("blob", "queue", "table"):  # Durable Functions needs all three
        assert f"AzureWebJobsStorage__{service}ServiceUri" in settings
    assert "AzureWebJobsStorage" not in settings and "FORGE_STORAGE_CONNECTION" not in settings
    # Flex Consumption rejects these: the runtime comes from functionAppConfig.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & set(settings)


def test_the_function_app_runs_python_3_11_on_flex_consumption_with_a_system_identity():
    api = _code(API)
    plan = next(r for r in _resources(API) if r.type.startswith("Microsoft.Web/serverfarms"))
    assert re.search(r"name:\s*'FC1'", plan.body) and re.search(r"tier:\s*'FlexConsumption'", plan.body)
    site = next(r for r in _resources(API) if r.type.startswith("Microsoft.Web/sites@") and not r.existing)
    runtime = _items(_block(site.body, site.body.index("runtime:")))
    assert (runtime["name"], runtime["version"]) == ("'python'", "'3.11'")
    assert re.search(r"identity:\s*\{\s*type:\s*'SystemAssigned'", site.body)
    assert re.search(r"authentication:\s*\{\s*type:\s*'SystemAssignedIdentity'", site.body)
    assert re.search(rf"(?m)^output principalId string = {site.symbol}\.identity\.principalId$", api)


def test_every_data_plane_the_code_uses_has_a_role_for_the_apps_identity():
    assert re.search(rf"{APP_PRINCIPAL}:\s*api\.outputs\.principalId", _module_body(_code(MAIN), "./app/rbac.bicep"))
    app = [a for a in _role_assignments() if a.principal == APP_PRINCIPAL]
    for plane, (roles, scope_type) in DATA_PLANES.items():
        assert any(a.role in roles and a.scope_type == scope_type for a in app), f"no {plane} role on a {scope_type}"


def test_the_apps_identity_gets_no_role_broader_than_those_data_planes():
    allowed = {role: scope for roles, scope in DATA_PLANES.values() for role in roles}
    for a in _role_assignments():
        if a.principal == APP_PRINCIPAL:
            assert allowed.get(a.role) == a.scope_type, f"{a.where}: role {a.role} on {a.scope_type} is too broad"
        else:  # the GPU cluster and the operator: data roles or AcrPull, never Owner/Contributor
            assert a.role in set(allowed) | {ACR_PULL, BLOB_READER}, f"{a.where}: role {a.role} is not a data-plane role"


def test_no_secret_or_key_is_written_as_a_literal():
    files = [*INFRA.rglob("*.*"), ROOT / "azure.yaml", ROOT / "host.json", ROOT / "local.settings.sample.json"]
    forbidden = [
        r"(?i)\blist(Keys|Secrets|Credentials|ConnectionStrings)\s*\(",  # would copy a key into a setting
        r"(?i)(AccountKey|SharedAccessKey|InstrumentationKey)\s*=", r"(?i)[?&]sig=", r"-----BEGIN",
        r"(?i)password\w*\s*[:=]\s*['\"][^'\"]+", r"@secure\(\)\s*param\s+\w+\s+\w+\s*=",
    ]
    token = re.compile(r"[A-Za-z0-9+/]{32,}={0,2}")
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in forbidden:
            assert not re.search(pattern, text), f"{path.relative_to(ROOT)} matches {pattern}"
        for word in token.findall(text):
            mixed = all(re.search(c, word) for c in ("[a-z]", "[A-Z]", "[0-9]"))
            assert not mixed, f"{path.relative_to(ROOT)} holds what looks like a key: {word[:6]}…"


def test_every_service_that_has_keys_has_them_switched_off():
    expected = {
        "Microsoft.Storage/storageAccounts": r"allowSharedKeyAccess:\s*false",
        "Microsoft.Insights/components": r"DisableLocalAuth:\s*true",
        "Microsoft.CognitiveServices/accounts": r"disableLocalAuth:\s*true",
        "Microsoft.ContainerRegistry/registries": r"adminUserEnabled:\s*false",
        "Microsoft.EventGrid/topics": r"disableLocalAuth:\s*true",
    }
    created = [r for p in _bicep_files() for r in _resources(p) if not r.existing]
    for type_, setting in expected.items():
        matching = [r for r in created if r.type.split("@")[0] == type_]
        assert matching, f"no {type_} is created"
        for r in matching:
            assert re.search(setting, r.body), f"{r.path.name}:{r.symbol} must set {setting}"


def test_main_parameters_json_supplies_exactly_the_parameters_main_bicep_declares():
    declared = dict(re.findall(r"(?m)^param\s+(\w+)\s+\w+(\s*=)?", _code(MAIN)))
    supplied = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert not set(supplied) - set(declared), f"undeclared: {sorted(set(supplied) - set(declared))}"
    assert not {p for p, default in declared.items() if not default} - set(supplied)


def test_the_provider_parameter_allows_exactly_the_providers_forge_knows():
    match = re.search(r"@allowed\(\[([^\]]*)\]\)\s*param provider string = '([^']+)'", _code(MAIN))
    assert match, "main.bicep: param provider must have an @allowed list and a default"
    allowed = set(re.findall(r"'([^']+)'", match[1]))
    assert allowed == {p.value for p in Provider} and match[2] in allowed


def test_event_grid_delivers_run_status_changed_to_the_eventgrid_training_function():
    path = INFRA / "app" / "training-events.bicep"
    _module_body(_code(MAIN), "./app/training-events.bicep")
    resources = {r.symbol: r for r in _resources(path)}
    topic = next(r for r in resources.values() if r.type.startswith("Microsoft.EventGrid/systemTopics@"))
    assert "topicType: 'Microsoft.MachineLearningServices.Workspaces'" in topic.body
    source = re.search(r"source:\s*(\w+)\.id", topic.body)[1]
    assert resources[source].type.startswith("Microsoft.MachineLearningServices/workspaces@")
    assert re.search(r"endpointType:\s*'AzureFunction'", topic.body)
    app, function = re.search(r"resourceId:\s*'\$\{(\w+)\.id\}/functions/([^']+)'", topic.body).groups()
    assert resources[app].type.startswith("Microsoft.Web/sites@")
    if function.startswith("${"):
        function = re.search(rf"param {function[2:-1]} string = '([^']+)'", _code(path))[1]
    assert function == "eventgrid_training"
    assert "'Microsoft.MachineLearningServices.RunStatusChanged'" in topic.body


def test_the_gpu_cluster_scales_to_zero():
    clusters = [r for p in _bicep_files() for r in _resources(p)
                if r.type.startswith("Microsoft.MachineLearningServices/workspaces/computes@")]
    assert clusters and all("computeType: 'AmlCompute'" in r.body for r in clusters)
    assert all(re.search(r"minNodeCount:\s*0\b", r.body) for r in clusters)
    assert re.search(r"param gpuVmSize string = 'Standard_N", _code(MAIN)), "N-series VMs are the GPU ones"


def test_azure_yaml_deploys_the_api_as_a_python_function_and_builds_the_trainer():
    spec = _yaml(ROOT / "azure.yaml")
    assert (spec["services.api.language"], spec["services.api.host"]) == ("python", "function")
    assert (ROOT / spec["services.api.project"] / "host.json").is_file()
    trainer = ROOT / spec["hooks.postprovision.posix.run"]
    script = trainer.read_text(encoding="utf-8")
    assert "az acr build" in script
    skip = re.search(r"if \[ ! -f gpu-trainer/Dockerfile \]; then(.*?)\n\s*fi\b", script, re.S)
    assert skip and "echo" in skip[1] and "exit 0" in skip[1], "a missing Dockerfile must skip with a message"


def test_every_hook_exists_and_reads_only_what_the_deployment_outputs():
    spec = _yaml(ROOT / "azure.yaml")
    outputs = set(re.findall(r"(?m)^output\s+(\w+)\s", _code(MAIN)))
    hooks = [ROOT / v for k, v in spec.items() if k.startswith("hooks.") and k.endswith(".run")]
    assert len(hooks) >= 2
    modules = set(re.findall(r"(?m)^module\s+\w+\s+'\./([^']+)'", _code(MAIN)))
    for hook in hooks:
        script = hook.read_text(encoding="utf-8")
        assert script.startswith("#!/bin/sh") and "set -eu" in script, f"{hook.name}: posix sh, failing fast"
        unknown = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", script)) - outputs - set(HOOK_INPUTS_NOT_FROM_OUTPUTS)
        assert not unknown, f"{hook.name} reads {sorted(unknown)}, which main.bicep does not output"
        for template in re.findall(r"--template-file\s+infra/(\S+)", script):
            assert template in modules, f"{hook.name} deploys {template}, which main.bicep does not use"


def test_host_json_serves_the_api_at_the_root_with_the_v4_bundle():
    host = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))
    assert host["version"] == "2.0"
    assert host["extensions"]["http"]["routePrefix"] == ""
    assert host["extensions"]["durableTask"]["hubName"]
    assert host["extensionBundle"] == {"id": "Microsoft.Azure.Functions.ExtensionBundle", "version": "[4.*, 5.0.0)"}
    assert host["logging"]["applicationInsights"]["samplingSettings"]["isEnabled"] is True


def test_local_settings_sample_runs_python_against_azurite_without_secrets():
    values = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert values["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
    assert not [k for k in values if re.search(r"(?i)(key|secret|password|token)", k)]
    Settings(**{k[len("FORGE_"):].lower(): v for k, v in values.items() if k.startswith("FORGE_")})


def test_benchmark_code_runs_in_an_optional_python_session_pool_the_app_may_only_execute_in():
    main = _code(MAIN)
    assert re.search(r"(?m)^param enableCodeSessions bool = false$", main), "the pool is opt-in, off by default"
    assert re.search(r"module sessions './app/sessions.bicep' = if \(enableCodeSessions\)", main)
    sessions = INFRA / "app" / "sessions.bicep"
    pools = [r for r in _resources(sessions) if r.type.startswith("Microsoft.App/sessionPools@")]
    assert len(pools) == 1 and not pools[0].existing
    body = pools[0].body
    assert "poolManagementType: 'Dynamic'" in body and "containerType: 'PythonLTS'" in body
    assert re.search(r"sessionNetworkConfiguration:\s*\{\s*status:\s*'EgressDisabled'", body)
    endpoint = _function_app_settings()["FORGE_SANDBOX_POOL_ENDPOINT"]
    assert endpoint == "enableCodeSessions ? sessions.outputs.endpoint : ''"
    assert re.search(r"(?m)^output endpoint string = \w+\.properties\.poolManagementEndpoint$", _code(sessions))
    executors = [a for a in _role_assignments() if a.role == SESSION_EXECUTOR]
    assert [(a.principal, a.scope_type) for a in executors] == [(APP_PRINCIPAL, "Microsoft.App/sessionPools")]
    assert re.search(r"sessionPoolName:\s*enableCodeSessions \? sessions\.outputs\.name : ''",
                     _module_body(main, "./app/rbac.bicep"))
