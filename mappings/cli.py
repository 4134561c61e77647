"""`lgsp mapping`: check, apply and test mapping specs.

Example:
    lgsp mapping check mappings/specs/public_service_portal/*.yaml
    lgsp mapping apply mappings/specs/payment_portal/payment_to_bill_info.yaml payment.json
    lgsp mapping test mappings/specs
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mappings.errors import MappingError, RegistryError, SpecError
from mappings.examples import run_examples
from mappings.loader import SpecLoader, discover_specs
from mappings.transforms import TransformRegistry

app = typer.Typer(help="Check, apply and test declarative mapping specs.", no_args_is_help=True)


def _loader() -> SpecLoader:
    try:
        return SpecLoader(TransformRegistry.default())
    except RegistryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def check(files: Annotated[list[Path], typer.Argument(help="Spec files, or folders of specs.")]) -> None:
    """Validate spec files: YAML, rules, JMESPath, transforms, code tables."""
    loader = _loader()
    failed = 0
    for file in [spec for given in files for spec in (discover_specs(given) if given.is_dir() else [given])]:
        try:
            spec = loader.load(file)
        except SpecError as exc:
            failed += 1
            typer.echo(f"FAIL {exc}", err=True)
            for note in getattr(exc, "__notes__", ()):
                typer.echo(f"     {note}", err=True)
        else:
            typer.echo(f"ok   {file} ({spec.name} v{spec.version})")
    if failed:
        raise typer.Exit(1)


@app.command()
def apply(
    spec: Annotated[Path, typer.Argument(help="The spec file.")],
    input: Annotated[Path, typer.Argument(help="A JSON document, or - for standard input.")],
) -> None:
    """Apply SPEC to the JSON document INPUT and print the result as JSON."""
    loader = _loader()
    try:
        compiled = loader.load(spec)
        text = sys.stdin.read() if str(input) == "-" else input.read_text(encoding="utf-8")
        document: Any = json.loads(text)
        result = compiled.apply(document)
    except (SpecError, MappingError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (OSError, ValueError) as exc:
        typer.echo(f"error: cannot read {input}: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result, ensure_ascii=False, indent=2))


@app.command()
def test(
    directory: Annotated[Path, typer.Argument(help="A folder of specs (searched recursively) or one spec.")],
) -> None:
    """Run the example pairs beside each spec; print a diff and exit non-zero on a mismatch."""
    if not directory.exists():
        typer.echo(f"error: {directory} does not exist", err=True)
        raise typer.Exit(2)
    results = run_examples(directory, loader=_loader())
    for result in results:
        typer.echo(f"{'PASS' if result.passed else 'FAIL'} {result.spec}::{result.case}")
        if result.detail:
            typer.echo(result.detail.rstrip("\n"))
    failed = sum(not r.passed for r in results)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or not results:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
