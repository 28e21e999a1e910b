"""`forge domain`: list the domain configs, show one, switch the active one."""

from __future__ import annotations

from typing import Optional

import typer

from forge.cli.common import out, reset, settings
from forge.config import write_setting
from forge.domain_templates import get_domain, load_domains

app = typer.Typer(help="Domains: coding, legal, healthcare, finance, education, or your own.")


@app.callback(invoke_without_command=True)
def list_(ctx: typer.Context) -> None:
    """List the domains; the active one is marked with '*'."""
    if ctx.invoked_subcommand is not None:
        return
    active = settings().domain
    for name, config in load_domains(settings().home).items():
        out.print(f"{'*' if name == active else ' '} {name:<12} {config.description}", markup=False)


@app.command("use")
def use(name: str) -> None:
    """Make NAME the active domain (saved in $FORGE_HOME/forge.toml; FORGE_DOMAIN still wins)."""
    get_domain(name, settings().home)
    path = write_setting(settings(), "domain", name)
    reset()
    out.print(f"active domain: {name} (saved in {path})", markup=False)


@app.command("show")
def show(name: Optional[str] = typer.Argument(None)) -> None:
    """Show a domain's config (default: the active one)."""
    config = get_domain(name or settings().domain, settings().home)
    out.print_json(config.model_dump_json())
