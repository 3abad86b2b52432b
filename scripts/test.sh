#!/usr/bin/env bash
# Set up (idempotent) and run the test suite. Extra arguments go to pytest (and then only that one pass runs).
#
# Without arguments: the full suite on the embedded lake (the default), then the lake-sensitive tests again with
# the catalogue on PostgreSQL metadata + S3 data (GEORESET_TEST_LAKE=pg-s3: a real PostgreSQL and a moto S3 server
# started once on 127.0.0.1, a metadata schema and a data prefix per test workdir): the kill tests, the
# CLI-vs-DAG contract test and the remote-lake tests (with the switch's own check). The concurrency tests
# (test_lake_concurrency.py, test_writer_concurrency.py) run on PostgreSQL + S3 in the first pass already.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 AIRFLOW__CORE__LOAD_EXAMPLES=False
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest "$@"
fi
.venv/bin/python -m pytest --durations=25  # the slowest tests, to keep CI under 30 minutes
echo "[test] second pass: the lake on PostgreSQL + S3 (GEORESET_TEST_LAKE=pg-s3)"
GEORESET_TEST_LAKE=pg-s3 exec .venv/bin/python -m pytest --durations=10 tests/data_catalog/test_kill_retry.py \
  tests/data_catalog/test_lake_remote.py tests/dags/test_contract.py
