"""Building new table rows fast, for the ingest path.

``Item(**values)`` on a SQLModel table model sets each of its ~40 fields through
SQLModel's ``__setattr__``, SQLAlchemy's instrumentation (an attribute event and a
history entry per field) and pydantic's ``__setattr__``: about 0.15 ms a row on a quiet
2-core machine, a tenth of a single-item submit and the largest share of a batch's rows
(bench/ingest.py). :func:`new_row` makes the same object the way SQLAlchemy makes one
it loads from the database (``ClassManager.new_instance``: ``__new__`` and an instance
state, no ``__init__``) and fills its ``__dict__`` at once with the values and the
fields' defaults. The object reads, compares, dumps and inserts like one made by the
constructor, and later attribute changes are instrumented as usual; only the initial
values carry no attribute history, which a new row that is inserted (through
``session.add`` or a Core ``insert``) does not need.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic_core import PydanticUndefined
from sqlmodel import SQLModel

M = TypeVar("M", bound=SQLModel)
_IMMUTABLE = (type(None), bool, int, float, str, bytes, tuple, frozenset)


def new_row(model: type[M], **values: Any) -> M:
    """A new, transient ``model`` row holding ``values`` and the defaults of the rest
    (as ``model(**values)`` would; the values are not validated, as they are not there)."""
    static, factories = _defaults(model)
    row: M = model._sa_class_manager.new_instance()  # type: ignore[attr-defined]
    state = row.__dict__
    for name, default in static.items():
        state[name] = default if isinstance(default, _IMMUTABLE) else copy.deepcopy(default)
    for name, factory in factories.items():
        state[name] = factory()
    state.update(values)
    object.__setattr__(row, "__pydantic_fields_set__", set(values))
    return row


@functools.cache
def _defaults(model: type[SQLModel]) -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    static: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories[name] = info.default_factory  # type: ignore[assignment]
        elif info.default is not PydanticUndefined:
            static[name] = info.default
    return static, factories
