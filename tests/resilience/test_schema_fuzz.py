"""The integrator API under Schemathesis (issue 11): cases generated from the project's
own OpenAPI schema for every ``/v1`` operation, valid and invalid ones, sent to the ASGI
app in process with a real API key. No answer may be a 5xx, and every answer must be
documented: its status code, its content type and its body's schema.

Repeatable: Hypothesis runs derandomized (the same cases on every run) and without its
example database. ``FUZZ_EXAMPLES`` cases per operation and generation mode
(``TEST_FUZZ_EXAMPLES`` overrides it); run with ``-s`` to see how many cases
were sent in all.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.app import build, create_app
from bot.routes import parse_routes
from bot.settings import Settings, load_settings
from storage.migrate import upgrade
from tests import secrets_scan
from tests.conftest import ROUTES_YAML
from tests.fakes.surface import RecordingSurface

FUZZ_EXAMPLES = int(os.environ.get("TEST_FUZZ_EXAMPLES", "200"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
sent: Counter[str] = Counter()


async def _prepare(settings: Settings) -> str:
    """Migrate the database and make the API key (with an engine of its own: the app's
    runs on Schemathesis's event loop thread)."""
    system = build(settings, routes=parse_routes(ROUTES_YAML), surfaces={"web": RecordingSurface()})
    try:
        await upgrade(system.engine)
        return secrets_scan.register((await system.keys.create(name="fuzzer")).api_key)
    finally:
        await system.close()


@pytest.fixture(scope="module")
def fuzz_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    settings = load_settings(
        {
            "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/signoff.db",
            "SIGNOFF_MAX_WAIT_SECONDS": "0.05",  # a generated ?wait= must not hold the run
        }
    )
    key = asyncio.run(_prepare(settings))
    system = build(settings, routes=parse_routes(ROUTES_YAML), surfaces={"web": RecordingSurface()})
    app = create_app(system, migrate=False, run_worker=False, run_scheduler=False)
    try:
        yield key, app
    finally:
        shutdown_lifespans()  # the app's lifespan closes the system on its own loop
        total = sum(sent.values())
        print(f"\nschema fuzz: {total} cases over {len(sent)} operations: {dict(sent)}")


@pytest.fixture(scope="module")
def api_schema(fuzz_key: tuple[str, object]) -> schemathesis.BaseSchema:
    _, app = fuzz_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=r"^/v1/")
    # the bearer key is sent by the test; a generated one would only ever be unknown
    schema.config.generation.update(with_security_parameters=False)
    return schema


@pytest.mark.parametrize(
    "mode",
    [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
    ids=["valid", "invalid"],
)
def test_v1_operations_answer_as_documented(
    api_schema: schemathesis.BaseSchema,
    fuzz_key: tuple[str, object],
    mode: schemathesis.GenerationMode,
) -> None:
    """Every /v1 operation, FUZZ_EXAMPLES cases each (Schemathesis's pytest plugin does
    not run under pytest 9, so the cases are drawn here with Hypothesis)."""
    key, _ = fuzz_key
    failures: dict[str, str] = {}
    operations = list(api_schema.get_all_operations())
    assert len(operations) >= 4
    for result in operations:
        if isinstance(result, Err):
            failures[f"schema {result.err()}"] = "the schema of this operation is invalid"
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        try:
            _fuzz(operation, mode=mode, key=key, label=label)
        except Exception as exc:  # collect every operation's failure, then report all
            failures[label] = f"{type(exc).__name__}: {exc}"[:4000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def _fuzz(
    operation: schemathesis.APIOperation, *, mode: schemathesis.GenerationMode, key: str, label: str
) -> None:
    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def answers_as_documented(case: schemathesis.Case) -> None:
        sent[label] += 1
        case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

    answers_as_documented()
