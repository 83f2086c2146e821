"""The cold-start bench measures with the Lambda's libraries only (bench/rotation_bench.py, `lambda_site`):
what rotation/requirements.txt and the runtime's boto3 bring, not what the development environment adds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.rotation_bench import lambda_site

REPO = Path(__file__).resolve().parents[2]


def test_the_lambda_site_holds_the_packaged_libraries_and_nothing_else(tmp_path: Path) -> None:
    site = lambda_site(tmp_path)
    names = {p.name for p in site.iterdir()}
    assert {"psycopg", "psycopg_binary", "redis", "cryptography", "boto3", "botocore"} <= names
    # Installed here for pulumi and the tests, absent from the package: redis-py imports opentelemetry when present.
    assert not names & {"opentelemetry", "pulumi", "moto", "pytest", "grpc"}
    code = ("import sys; sys.path[:0] = sys.argv[1:]; import redis, psycopg; "
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'pulumi'))))")
    done = subprocess.run([sys.executable, "-S", "-c", code, str(REPO), str(site)], capture_output=True, text=True,
                          check=True, cwd=tmp_path)
    assert done.stdout.strip() == "[]"
