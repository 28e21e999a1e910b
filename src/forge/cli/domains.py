"""`forge domain`: your own domains (create from a template or a file, edit, export, disable, delete, versions,
benchmark tasks, eval set, results) beside the packaged templates; `use` switches the active one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from forge.cli.common import forge, out, reset, settings
from forge.config import write_setting
from forge.domain.errors import InvalidInput
from forge.domain.tenant_domains import parse_file, setting_value
from forge.services import candidates
from forge.services import domains as service

app = typer.Typer(help="Domains: your own tasks, or the packaged templates (coding, legal, healthcare, finance, "
                       "education, demo).")
ACTOR = "cli"
Tenant = typer.Option(None, help="Tenant (default: FORGE_TENANT).")


def _tenant(tenant: Optional[str]) -> str:
    return tenant or settings().tenant


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context) -> None:
    """List the domains; the active one is marked with '*'."""
    if ctx.invoked_subcommand is None:
        list_(None)


@app.command("list")
def list_(tenant: Optional[str] = Tenant) -> None:
    """Your domains and the templates, the active one marked with '*'."""
    active = settings().domain
    for row in service.list_domains(forge(), _tenant(tenant)):
        kind = f"v{row['version']}" if row["kind"] == "tenant" else "template"
        state = "" if row["enabled"] else " (disabled)"
        out.print(f"{'*' if row['name'] == active else ' '} {row['name']:<14} {kind:<9} {row['task']:<15}"
                  f"{row['description']}{state}", markup=False)


@app.command("use")
def use(name: str, tenant: Optional[str] = Tenant) -> None:
    """Make NAME the active domain (saved in $FORGE_HOME/forge.toml; FORGE_DOMAIN still wins)."""
    service.resolve(forge(), _tenant(tenant), name)
    path = write_setting(settings(), "domain", name)
    reset()
    out.print(f"active domain: {name} (saved in {path})", markup=False)


@app.command("show")
def show(name: Optional[str] = typer.Argument(None), tenant: Optional[str] = Tenant) -> None:
    """A domain's settings, version and where it came from (default: the active one)."""
    out.print_json(json.dumps(service.show(forge(), _tenant(tenant), name or settings().domain)))


@app.command("create")
def create(
    name: str,
    template: Optional[str] = typer.Option(None, "--from", help="A packaged template to copy (its tasks too)."),
    file: Optional[Path] = typer.Option(None, "--file", help="A domain file (TOML): task.toml."),
    tenant: Optional[str] = Tenant,
) -> None:
    """Create your own domain from a template or a file; nothing is saved if a field is invalid."""
    config = _file(file, name).model_dump(mode="json") if file else None
    record = service.create(forge(), _tenant(tenant), name, template=template, config=config, actor=ACTOR,
                            source="file" if file else None)
    out.print(f"created domain {record.name} v{record.version} ({record.source}); import traffic with "
              f"`forge traces import FILE --domain {record.name}`", markup=False)


@app.command("edit")
def edit(
    name: str,
    setting: List[str] = typer.Option([], "--set", help="key=value, dotted for tables: gates.min_score=70, "
                                      "task.labels='[\"a\", \"b\"]'."),
    file: Optional[Path] = typer.Option(None, "--file", help="Replace every setting with this file's."),
    tenant: Optional[str] = Tenant,
) -> None:
    """Change settings; a new version when anything changed (a template is copied into your own domain first)."""
    if bool(setting) == bool(file):
        raise InvalidInput("Give --set key=value (one or more) or --file task.toml.")
    pairs = dict(_pair(p) for p in setting) if setting else None
    record = service.edit(forge(), _tenant(tenant), name, settings=pairs,
                          config=_file(file, name).model_dump(mode="json") if file else None, actor=ACTOR)
    out.print(f"domain {record.name} is at v{record.version}", markup=False)
    for line in record.change if record.source == "edit" else []:
        out.print(f"  {line}", markup=False)


@app.command("export")
def export(name: str, as_json: bool = typer.Option(False, "--json", help="JSON instead of TOML."),
           to: Optional[Path] = typer.Option(None, "--out", help="Write to this file instead of stdout."),
           tenant: Optional[str] = Tenant) -> None:
    """Print the domain as a file `forge domain create NAME --file` reads back."""
    text = service.export(forge(), _tenant(tenant), name, fmt="json" if as_json else "toml")
    if to:
        to.write_text(text, encoding="utf-8")
        out.print(f"wrote {to}", markup=False)
    else:
        out.print(text, markup=False, end="")


@app.command("disable")
def disable(name: str, tenant: Optional[str] = Tenant) -> None:
    """Stop taking traces, runs, the nightly run and routed calls for NAME (enable undoes it)."""
    record = service.set_enabled(forge(), _tenant(tenant), name, False, actor=ACTOR)
    out.print(f"domain {record.name} disabled (v{record.version}); forge:{record.name} now answers 404",
              markup=False)


@app.command("enable")
def enable(name: str, tenant: Optional[str] = Tenant) -> None:
    """Take traces, runs and routed calls for NAME again."""
    record = service.set_enabled(forge(), _tenant(tenant), name, True, actor=ACTOR)
    out.print(f"domain {record.name} enabled (v{record.version})", markup=False)


@app.command("delete")
def delete(name: str, force: bool = typer.Option(False, "--force", help="Delete even though it serves traffic."),
           tenant: Optional[str] = Tenant) -> None:
    """Delete your domain (its traces, models and versions are kept); one serving traffic needs --force."""
    record = service.delete(forge(), _tenant(tenant), name, force=force, actor=ACTOR)
    out.print(f"deleted domain {record.name} (its versions up to v{record.version - 1} are kept)", markup=False)


@app.command("history")
def history(name: str, tenant: Optional[str] = Tenant) -> None:
    """Every version: when, by whom, and what changed."""
    for record in service.history(forge(), _tenant(tenant), name):
        out.print(f"v{record.version}  {record.updated_at:%Y-%m-%d %H:%M:%S}  {record.source:<16} "
                  f"{record.actor or '-'}", markup=False)
        for line in record.change[:20]:
            out.print(f"    {line}", markup=False)


@app.command("benchmark")
def benchmark(name: str, file: Optional[Path] = typer.Argument(None, help="JSONL, one task a line."),
              remove: bool = typer.Option(False, "--remove", help="Drop the tasks: evaluate on the eval set."),
              tenant: Optional[str] = Tenant) -> None:
    """Give NAME benchmark tasks of its own (regex, json_schema, python_tests, requirements), or remove them."""
    if bool(file) == remove:
        raise InvalidInput("Give a JSONL file of tasks, or --remove.")
    text = None
    if file:
        if not file.is_file():
            raise InvalidInput(f"No file {file}; give the path of a JSONL file of benchmark tasks.")
        text = file.read_text(encoding="utf-8")
    record = service.upload_benchmark(forge(), _tenant(tenant), name, text, actor=ACTOR)
    tasks = (record.benchmark or {}).get("tasks")
    out.print(f"domain {record.name} v{record.version}: " + (f"{tasks} benchmark tasks" if tasks else
                                                              "no tasks of its own; it evaluates on its eval set"),
              markup=False)


@app.command("evalset")
def evalset(name: str, tenant: Optional[str] = Tenant) -> None:
    """The eval set carved from NAME's traffic: versions, sizes and strata."""
    f, who = forge(), _tenant(tenant)
    service.resolve(f, who, name)
    versions = sorted(f.storage.evaluations.versions(who, name), key=lambda s: s.version)
    if not versions:
        out.print(f"{name} has no eval set yet: it is carved from golden traffic when a run curates.", markup=False)
    for v in versions:
        strata = ", ".join(f"{k} {n}" for k, n in sorted(v.strata.items()))
        out.print(f"v{v.version}  {v.size} conversations (+{v.added})  job {v.job_id or '-'}  strata: {strata}",
                  markup=False)


@app.command("results")
def results(name: str, job: Optional[str] = typer.Option(None, help="A job id (default: the last evaluated run)."),
            as_json: bool = typer.Option(False, "--json"), tenant: Optional[str] = Tenant) -> None:
    """A run's evaluation of NAME, task by task (or example by example): score, production's, what failed."""
    f, who = forge(), _tenant(tenant)
    if job is None:
        done = [j for j in f.storage.jobs.scan(who, domain=name) if j.eval_metrics.get("decision")]
        if not done:
            raise InvalidInput(f"No run of {name} has been evaluated yet; `forge run --domain {name}` starts one.")
        job = max(done, key=lambda j: j.created_at).job_id
    found = candidates.results(f, who, job)
    if as_json:
        out.print_json(json.dumps(found))
        return
    verdict = found["evaluation"] or {}
    out.print(f"job {job}: decision {verdict.get('decision', '-')}", markup=False)
    for item in found["items"]:
        other = "" if item.get("baselineScore") is None else f"  production {item['baselineScore']:.1f}"
        missed = f"  ({'; '.join(item['failed'][:2])})" if item.get("failed") else ""
        out.print(f"  {item['id']:<28} {item['category']:<16} {item['score']:>6.1f}{other}{missed}", markup=False)
    for reason in verdict.get("reasons", []):
        out.print(f"  - {reason}", markup=False)


def _file(path: Path, name: str):
    if not path.is_file():
        raise InvalidInput(f"No file {path}; give the path of a domain file (TOML).")
    return parse_file(path.read_text(encoding="utf-8"), name, origin=f"domain file {path}")


def _pair(pair: str) -> tuple[str, object]:
    key, sep, value = pair.partition("=")
    if not sep or not key:
        raise typer.BadParameter(f"'{pair}' is not key=value", param_hint="--set")
    return key.strip(), setting_value(value)
