"""Normalization of raw API records into the common schema (ECS-style JSON documents).

Modules, one job each:

- ``google_calendar`` / ``calendly``: one raw record -> :class:`forwarder.events.Event`\\ s.
- ``normalize_stream``: a page, JSON array or NDJSON of raw records -> events + failures.
- ``parameters``: Google ``parameters[]`` -> typed dict; ``times``: time decoding (the
  Google Calendar epoch constant lives there); ``messages``: admin-console messages.
- ``ids``: deterministic event ids; ``errors``: :class:`MalformedRecordError`;
  ``fields``: required/optional field access, ``event.original``, decode problems;
  ``urls``: ECS ``url.*`` fields.
- ``google_calendar_catalog`` / ``calendly_catalog``: the documented events;
  ``calendly_messages``: the Calendly activity sentences.
- ``ecs_mapping``: ``event.category`` / ``event.type`` / ``event.outcome`` (and Google's
  ``user.target`` parameter) for every event, one table per provider.
- ``sharing``: what a Google grantee / guest / subscriber / recipient is (user, group,
  domain, public...) and whether it is outside the source's ``internal_domains``.
- ``field_reference``: every output field, its type, meaning and source; ``docs``
  renders it and the mapping tables as ``docs/schema.md``
  (``python -m forwarder.schema.docs > docs/schema.md``). The JSON Schema of the output
  is ``docs/ecs-output.schema.json``.

Documents share unmodified subtrees (``details``, ``resourceDetails``...) with the raw
record instead of copying them: treat both as read-only once built.
"""
