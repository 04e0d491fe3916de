"""Every ```python block of README.md runs as shown, from the repository root, against the worker.

A block runs on its own, in a fresh interpreter (this one's: scripts/python-tests.sh's
virtual environment with kvworker installed) with $KV_RABBITMQ_URL naming the test
worker and the ATLAS stand-in importable, on a namespace of its own in place of the
README's "researcher". A block that uses names it does not define (a fragment
continuing an earlier example, such as the events consumer after the RPC tutorial)
runs after the earlier blocks that define them. A consumer that runs until stopped
(``channel.start_consuming()``) is stopped after two seconds. What a print(...) writes
is what the comment on the line after it shows.
"""
import ast
import builtins
import json
import os
import re
import subprocess
import sys
import symtable

import pytest

import kvworker
from conftest import ATLAS_FIXTURES, REPO_ROOT, URL, new_namespace
from kvworker import KeyValueStoreError

RUNNER = r"""
import sys
import pika.adapters.blocking_connection as blocking

start_consuming = blocking.BlockingChannel.start_consuming

def start_consuming_for_two_seconds(channel):
    channel.connection.call_later(2, channel.stop_consuming)
    return start_consuming(channel)

blocking.BlockingChannel.start_consuming = start_consuming_for_two_seconds
source, name = sys.stdin.read(), sys.argv[1]
exec(compile(source, name, "exec"), {"__name__": "__main__"})
"""


def python_blocks():
    """(first line number, code) of each ```python block of README.md."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    return [(text.count("\n", 0, found.start(1)) + 1, found.group(1))
            for found in re.finditer(r"^```python[ \t]*\n(.*?)^```[ \t]*$", text, re.MULTILINE | re.DOTALL)]


def defined_and_missing(code):
    """The names a block defines at module level, and those it uses without defining them."""
    table = symtable.symtable(code, "README.md", "exec")
    defined = {symbol.get_name() for symbol in table.get_symbols() if symbol.is_assigned() or symbol.is_imported()}
    used = set()

    def walk(scope, top):
        for symbol in scope.get_symbols():
            if symbol.is_referenced() and (top or symbol.is_global()):
                used.add(symbol.get_name())
        for child in scope.get_children():
            walk(child, False)

    walk(table, True)
    return defined, used - defined - set(dir(builtins))


def program_for(index, blocks):
    """The block, preceded by the earlier blocks that define the names it uses without defining."""
    parts = [blocks[index]]
    _, missing = defined_and_missing(blocks[index][1])
    for earlier in reversed(blocks[:index]):
        if not missing:
            break
        defines, needs = defined_and_missing(earlier[1])
        if defines & missing:
            parts.insert(0, earlier)
            missing = (missing - defines) | needs
    assert not missing, f"README.md:{blocks[index][0]} uses {sorted(missing)}, which no earlier block defines"
    return parts


BLOCKS = python_blocks()


def test_the_readme_has_python_examples():
    assert len(BLOCKS) >= 5


def shown_outputs(code):
    """For each print(...) statement of a block, in order: the text of the comment on the next line, or None."""
    lines = code.splitlines()
    return [following.strip()[2:] if following.strip().startswith("# ") else None
            for line, following in zip(lines, lines[1:] + [""]) if line.strip().startswith("print(")]


def same_output(printed, shown):
    """The same text, or the same Python literal as same_reply compares replies."""
    try:
        return same_reply(ast.literal_eval(printed), ast.literal_eval(shown))
    except (ValueError, SyntaxError):
        return printed == shown


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_a_readme_python_block_runs_as_shown(index):
    parts = program_for(index, BLOCKS)
    ns = new_namespace()
    source = "\n".join(code for _, code in parts).replace('"researcher"', json.dumps(ns))
    env = {**os.environ, "KV_RABBITMQ_URL": URL,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ATLAS_FIXTURES), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", RUNNER, f"README.md:{BLOCKS[index][0]}"], input=source,
                         capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60)
    assert run.returncode == 0, f"README.md:{BLOCKS[index][0]} failed:\n{run.stdout}\n{run.stderr}"
    printed = run.stdout.splitlines()
    shown = [output for _, code in parts for output in shown_outputs(code)]
    assert len(printed) >= len(shown), f"README.md:{BLOCKS[index][0]} printed {printed}, its comments show {shown}"
    for line, comment in zip(printed, shown):
        if comment is not None:
            comment = comment.replace("'researcher'", repr(ns))
            assert same_output(line, comment), f"README.md:{BLOCKS[index][0]} printed {line}, its comment shows {comment}"


def is_json(text):
    try:
        json.loads(text)
        return True
    except ValueError:
        return False  # a list of field names, such as {"namespace","count"}


def wire_table_rows():
    """(queue, request, reply) of each row of the README's table of requests and replies. Where a row shows
    two replies, the one its request gets when the rows run in order: the one marked "here", else the first."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| queue | request | reply |"):]
    table = table[:table.index("\n\n")]
    rows = []
    for line in table.splitlines()[2:]:
        queue, request, reply = [cell.strip() for cell in line.strip("|").split(" | ")][:3]
        spans = lambda cell: [json.loads(code) for code in re.findall(r"`(\{.*?\})`(?=[ ,;(]|$)", cell) if is_json(code)]
        shown = reply[reply.index(", here "):] if ", here " in reply else reply
        rows.append((re.match(r"`(kv_\w+)`", queue).group(1), spans(request)[0], spans(shown)[0]))
    return rows


def with_namespace(value, ns):
    """The README's example namespace "agent" replaced by the test's, everywhere in a reply."""
    return json.loads(json.dumps(value).replace('"agent"', json.dumps(ns)).replace("namespace 'agent'", f"namespace '{ns}'"))


def same_reply(actual, expected):
    """Equal, except that a fractional TTL (time remaining as it was read) only has to be within a minute of the example's."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return actual.keys() == expected.keys() and all(same_reply(actual[k], expected[k]) for k in expected)
    if isinstance(expected, list) and isinstance(actual, list):
        return len(actual) == len(expected) and all(map(same_reply, actual, expected))
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(actual - expected) < 60
    return actual == expected


def test_the_readme_wire_table_rows_are_what_the_worker_answers(kv, ns):
    """The rows run in order on a fresh namespace; each reply is the one the table shows for it."""
    rows = wire_table_rows()
    assert {queue for queue, _, _ in rows} == {operation.queue for operation in kvworker._protocol.OPERATIONS} | {"kv_purge"}
    for queue, request, expected in rows:
        try:
            reply = kv._call(queue, with_namespace(request, ns))
        except KeyValueStoreError as error:
            reply = {"error": {"code": error.code, "message": error.message}}
            if getattr(error, "current_version", None) is not None:
                reply["error"]["current_version"] = error.current_version
        assert same_reply(reply, with_namespace(expected, ns)), f"{queue} {request}: the worker answered {json.dumps(reply)}"
