"""Mappings engine: applies/s of the DVCQG dossier spec against a hand-written Python function.

The dossier has 40 top-level fields, 10 fees and 20 attachments; the hand-written function does the
same work (trim, NFC, ISO -> yyyyMMddHHmmss in Asia/Ho_Chi_Minh, code-table lookups, amounts,
required checks) and its output is checked equal to the spec's before timing.

Usage: python bench/mappings.py [--seconds 1.0] [--rounds 5] [--quick]
Rounds are interleaved (the machine is shared); the table shows median, min and max.
The last line is ``RATIO spec/handwritten <value>``.
"""

import argparse
import statistics
import sys
import time
import unicodedata
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# This script is named like the package it measures: keep its own folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from mappings import SpecLoader, TransformRegistry  # noqa: E402
from mappings.codes import read_code_table  # noqa: E402
from mappings.loader import SPECS_DIR  # noqa: E402

SPEC = SPECS_DIR / "public_service_portal" / "dossier_to_dvcqg.yaml"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def dossier() -> dict[str, Any]:
    """A 40-field canonical dossier with 10 fees and 20 attachments."""
    document: dict[str, Any] = {
        "dossier_id": "000.00.22.H40-240305-0001",
        "receipt_number": "H40.22-240305-0001",
        "procedure": {
            "code": "1.001193",
            "name": "Cấp bản sao trích lục hộ tịch",
            "sector_code": "G09-TP03",
            "sector_name": "Hộ tịch",
        },
        "applicant": {
            "type": "citizen",
            "full_name": " Nguyễn Văn An ",
            "id_number": "001096001005",
            "email": "an@example.vn",
            "phone": "0912345678",
            "address": "Số 1 Hàng Bài",
        },
        "summary": "Xin cấp bản sao trích lục khai sinh",
        "received_at": "2024-03-05T01:30:00Z",
        "due_at": "2024-03-08T17:00:00+07:00",
        "returned_at": "2024-03-07T10:00:00+07:00",
        "status": "returned",
        "delivery": "postal",
        "handling_agency": "UBND phường Tràng Tiền",
        "note": "Ghi chú",
        "fees": [
            {
                "code": f"LP-{i}",
                "name": f"Lệ phí {i}",
                "type": "charge" if i % 2 else "fee",
                "collection": "online",
                "amount": 1000 * (i + 1),
            }
            for i in range(10)
        ],
        "attachments": [
            {
                "id": 100 + i,
                "name": f"Tệp {i}.pdf",
                "deleted": i % 5 == 0,
                "component_code": f"TP-{i}",
                "url": f"https://dvc.example.vn/files/{100 + i}",
            }
            for i in range(20)
        ],
        "results": [{"id": "KQ-1", "name": "Kết quả.pdf", "component_code": "KQ-01", "url": "https://x/kq1"}],
    }
    for i in range(40 - len(document)):
        document[f"extra_{i:02d}"] = f"provincial field {i}"
    assert len(document) == 40
    return document


def handwritten(
    statuses: dict[str, Any], tables: dict[str, dict[str, Any]]
) -> Callable[[dict[str, Any]], Any]:
    """The same mapping written by hand, as an integrator would without the engine."""
    applicant_types, deliveries = tables["applicant_type"], tables["delivery"]
    collections, fee_types = tables["fee_collection"], tables["fee_type"]

    def nfc(text: str) -> str:
        return unicodedata.normalize("NFC", text)

    def when(text: str) -> str:
        d = datetime.fromisoformat(text)
        d = d.replace(tzinfo=ZONE) if d.tzinfo is None else d.astimezone(ZONE)
        return f"{d.year:04d}{d.month:02d}{d.day:02d}{d.hour:02d}{d.minute:02d}{d.second:02d}"

    # Paths are formatted only on failure, as the engine does.
    def need(value: Any, field: str, index: int | None = None) -> Any:
        if value is None:
            raise ValueError(f"{field}[{index}]: required field is missing")
        return value

    def code(table: dict[str, Any], value: Any, field: str, index: int | None = None) -> Any:
        try:
            return table[value]
        except KeyError:
            raise ValueError(f"{field}[{index}]: unknown code {value!r}") from None

    def fee(item: dict[str, Any], i: int) -> dict[str, Any]:
        out = {"TenPhiLePhi": nfc(need(item.get("name"), "DanhSachLePhi.TenPhiLePhi", i))}
        if item.get("code") is not None:
            out["MaPhiLePhi"] = item["code"]
        if item.get("collection") is not None:
            out["HinhThucThu"] = code(collections, item["collection"], "DanhSachLePhi.HinhThucThu", i)
        amount = need(item.get("amount"), "DanhSachLePhi.Gia", i)
        out["Gia"] = amount if type(amount) is int else int(amount)
        out["LoaiPhiLePhi"] = code(fee_types, need(item.get("type"), "LoaiPhiLePhi", i), "LoaiPhiLePhi", i)
        return out

    def attachment(item: dict[str, Any], i: int) -> dict[str, Any]:
        out = {
            "TepDinhKemId": str(need(item.get("id"), "TaiLieuNop.TepDinhKemId", i)),
            "TenTepDinhKem": nfc(need(item.get("name"), "TaiLieuNop.TenTepDinhKem", i)),
        }
        deleted = item.get("deleted")
        out["IsDeleted"] = False if deleted is None else bool(deleted)
        if item.get("component_code") is not None:
            out["MaThanhPhanHoSo"] = item["component_code"]
        out["DuongDanTaiTepTin"] = need(item.get("url"), "TaiLieuNop.DuongDanTaiTepTin", i)
        return out

    def result(item: dict[str, Any], i: int) -> dict[str, Any]:
        out = {
            "GiayToId": str(need(item.get("id"), "DanhSachGiayToKetQua.GiayToId", i)),
            "TenGiayTo": nfc(need(item.get("name"), "DanhSachGiayToKetQua.TenGiayTo", i)),
        }
        if item.get("component_code") is not None:
            out["MaThanhPhanHoSo"] = item["component_code"]
        out["DuongDanTepTinKetQua"] = need(item.get("url"), "DanhSachGiayToKetQua.DuongDanTepTinKetQua", i)
        return out

    def apply(d: dict[str, Any]) -> dict[str, Any]:
        procedure = d.get("procedure") or {}
        applicant = d.get("applicant") or {}
        out: dict[str, Any] = {
            "MaHoSo": need(d.get("dossier_id"), "MaHoSo").strip(),
            "MaTTHC": need(procedure.get("code"), "MaTTHC").strip(),
        }
        if procedure.get("name") is not None:
            out["TenTTHC"] = nfc(procedure["name"])
        if procedure.get("sector_code") is not None:
            out["MaLinhVuc"] = procedure["sector_code"]
        if procedure.get("sector_name") is not None:
            out["TenLinhVuc"] = nfc(procedure["sector_name"])
        if d.get("receipt_number") is not None:
            out["SoBienNhan"] = d["receipt_number"]
        out["ChuHoSo"] = nfc(need(applicant.get("full_name"), "ChuHoSo").strip())
        out["LoaiDoiTuong"] = code(
            applicant_types, need(applicant.get("type"), "LoaiDoiTuong"), "LoaiDoiTuong"
        )
        if applicant.get("id_number") is not None:
            out["MaDoiTuong"] = applicant["id_number"]
        if applicant.get("email") is not None:
            out["Email"] = applicant["email"].strip()
        if applicant.get("phone") is not None:
            out["SoDienThoai"] = applicant["phone"].strip()
        if d.get("summary") is not None:
            out["TrichYeuHoSo"] = nfc(d["summary"])
        out["NgayTiepNhan"] = when(need(d.get("received_at"), "NgayTiepNhan"))
        if d.get("due_at") is not None:
            out["NgayHenTra"] = when(d["due_at"])
        out["TrangThaiHoSo"] = code(statuses, need(d.get("status"), "TrangThaiHoSo"), "TrangThaiHoSo")
        if d.get("returned_at") is not None:
            out["NgayTra"] = when(d["returned_at"])
        delivery = d.get("delivery")
        out["HinhThuc"] = "0" if delivery is None else code(deliveries, delivery, "HinhThuc")
        if d.get("handling_agency") is not None:
            out["DonViXuLy"] = d["handling_agency"]
        note = d.get("note")
        out["GhiChu"] = "" if note is None else note
        out["DanhSachLePhi"] = [fee(item, i) for i, item in enumerate(d.get("fees") or [])]
        out["TaiLieuNop"] = [attachment(item, i) for i, item in enumerate(d.get("attachments") or [])]
        out["DanhSachGiayToKetQua"] = [result(item, i) for i, item in enumerate(d.get("results") or [])]
        return out

    return apply


def rate(function: Callable[[dict[str, Any]], Any], document: dict[str, Any], seconds: float) -> float:
    """Calls per second of `function(document)` over about `seconds`."""
    done, batch = 0, 50
    started = time.perf_counter()
    stop = started + seconds
    while time.perf_counter() < stop:
        for _ in range(batch):
            function(document)
        done += batch
    return done / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="duration of one measurement")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case")
    parser.add_argument("--quick", action="store_true", help="0.2 s x 3 rounds, for a smoke run")
    args = parser.parse_args()
    seconds, rounds = (0.2, 3) if args.quick else (args.seconds, args.rounds)

    spec = SpecLoader(TransformRegistry.builtin()).load(SPEC)
    folder = SPEC.parent / "code_tables"
    tables = {
        name: read_code_table(folder / f"{name}.csv")
        for name in ("applicant_type", "delivery", "fee_collection")
    }
    tables["fee_type"] = read_code_table(SPECS_DIR / "code_tables" / "fee_type.csv")
    hand = handwritten(read_code_table(folder / "dossier_status.yaml"), tables)
    document = dossier()
    if spec.apply(document) != hand(document):
        raise SystemExit("the hand-written mapping and the spec disagree; fix the benchmark first")

    cases: dict[str, Callable[[dict[str, Any]], Any]] = {"spec (engine)": spec.apply, "hand-written": hand}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, function in cases.items():
            samples[name].append(rate(function, document, seconds))

    print(f"DVCQG dossier mapping: 40 fields, 10 fees, 20 attachments; {rounds} rounds x {seconds:g} s")
    print(f"{'case':<16}{'median/s':>12}{'min/s':>12}{'max/s':>12}{'µs/apply':>12}")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"{name:<16}{median:>12,.0f}{min(values):>12,.0f}{max(values):>12,.0f}{1e6 / median:>12.1f}")
    ratio = statistics.median(samples["spec (engine)"]) / statistics.median(samples["hand-written"])
    print(f"RATIO spec/handwritten {ratio:.2f}")


if __name__ == "__main__":
    main()
