"""The OCSF ids and captions the runtime mapping hardcodes are the bundled schema's."""

from __future__ import annotations

import pytest

from forwarder.schema.ocsf import OCSF_VERSION
from forwarder.schema.ocsf.classes import (
    ACCOUNT_TYPES,
    CLASSES,
    ENTITY_TYPES,
    SEVERITIES,
    STATUSES,
    USER_TYPES,
    OcsfClass,
)
from forwarder.schema.ocsf.mapping import CALENDLY_EVENTS, GOOGLE_EVENTS
from forwarder.schema.ocsf.validate import OcsfSchema


def _enum(schema: OcsfSchema, shape: str, attribute: str) -> dict[int, str]:
    owner = schema.classes[3004] if shape == "event" else schema.objects[shape]
    enum = owner.attributes[attribute].enum
    assert enum is not None
    return {int(key): caption for key, caption in enum.items()}


def test_version(ocsf_schema: OcsfSchema) -> None:
    assert ocsf_schema.version == OCSF_VERSION == "1.7.0"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.name)
def test_class_ids_and_captions(cls: OcsfClass, ocsf_schema: OcsfSchema) -> None:
    shape = ocsf_schema.classes[cls.uid]
    assert shape.caption == cls.name
    assert not shape.deprecated
    assert shape.attributes["category_uid"].enum == {str(cls.category_uid): cls.category_name}
    assert shape.attributes["class_uid"].enum == {str(cls.uid): cls.name}
    assert shape.attributes["activity_id"].enum == {
        str(key): caption for key, caption in cls.activities.items()
    }


def test_enum_captions(ocsf_schema: OcsfSchema) -> None:
    assert _enum(ocsf_schema, "event", "severity_id") == SEVERITIES
    assert _enum(ocsf_schema, "event", "status_id") == STATUSES
    assert _enum(ocsf_schema, "user", "type_id") == USER_TYPES
    assert _enum(ocsf_schema, "managed_entity", "type_id") == ENTITY_TYPES
    accounts = _enum(ocsf_schema, "account", "type_id")
    assert {key: accounts[key] for key in ACCOUNT_TYPES} == ACCOUNT_TYPES


def test_every_mapping_header_matches_the_schema(ocsf_schema: OcsfSchema) -> None:
    for mapping in [*GOOGLE_EVENTS.values(), *CALENDLY_EVENTS.values()]:
        header = mapping.header
        shape = ocsf_schema.classes[header["class_uid"]]
        assert shape.attributes["type_uid"].enum is not None
        assert shape.attributes["type_uid"].enum[str(header["type_uid"])] == header["type_name"]
        activity = shape.attributes["activity_id"].enum
        assert activity is not None and str(header["activity_id"]) in activity
