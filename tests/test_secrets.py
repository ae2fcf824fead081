"""Secrets stay out of reports: a password in a guard's URL, a token in its query and a secret in
the environment are planted in a run, and no file the run writes holds any of them."""

import os
import subprocess
import sys

from chaos.redact import redact_url
from tests.lab.conftest import ROOT

PASSWORD, TOKEN, ENV_SECRET = "pw-s3cr3t-456", "tok-s3cr3t-789", "env-s3cr3t-123"


def test_no_file_a_run_writes_holds_a_planted_secret(tmp_path):
    guard = f"http://admin:{PASSWORD}@127.0.0.1:9/healthz?token={TOKEN}"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "experiments/test_master_ha.py::test_follower_loss_keeps_writes",
            "--platform",
            "memory",
            "-p",
            "no:cacheprovider",
            "-q",
            "--chaos-reports",
            str(tmp_path / "reports"),
            "--alluredir",
            str(tmp_path / "allure-results"),
            "--junitxml",
            str(tmp_path / "junit.xml"),
            "--chaos-progress",
            str(tmp_path / "progress.jsonl"),
            # unreachable: the guard trips, so its URL lands in the verdict's message too
            "--chaos-guard",
            f"max_error_rate=0.5,over=1s,http={guard}",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "API_TOKEN": ENV_SECRET, "DB_PASSWORD": ENV_SECRET},
        timeout=120,
        check=False,
    )
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) >= 5, out.stdout[-2000:]
    assert (
        "guard http://admin:***@127.0.0.1:9/healthz?token=***"
        in (tmp_path / "reports/summary.json").read_text()
    )
    for path in written:
        text = path.read_bytes().decode(errors="replace")
        for secret in (PASSWORD, TOKEN, ENV_SECRET):
            assert secret not in text, f"{secret} in {path}"
    for secret in (PASSWORD, TOKEN):
        assert secret not in out.stdout + out.stderr  # nor on the terminal a CI log keeps


def test_urls_lose_their_password_and_secret_query_values_only():
    assert redact_url("https://u:p@h:8/x?token=t&page=2&flag") == "https://u:***@h:8/x?token=***&page=2&flag"
    assert redact_url("https://t0k@h/") == "https://***@h/"
    assert (
        redact_url("http://h/q?api_key=k&X-Amz-Signature=s&q=up")
        == "http://h/q?api_key=***&X-Amz-Signature=***&q=up"
    )
    assert redact_url("http://198.18.0.20/healthz") == "http://198.18.0.20/healthz"
    assert redact_url("not a url") == "not a url"
