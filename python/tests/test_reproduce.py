"""ns.reproduce runs the library's report (quick ensembles)."""
import noether_sde as ns


def test_quick_report_writes_its_files(tmp_path):
    summary = ns.reproduce(out=tmp_path / "report", quick=True)
    assert summary["claims"], "the report checks at least one claim"
    assert all(c["verdict"] in ("pass", "fail") for c in summary["claims"])
    assert (tmp_path / "report" / "report.md").exists()
