"""Every ```python block of README.md runs as shown, from the repository root, against the worker.

A block runs on its own, in a fresh interpreter (this one's: scripts/python-tests.sh's
virtual environment with kvworker installed) with $KV_RABBITMQ_URL naming the test
worker and the ATLAS stand-in importable. A block that uses names it does not define
(a fragment continuing an earlier example, such as the events consumer after the RPC
tutorial) runs after the earlier blocks that define them. A consumer that runs until
stopped (``channel.start_consuming()``) is stopped after two seconds.
"""
import builtins
import os
import re
import subprocess
import sys
import symtable

import pytest

from conftest import ATLAS_FIXTURES, REPO_ROOT, URL

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


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[f"README.md:{line}" for line, _ in BLOCKS])
def test_a_readme_python_block_runs_as_shown(index):
    parts = program_for(index, BLOCKS)
    source = "\n".join(code for _, code in parts)
    env = {**os.environ, "KV_RABBITMQ_URL": URL,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ATLAS_FIXTURES), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-c", RUNNER, f"README.md:{BLOCKS[index][0]}"], input=source,
                         capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60)
    assert run.returncode == 0, f"README.md:{BLOCKS[index][0]} failed:\n{run.stdout}\n{run.stderr}"
    if "except InvalidValueTypeError" in BLOCKS[index][1]:
        assert "InvalidValueTypeError value of 'plan'" in run.stdout  # the except branch really runs
