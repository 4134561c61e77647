"""`lgsp agencies import` and `lgsp agencies list`: the directory from a CSV, used to validate recipients."""

import asyncio
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from hub.edocs.cli import agencies_app
from tests.edocs.harness import PULL_A, SENDER, Pki, edocs_config, headers, package, running_edocs

CSV = """code,name,parent,endpoint
H40.20,Sở Xây dựng,000.00.00.H40,
H40.20.01,Phòng Quản lý nhà,H40.20,
H40.21,Sở Y tế,,
"""


def _config_file(tmp_path: Path, config: dict) -> Path:  # type: ignore[type-arg]
    path = tmp_path / "lgsp.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


async def test_cli_agencies_import_feeds_recipient_validation(
    pki: Pki, store_url: str, tmp_path: Path
) -> None:
    config = edocs_config(pki, broker_url="embedded://", store_url=store_url)
    config_file = _config_file(tmp_path, config)
    runner = CliRunner()
    async with running_edocs(config) as running:
        # Given a package to an agency the hub does not know yet
        refused = await running.submit(package(pki, recipients=("H40.20.01",)))
        assert refused.status_code == 400
        # When the agencies CSV is imported
        (tmp_path / "agencies.csv").write_text(CSV, encoding="utf-8-sig")
        result = await asyncio.to_thread(
            runner.invoke, agencies_app, ["import", str(tmp_path / "agencies.csv"), "-c", str(config_file)]
        )
        assert result.exit_code == 0, result.output
        assert "3 agencies added, 0 updated" in result.output
        # Then the hub accepts it (once its cache of unknown codes expires) and delivers it by pull
        running.extension.directory.forget()
        accepted = await running.submit(package(pki, recipients=("H40.20.01", PULL_A)))
        assert accepted.status_code == 201, accepted.text
        assert [r["mode"] for r in accepted.json()["recipients"]] == ["pull", "pull"]
        # And the directory lists imported and configured agencies with their parents
        listed = (await running.http.get("/v1/edocs/agencies", headers=headers(SENDER))).json()["agencies"]
        by_code = {a["code"]: a for a in listed}
        assert by_code["H40.20.01"]["parent"] == "H40.20" and by_code[SENDER]["parent"] is None
    # And importing again updates instead of duplicating; `list` shows them
    again = await asyncio.to_thread(
        runner.invoke, agencies_app, ["import", str(tmp_path / "agencies.csv"), "-c", str(config_file)]
    )
    assert "0 agencies added, 3 updated" in again.output
    listing = await asyncio.to_thread(runner.invoke, agencies_app, ["list", "-c", str(config_file)])
    assert listing.exit_code == 0 and "Phòng Quản lý nhà" in listing.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name\nH40.30,\n", "line 2: agency H40.30 has no name"),
        ("code,name,parent\nH40 30,Sở,\n", "line 2"),
        ("name,parent\nSở,\n", "lacks column(s) code"),
        ("code,name,parent\nH40.30,Sở,H40.77\n", "parent H40.77 of H40.30 is unknown"),
        ("code,name\nH40.30,A\nH40.30,B\n", "line 3: agency H40.30 appears twice"),
    ],
)
def test_cli_agencies_import_refuses_bad_rows_naming_the_line(
    pki: Pki, tmp_path: Path, text: str, message: str
) -> None:
    config = edocs_config(pki, broker_url="embedded://", store_url=f"sqlite+aiosqlite:///{tmp_path}/s.db")
    (tmp_path / "bad.csv").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        agencies_app, ["import", str(tmp_path / "bad.csv"), "-c", str(_config_file(tmp_path, config))]
    )
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
