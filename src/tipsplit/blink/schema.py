"""The Blink public GraphQL schema, shipped with the package as the contract for client and simulator.

The SDL file is Blink's public schema (Galoy, MIT License, Copyright (c) 2021 Galoy).
"""

from functools import lru_cache
from importlib.resources import files

from graphql import GraphQLSchema, build_schema

SCHEMA_FILE = "blink-public-schema.graphql"


def schema_sdl() -> str:
    """Return the schema's SDL text."""
    return files("tipsplit.blink").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def blink_schema() -> GraphQLSchema:
    """Build the schema once per process; building it costs tens of milliseconds."""
    return build_schema(schema_sdl())
