"""Offline validation of OCSF events against the official schema JSON.

The schema file is the one pydantic-ocsf bundles (``ocsf/schemas/v1_7_0.json``): the OCSF
*source* layout, not the server's compiled export. Classes and objects name their parent
in ``extends``, their attributes carry only what they override (``requirement``,
``description``, class-specific ``enum`` members...) and the rest (``type``, ``is_array``,
``sibling``, generic enum members such as 0 Unknown / 99 Other) lives in the dictionary.
:func:`compile_schema` resolves it the way the OCSF reference compiler (ocsf-lib-py) does:
deep-merge child over parent (lists united, child values win), then each attribute over
its dictionary entry; ``class_uid``/``category_uid``/``type_uid`` get class-specific
enums (``class_uid = category_uid * 1000 + uid``, ``type_uid = class_uid * 100 +
activity_id``, ``type_name = "<class>: <activity>"``).

Profiles (``$include`` of ``profiles/*.json``) are not in the bundle, so attributes only
a profile adds (``device``, ``cloud``...) are reported as unknown, with the profiles the
class includes named in the message. The same goes for the bundles of OCSF < 1.4, whose
base event takes its classification/occurrence attributes from include files: this
validator is meant for the 1.7.0 file (it resolves 1.4-1.7 completely).

Runtime code does not need this module, nor pydantic-ocsf: only tests and tooling do.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

from forwarder.schema.ocsf.classes import OCSF_VERSION

# Base types every other type reduces to, and the Python types they accept.
_STRING = "string_t"
_INTEGER_TYPES = frozenset({"integer_t", "long_t"})
_FLOAT = "float_t"
_BOOLEAN = "boolean_t"
_JSON = "json_t"
# The generic object (``unmapped``): any attributes, by definition.
_GENERIC_OBJECT = "object"
# activity_id / status_id / ... value whose sibling holds the source's own label.
_OTHER = 99


class SchemaNotFoundError(FileNotFoundError):
    """The OCSF schema JSON could not be located (pydantic-ocsf not installed?)."""


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a class or object, resolved against the dictionary."""

    name: str
    requirement: str
    is_array: bool
    object_name: str | None
    """The object it holds, or None for a scalar."""
    base_type: str
    """The scalar base type (``string_t``, ``integer_t``...), or ``object``."""
    type_name: str
    """The declared type (``email_t``, ``user``...), for messages."""
    enum: Mapping[str, str] | None
    """Allowed values (as JSON keys: ``"1"``) -> caption."""
    sibling: str | None
    regex: re.Pattern[str] | None
    max_len: int | None
    value_range: tuple[int, int] | None
    deprecated: bool


@dataclass(frozen=True, slots=True)
class Shape:
    """A class or object after inheritance: its attributes and constraints."""

    name: str
    caption: str
    attributes: Mapping[str, Attribute]
    at_least_one: tuple[str, ...]
    just_one: tuple[str, ...]
    profiles: tuple[str, ...]
    deprecated: bool
    uid: int | None = None
    """``class_uid`` for an event class, None for an object."""


@dataclass(frozen=True, slots=True)
class OcsfSchema:
    """A resolved OCSF schema: event classes by ``class_uid`` and objects by name."""

    version: str
    classes: Mapping[int, Shape] = field(repr=False)
    objects: Mapping[str, Shape] = field(repr=False)


def schema_path(version: str = OCSF_VERSION) -> Path:
    """Where the installed pydantic-ocsf keeps the schema JSON of ``version``.

    Found with ``find_spec`` so the ``ocsf`` package is not imported (its ``__init__``
    installs an import hook). Raises :class:`SchemaNotFoundError` with what to do.
    """
    file_name = f"v{version.replace('.', '_')}.json"
    spec = importlib.util.find_spec("ocsf")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "schemas" / file_name
        if candidate.is_file():
            return candidate
    raise SchemaNotFoundError(
        f"OCSF schema {version} not found: looked for ocsf/schemas/{file_name} in "
        f"{locations or 'no installed ocsf package'}; install the test extra "
        "(pydantic-ocsf) or pass the path of an OCSF schema JSON file"
    )


def load_schema(path: str | Path | None = None, *, version: str = OCSF_VERSION) -> OcsfSchema:
    """Read and resolve the schema JSON at ``path`` (default: pydantic-ocsf's ``version``)."""
    source = Path(path) if path is not None else schema_path(version)
    try:
        raw = orjson.loads(source.read_bytes())
    except FileNotFoundError:
        raise SchemaNotFoundError(f"OCSF schema file {source} does not exist") from None
    return compile_schema(raw)


def compile_schema(raw: Mapping[str, Any]) -> OcsfSchema:
    """Resolve the source-layout schema JSON into classes and objects (see module doc)."""
    resolver = _Resolver(raw)
    objects = {name: resolver.object_shape(name) for name in resolver.objects}
    classes: dict[int, Shape] = {}
    for name in resolver.events:
        shape = resolver.class_shape(name)
        if shape is not None and shape.uid is not None:
            classes[shape.uid] = shape
    return OcsfSchema(
        version=str(raw.get("version", "")),
        classes=MappingProxyType(classes),
        objects=MappingProxyType(objects),
    )


def validate_ocsf(document: Any, schema: OcsfSchema, *, allow_deprecated: bool = True) -> list[str]:
    """The problems of one OCSF event against ``schema``; an empty list means valid.

    Checks: the class exists; ``category_uid``/``type_uid`` (and the ``*_name``
    captions) agree with it and ``activity_id``; every required attribute is present,
    recursively through nested objects and arrays of objects; ``at_least_one`` /
    ``just_one`` constraints; no attribute the class or object does not define
    (``unmapped`` is free-form); scalar types (string, integer, float, boolean,
    timestamps as integers), arrays, type patterns and lengths (``email_t``, ``ip_t``...);
    enum values and, except for 99 Other, that a sibling label equals the caption.
    ``allow_deprecated=False`` also reports deprecated classes and attributes.
    """
    if not isinstance(document, Mapping):
        return [f"event: expected an object, got {type(document).__name__}"]
    class_uid = document.get("class_uid")
    shape = schema.classes.get(class_uid) if type(class_uid) is int else None
    if shape is None:
        return [f"class_uid: {class_uid!r} is not an event class of OCSF {schema.version}"]
    checker = _Checker(schema, allow_deprecated)
    if shape.deprecated and not allow_deprecated:
        checker.problems.append(f"class_uid: {shape.caption} is deprecated")
    checker.check_object(document, shape, "")
    activity_id = document.get("activity_id")
    type_uid = document.get("type_uid")
    if (
        type(activity_id) is int
        and type(type_uid) is int
        and type_uid != (class_uid * 100 + activity_id)
    ):
        checker.problems.append(
            f"type_uid: {type_uid} is not class_uid * 100 + activity_id "
            f"({class_uid * 100 + activity_id})"
        )
    return checker.problems


class _Checker:
    """One validation run: walks the document, collecting problems."""

    def __init__(self, schema: OcsfSchema, allow_deprecated: bool) -> None:
        self.schema = schema
        self.allow_deprecated = allow_deprecated
        self.problems: list[str] = []

    def check_object(self, value: Mapping[str, Any], shape: Shape, path: str) -> None:
        prefix = f"{path}." if path else ""
        attributes = shape.attributes
        for name, attribute in attributes.items():
            if attribute.requirement == "required" and value.get(name) is None:
                self.problems.append(f"{prefix}{name}: required by {shape.caption}, missing")
        if shape.at_least_one and all(value.get(name) is None for name in shape.at_least_one):
            names = ", ".join(shape.at_least_one)
            self.problems.append(f"{path or 'event'}: {shape.caption} needs one of {names}")
        if shape.just_one:
            present = [name for name in shape.just_one if value.get(name) is not None]
            if len(present) != 1:
                names = ", ".join(shape.just_one)
                self.problems.append(
                    f"{path or 'event'}: {shape.caption} needs exactly one of {names}"
                )
        for name, item in value.items():
            attribute = attributes.get(name)
            if attribute is None:
                hint = (
                    f" (profiles {', '.join(shape.profiles)} are not in the bundled schema)"
                    if shape.profiles
                    else ""
                )
                self.problems.append(f"{prefix}{name}: not an attribute of {shape.caption}{hint}")
                continue
            if item is None:
                continue  # null is "absent"; required ones were reported above
            if attribute.deprecated and not self.allow_deprecated:
                self.problems.append(f"{prefix}{name}: deprecated attribute")
            self.check_value(item, attribute, f"{prefix}{name}")
            if attribute.enum is not None and attribute.sibling and not attribute.is_array:
                self.check_sibling(value, item, attribute, prefix)

    def check_value(self, item: Any, attribute: Attribute, path: str) -> None:
        if attribute.is_array:
            if type(item) is not list:
                self.problems.append(f"{path}: expected an array of {attribute.type_name}")
                return
            for index, element in enumerate(item):
                self.check_one(element, attribute, f"{path}[{index}]")
        else:
            self.check_one(item, attribute, path)

    def check_one(self, item: Any, attribute: Attribute, path: str) -> None:
        if attribute.object_name is not None:
            if not isinstance(item, Mapping):
                self.problems.append(f"{path}: expected a {attribute.type_name} object")
                return
            if attribute.object_name == _GENERIC_OBJECT:
                return
            shape = self.schema.objects.get(attribute.object_name)
            if shape is None:
                self.problems.append(f"{path}: unknown object type {attribute.object_name}")
                return
            self.check_object(item, shape, path)
            return
        if not self.check_scalar(item, attribute, path):
            return
        if attribute.enum is not None and _enum_key(item) not in attribute.enum:
            allowed = ", ".join(sorted(attribute.enum, key=_enum_order))
            self.problems.append(f"{path}: {item!r} is not one of {allowed}")

    def check_scalar(self, item: Any, attribute: Attribute, path: str) -> bool:
        base = attribute.base_type
        if base == _STRING:
            if type(item) is not str:
                return self._wrong_type(item, attribute, path)
            if attribute.max_len is not None and len(item) > attribute.max_len:
                self.problems.append(f"{path}: longer than {attribute.max_len} characters")
            if attribute.regex is not None and attribute.regex.search(item) is None:
                self.problems.append(f"{path}: {item!r} is not a valid {attribute.type_name}")
            return True
        if base in _INTEGER_TYPES:
            if type(item) is not int:
                return self._wrong_type(item, attribute, path)
            if attribute.value_range is not None:
                low, high = attribute.value_range
                if not low <= item <= high:
                    self.problems.append(f"{path}: {item} is outside {low}..{high}")
            return True
        if base == _FLOAT:
            if type(item) not in (int, float):
                return self._wrong_type(item, attribute, path)
            return True
        if base == _BOOLEAN:
            if type(item) is not bool:
                return self._wrong_type(item, attribute, path)
            return True
        return True  # json_t and anything unknown: any JSON value

    def check_sibling(
        self, value: Mapping[str, Any], item: Any, attribute: Attribute, prefix: str
    ) -> None:
        label = value.get(attribute.sibling or "")
        if label is None or type(item) is not int or item == _OTHER:
            return  # absent, already reported, or Other: the source's own label
        caption = attribute.enum.get(str(item)) if attribute.enum is not None else None
        if caption is not None and label != caption:
            self.problems.append(
                f"{prefix}{attribute.sibling}: {label!r} is not the caption of "
                f"{attribute.name} {item} ({caption!r})"
            )

    def _wrong_type(self, item: Any, attribute: Attribute, path: str) -> bool:
        self.problems.append(
            f"{path}: expected {attribute.type_name} ({attribute.base_type}), "
            f"got {type(item).__name__}"
        )
        return False


def _enum_key(value: Any) -> Any:
    # Enum keys are JSON object keys (strings); integer values are compared as text.
    return str(value) if type(value) is int else value


def _enum_order(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.lstrip("-").isdigit() else (1, key)


def _merge(child: Mapping[str, Any], parent: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge, child wins; lists are united in order (the reference compiler's rule)."""
    merged = dict(parent)
    for key, value in child.items():
        base = merged.get(key)
        if isinstance(value, Mapping) and isinstance(base, Mapping):
            merged[key] = _merge(value, base)
        elif isinstance(value, list) and isinstance(base, list):
            merged[key] = [*base, *(item for item in value if item not in base)]
        else:
            merged[key] = value
    return merged


# Keys a child never inherits: its own identity and deprecation.
_NOT_INHERITED = ("uid", "@deprecated", "caption", "name", "description")


class _Resolver:
    """Inheritance and dictionary resolution over the raw schema JSON."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.events: Mapping[str, Any] = raw.get("events", {})
        self.objects: Mapping[str, Any] = raw.get("objects", {})
        dictionary = raw.get("dictionary", {})
        self.dictionary: Mapping[str, Any] = dictionary.get("attributes", {})
        self.types: Mapping[str, Any] = dictionary.get("types", {}).get("attributes", {})
        self.categories: Mapping[str, Any] = raw.get("categories_meta", {}).get("attributes", {})
        self._flat: dict[tuple[str, str], dict[str, Any]] = {}

    def flatten(self, kind: str, name: str) -> dict[str, Any]:
        """The definition with its ``extends`` chain merged in (cached per resolver)."""
        key = (kind, name)
        cached = self._flat.get(key)
        if cached is not None:
            return cached
        table = self.events if kind == "events" else self.objects
        spec = table[name]
        parent_name = spec.get("extends")
        if parent_name and parent_name in table and parent_name != name:
            parent = {
                key: value
                for key, value in self.flatten(kind, parent_name).items()
                if key not in _NOT_INHERITED
            }
            flat = _merge(spec, parent)
        else:
            flat = dict(spec)
        self._flat[key] = flat
        return flat

    def object_shape(self, name: str) -> Shape:
        flat = self.flatten("objects", name)
        return self._shape(name, flat, self._attributes(flat))

    def class_shape(self, name: str) -> Shape | None:
        flat = self.flatten("events", name)
        local_uid = self.events[name].get("uid")
        if local_uid is None and name != "base_event":
            return None  # abstract category class (iam, application...)
        category = self.categories.get(flat.get("category", ""), {})
        category_uid = int(category.get("uid", 0))
        category_caption = category.get("caption", "Uncategorized")
        class_uid = category_uid * 1000 + int(local_uid or 0)
        caption = flat.get("caption", name)
        attributes = self._attributes(flat)
        activity = attributes.get("activity_id")
        activities = activity.enum if activity is not None and activity.enum else {}
        generated = {
            "class_uid": {str(class_uid): caption},
            "category_uid": {str(category_uid): category_caption},
            "type_uid": {
                str(class_uid * 100 + int(key)): f"{caption}: {label}"
                for key, label in activities.items()
            },
        }
        for attr_name, enum in generated.items():
            attribute = attributes.get(attr_name)
            if attribute is not None:
                attributes[attr_name] = _replace_enum(attribute, enum)
        return self._shape(name, flat, attributes, uid=class_uid)

    def _shape(
        self,
        name: str,
        flat: Mapping[str, Any],
        attributes: dict[str, Attribute],
        uid: int | None = None,
    ) -> Shape:
        constraints = flat.get("constraints", {})
        return Shape(
            name=name,
            caption=flat.get("caption", name),
            attributes=MappingProxyType(attributes),
            at_least_one=tuple(constraints.get("at_least_one", ())),
            just_one=tuple(constraints.get("just_one", ())),
            profiles=tuple(flat.get("profiles", ())),
            deprecated="@deprecated" in flat,
            uid=uid,
        )

    def _attributes(self, flat: Mapping[str, Any]) -> dict[str, Attribute]:
        attributes: dict[str, Attribute] = {}
        for name, spec in flat.get("attributes", {}).items():
            if name.startswith("$") or not isinstance(spec, Mapping):
                continue  # "$include" of profile files that are not bundled
            merged = _merge(spec, self.dictionary.get(name, {}))
            attributes[name] = self._attribute(name, merged)
        return attributes

    def _attribute(self, name: str, spec: Mapping[str, Any]) -> Attribute:
        declared = str(spec.get("type", _JSON))
        object_name: str | None = None
        if declared == "object_t":  # the compiled export's spelling
            object_name = str(spec.get("object_type", _GENERIC_OBJECT))
        elif declared in self.objects or declared == _GENERIC_OBJECT:
            object_name = declared
        base, regex, max_len, value_range = self._scalar(declared)
        enum = spec.get("enum")
        return Attribute(
            name=name,
            requirement=str(spec.get("requirement", "optional")),
            is_array=bool(spec.get("is_array", False)),
            object_name=object_name,
            base_type=_GENERIC_OBJECT if object_name is not None else base,
            type_name=object_name or declared,
            enum=_captions(enum) if isinstance(enum, Mapping) else None,
            sibling=spec.get("sibling"),
            regex=regex,
            max_len=max_len,
            value_range=value_range,
            deprecated="@deprecated" in spec,
        )

    def _scalar(
        self, declared: str
    ) -> tuple[str, re.Pattern[str] | None, int | None, tuple[int, int] | None]:
        """Follow ``email_t -> string_t`` to the base type, keeping the first constraints."""
        regex: re.Pattern[str] | None = None
        max_len: int | None = None
        value_range: tuple[int, int] | None = None
        current = declared
        for _ in range(8):  # type chains are one or two deep; bound it all the same
            info = self.types.get(current, {})
            if regex is None and "regex" in info:
                regex = _compile(info["regex"])
            if max_len is None and "max_len" in info:
                max_len = int(info["max_len"])
            if value_range is None and "range" in info:
                low, high = info["range"]
                value_range = (int(low), int(high))
            parent = info.get("type")
            if not parent or parent == current:
                break
            current = parent
        return current, regex, max_len, value_range


def _compile(pattern: str) -> re.Pattern[str] | None:
    # Older schemas use PCRE-only syntax (recursion, "(?1)"): such a type is not
    # pattern-checked rather than making the whole schema unusable.
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _captions(enum: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(key): str(member.get("caption", key)) if isinstance(member, Mapping) else str(key)
        for key, member in enum.items()
    }


def _replace_enum(attribute: Attribute, enum: Mapping[str, str]) -> Attribute:
    fields = {name: getattr(attribute, name) for name in Attribute.__slots__}
    fields["enum"] = dict(enum)
    return Attribute(**fields)
