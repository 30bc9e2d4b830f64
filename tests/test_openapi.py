"""``GET /openapi.json`` and schemathesis against the live ingest app: no server error, no answer outside
the published schema, for data the schema allows and for data it does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bot.ingestion.payloads import NDJSON_TYPES
from bot.ingestion.validation import Event
from tests.live_ingest import TOKEN, LiveIngest, live_ingest

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


@schemathesis.serializer(*sorted(NDJSON_TYPES))
def ndjson(ctx: Any, value: Any) -> dict[str, Any]:
    """One JSON value per line, as the API documents for these media types."""
    items = value if isinstance(value, list) else [value]
    return {"data": "\n".join(json.dumps(item) for item in items).encode()}  # json: ints of any size


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveIngest]:
    with live_ingest(tmp_path_factory.mktemp("openapi")) as live:
        yield live


@pytest.fixture(scope="module")
def schema(server: LiveIngest) -> Any:
    """Loaded over HTTP from the live app, as a source developer's tooling would (once: it is slow)."""
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


def test_openapi_document_describes_every_answer_and_the_event(schema: Any) -> None:
    raw = schema.raw_schema
    post = raw["paths"]["/v1/events"]["post"]
    assert set(post["responses"]) == {"202", "207", "400", "401", "413", "415", "422", "429", "503"}
    assert set(post["requestBody"]["content"]) >= {"application/json", "application/x-ndjson"}
    assert raw["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    event = raw["components"]["schemas"]["Event"]
    assert set(event["required"]) == {"timestamp", "event", "user_id"}
    assert set(event["properties"]) == set(Event.model_fields)
    assert "Retry-After" in post["responses"]["503"]["headers"]
    assert "/healthz" in raw["paths"]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_schema(
    server: LiveIngest, schema: Any, mode: GenerationMode
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],  # shrinking could take minutes; the failure is printed
    )
    @given(case=schema.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=server.url, headers=auth, checks=CHECKS, timeout=30)

    run()
    assert server.count() + server.quarantined() > 0  # the cases reached storage, not only the door
