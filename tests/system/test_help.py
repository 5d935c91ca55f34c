"""Every program answers --help (with examples and its exit status) and
--version, exit 0; an unknown option is a usage error, exit 2."""

import re

import pytest

from conftest import PROGRAMS, ROOT


def project_version():
    text = open(ROOT + "/meson.build").read()
    return re.search(r"version\s*:\s*'([^']+)'", text).group(1)


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_help_and_version(zb, prog):
    p = zb.run(prog, "--help", timeout=20)
    assert p.returncode == 0, p.stderr()
    text = p.stdout()
    assert text.startswith("Usage: " + prog), text[:200]
    assert "Examples:" in text, prog
    assert re.search(r"Exit status:?\s", text), prog
    # the examples section shows the program at work
    examples = text[text.index("Examples:"):]
    assert examples.count(prog) >= 2, examples
    p = zb.run(prog, "-h", timeout=20)
    assert p.returncode == 0 and p.stdout() == text

    p = zb.run(prog, "--version", timeout=20)
    assert p.returncode == 0, p.stderr()
    assert p.stdout() == "%s %s\n" % (prog, project_version())
    assert zb.run(prog, "-V", timeout=20).stdout() == p.stdout()


@pytest.mark.parametrize("prog", sorted(PROGRAMS))
def test_unknown_option_is_a_usage_error(zb, prog):
    p = zb.run(prog, "--no-such-option", timeout=20)
    assert p.returncode == 2, (prog, p.returncode, p.stderr())
    assert p.stderr().startswith(prog + ": "), p.stderr()
    assert "--help" in p.stderr()
