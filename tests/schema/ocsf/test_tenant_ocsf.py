"""The tenant of an event in both outputs, for both providers: ECS ``labels.tenant``
(valid against docs/ecs-output.schema.json, documented) and the OCSF ``metadata.tags``
pair (valid OCSF 1.7.0), next to, not instead of, the provider's own organization /
customer id (ECS ``organization.id``, OCSF ``metadata.tenant_uid``)."""

from __future__ import annotations

import orjson
import pytest

from forwarder.schema.normalize_stream import normalize_payload
from forwarder.schema.ocsf.validate import OcsfSchema

from ..builders import INGESTED, activity, calendly_entry, gevent, param
from ..ecs_check import check_document
from .ocsf_check import valid_ocsf

RECORDS = {
    "calendly": calendly_entry(),
    "google_calendar": activity(gevent("create_event", param("calendar_id", value="a@x.com"))),
}


@pytest.mark.parametrize("provider", sorted(RECORDS))
def test_tenant_in_ecs_and_ocsf(provider: str, ocsf_schema: OcsfSchema) -> None:
    data = orjson.dumps(RECORDS[provider])
    events, failures = normalize_payload(provider, data, ingested=INGESTED, tenant="acme")
    assert not failures and events
    for event in events:
        document = event.document
        check_document(document)
        assert document["labels"] == {"tenant": "acme"}
        # The provider's organization / customer id is kept, not replaced by the tenant.
        assert document["organization"]["id"] not in ("", "acme")
        out = valid_ocsf(event, ocsf_schema)
        assert out["metadata"]["tags"] == [{"name": "tenant", "value": "acme"}]
        assert out["metadata"]["tenant_uid"] == document["organization"]["id"]


@pytest.mark.parametrize("provider", sorted(RECORDS))
def test_no_tenant_no_label(provider: str, ocsf_schema: OcsfSchema) -> None:
    events, _ = normalize_payload(provider, orjson.dumps(RECORDS[provider]), ingested=INGESTED)
    assert events
    for event in events:
        assert "labels" not in event.document
        assert "tags" not in valid_ocsf(event, ocsf_schema)["metadata"]


def test_ecs_schema_refuses_a_malformed_tenant() -> None:
    events, _ = normalize_payload(
        "calendly", orjson.dumps(RECORDS["calendly"]), ingested=INGESTED, tenant="a b"
    )
    with pytest.raises(AssertionError):
        check_document(events[0].document)
