"""The simulator's own copy of the Blink schema, its scalars parsing input as Blink's do.

The shared `tipsplit.blink.schema.blink_schema()` object is the client's too and keeps
graphql-core's permissive default scalars; the simulator validates and executes
against this copy instead.
"""

from functools import lru_cache

from graphql import GraphQLScalarType, GraphQLSchema, build_schema

from tipsplit.blink.schema import schema_sdl
from tipsplit.sim.scalars import SCALARS


@lru_cache(maxsize=1)
def sim_schema() -> GraphQLSchema:
    schema = build_schema(schema_sdl())
    for name, rules in SCALARS.items():
        scalar = schema.type_map.get(name)
        if isinstance(scalar, GraphQLScalarType):
            scalar.parse_value = scalar.coerce_input_value = rules.parse_value  # type: ignore[method-assign,assignment]
            scalar.parse_literal = rules.parse_literal  # type: ignore[method-assign]
    return schema
