"""Every ECS document produced by the tests of this directory is checked against the
JSON Schema and the field reference (see ``ecs_check``), whatever the test asserts.

The check hooks :class:`forwarder.events.Event` construction for the duration of each test
module (module scope: Hypothesis rejects function-scoped fixtures around ``@given``), so
no document a normalizer builds here can escape it. ``tests/schema/ocsf`` is another
suite's and is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from forwarder.events import Event

from .ecs_check import check_document


@pytest.fixture(autouse=True, scope="module")
def _every_document_is_checked(request: pytest.FixtureRequest) -> Iterator[None]:
    if "ocsf" in request.path.parts:
        yield
        return
    construct = Event.__init__

    def checked(self: Event, *args: Any, **kwargs: Any) -> None:
        construct(self, *args, **kwargs)
        check_document(self.document)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Event, "__init__", checked)
        yield
