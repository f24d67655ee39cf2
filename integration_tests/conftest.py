from __future__ import annotations

from collections.abc import Iterator
import os
import uuid

import optuna
import pytest


POSTGRES_URL_VAR = "OPTUNA_SRP_TEST_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL database that ``.ci/run`` started for the tests.

    The tests never start a server themselves: without the variable they are skipped. Studies
    created under the URL are deleted afterwards (only those whose name the test was given
    through :func:`study_name`)."""
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url:
        pytest.skip(
            f"{POSTGRES_URL_VAR} is not set; .ci/run starts a local PostgreSQL and sets it "
            "(e.g. postgresql+psycopg2://postgres@127.0.0.1:54329/optuna_srp_test)"
        )
    pytest.importorskip("psycopg2", reason="psycopg2-binary (the test extra) is not installed")
    yield url


@pytest.fixture
def study_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh study name; the study is deleted from PostgreSQL afterwards when used there."""
    name = f"srp-{request.node.name}-{uuid.uuid4().hex[:8]}"
    yield name
    url = os.environ.get(POSTGRES_URL_VAR)
    if url and "postgres_url" in request.fixturenames:
        try:
            optuna.delete_study(study_name=name, storage=url)
        except KeyError:
            pass
