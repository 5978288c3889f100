#!/usr/bin/env python3
"""Drive Tagwarden with the official Python MCP SDK (an independent client).

Usage:
  python_sdk_client.py --mode MODE --examples EXAMPLES.json --expect CHECK.json --stdio BIN [ARGS...]
  python_sdk_client.py --mode MODE --examples EXAMPLES.json --expect CHECK.json --http URL

MODE is `legacy` (2025-11-25 initialize handshake, sessions over HTTP) or `2026-07-28`
(stateless). EXAMPLES.json lists the tools the server must list, from its registry, each with a
valid and an invalid example call kept in the tool's own module (tests/it/python_sdk.rs writes
it: `[{"name", "valid", "invalid": [ARGS, NAMED_ARGUMENT]}]`).
For every tool: its input and output schemas must be valid JSON Schema; a valid call must
succeed with structuredContent valid against the outputSchema; an invalid call must come back
with isError. check_tag_compliance must report exactly the numbers in CHECK.json
(what `tagwarden check --format json` printed). Prints a JSON summary; exits non-zero on any
failure.
"""

import argparse
import asyncio
import json
import sys

import jsonschema
from mcp import Client
from mcp.client.stdio import StdioServerParameters

COMPARED = ["score_pct", "native_score_pct", "resources", "in_scope", "effective", "native",
            "by_severity", "by_kind", "native_by_kind", "by_key", "by_type", "by_region",
            "by_account", "violations", "violations_total", "policy_hash"]


def fail(message):
    print(json.dumps({"ok": False, "error": message}))
    sys.exit(1)


def text_of(result):
    return " ".join(getattr(c, "text", "") for c in result.content)


async def exercise(target, mode, expected, examples):
    registered = list(examples)
    summary = {"mode": mode, "tools": []}
    async with Client(target, mode=mode) as client:
        summary["protocol_version"] = client.protocol_version
        tools = (await client.list_tools()).tools
        names = [t.name for t in tools]
        if sorted(names) != sorted(registered):
            fail(f"tools/list returned {names}, the registry has {registered}")
        for tool in tools:
            for kind, schema in (("inputSchema", tool.input_schema), ("outputSchema", tool.output_schema)):
                if schema is None:
                    fail(f"{tool.name} has no {kind}")
                try:
                    jsonschema.Draft202012Validator.check_schema(schema)
                except jsonschema.SchemaError as e:
                    fail(f"{tool.name} {kind} is not valid JSON Schema: {e.message}")
            result = await client.call_tool(tool.name, examples[tool.name]["valid"])
            if result.is_error:
                fail(f"{tool.name} valid call failed: {text_of(result)}")
            try:
                jsonschema.Draft202012Validator(tool.output_schema).validate(result.structured_content)
            except jsonschema.ValidationError as e:
                fail(f"{tool.name} structuredContent does not match its outputSchema: {e.message} at {list(e.path)}")
            bad_args, needle = examples[tool.name]["invalid"]
            bad = await client.call_tool(tool.name, bad_args)
            if not bad.is_error:
                fail(f"{tool.name} accepted invalid arguments {bad_args}")
            if needle not in text_of(bad):
                fail(f"{tool.name} error does not name `{needle}`: {text_of(bad)}")
            summary["tools"].append(tool.name)
            if tool.name == "check_tag_compliance":
                got = result.structured_content
                for field in COMPARED:
                    if got.get(field) != expected.get(field):
                        fail(f"check_tag_compliance.{field} differs from the CLI: {got.get(field)!r} != {expected.get(field)!r}")
                summary["score_pct"] = got["score_pct"]
    summary["ok"] = True
    return summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="legacy")
    parser.add_argument("--examples", required=True)
    parser.add_argument("--expect", required=True)
    parser.add_argument("--http")
    parser.add_argument("--stdio", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    with open(args.expect) as f:
        expected = json.load(f)
    if args.http:
        target = args.http
    elif args.stdio:
        target = StdioServerParameters(command=args.stdio[0], args=args.stdio[1:])
    else:
        fail("give --http URL or --stdio BIN ARGS")
    with open(args.examples) as f:
        examples = {e["name"]: e for e in json.load(f)}
    summary = asyncio.run(exercise(target, args.mode, expected, examples))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
