"""libzbridge as a user gets it: `meson install --destdir` into a temporary
directory, the examples (examples/consumer.c, examples/producer.c) compiled
there with `cc $(pkg-config --cflags --libs zbridge)` against the installed
header, pkg-config file and shared library, then run against a live broker:
the producer's events reach the consumer."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT, SANITIZED


def _run(args, env=None, timeout=120):
    p = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    assert p.returncode == 0, "%s exited %d:\n%s\n%s" % (
        " ".join(args), p.returncode, p.stdout.decode(errors="replace"),
        p.stderr.decode(errors="replace"))
    return p


def _find(root, name):
    for dirpath, _, files in os.walk(root):
        if name in files:
            return os.path.join(dirpath, name)
    return None


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(env, consumer, producer): the examples built against an installed copy."""
    dest = str(tmp_path_factory.mktemp("destdir"))
    _run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest])
    pc = _find(dest, "zbridge.pc")
    header = _find(dest, "zbridge.h")
    lib = _find(dest, "libzbridge.so")
    assert pc and header and lib, "install put zbridge.pc %s, zbridge.h %s, libzbridge.so %s" % (
        pc, header, lib)
    assert os.path.islink(lib), "libzbridge.so is the soname link"
    env = dict(os.environ)
    env["PKG_CONFIG_PATH"] = os.path.dirname(pc)
    #  The .pc names the final prefix; the files are under the destdir
    env["PKG_CONFIG_SYSROOT_DIR"] = dest
    env["LD_LIBRARY_PATH"] = os.path.dirname(lib)
    flags = _run(["pkg-config", "--cflags", "--libs", "zbridge"], env=env).stdout.decode().split()
    assert any(f.startswith("-I" + dest) for f in flags), flags
    assert "-lzbridge" in flags, flags
    cc = os.environ.get("CC", "cc")
    sanitize = ["-fsanitize=" + SANITIZED] if SANITIZED else []
    out = str(tmp_path_factory.mktemp("examples"))
    built = []
    for name in ("consumer", "producer"):
        exe = os.path.join(out, name)
        _run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror"] + sanitize +
             [os.path.join(ROOT, "examples", name + ".c"), "-o", exe] + flags, env=env)
        built.append(exe)
    env["ZB_DESTDIR"] = dest
    return env, built[0], built[1]


def test_installed_files(installed):
    """The header and the library's exported symbols: zbridge_* only."""
    env, consumer, _ = installed
    lib = os.path.join(env["LD_LIBRARY_PATH"], "libzbridge.so")
    nm = shutil.which("nm")
    if nm:
        out = _run([nm, "-D", "--defined-only", lib]).stdout.decode().split("\n")
        #  "zbridge_x@@ZBRIDGE_0", and the version node "ZBRIDGE_0" itself
        names = [line.split()[-1].split("@")[0] for line in out if len(line.split()) == 3]
        names = [n for n in names if n != "ZBRIDGE_0"]
        assert names and all(n.startswith("zbridge_") for n in names), \
            [n for n in names if not n.startswith("zbridge_")][:20]
    #  The example is linked to the installed copy, not to the build tree's
    ldd = _run(["ldd", consumer], env=env).stdout.decode()
    assert env["LD_LIBRARY_PATH"] in ldd, ldd
    #  So are the installed programs, which are built on it
    for name in ("zb-producer", "zb-consumer", "zb-dispatch", "zb-warehouse"):
        exe = _find(env["ZB_DESTDIR"], name)
        assert exe, name
        ldd = _run(["ldd", exe], env=env).stdout.decode()
        assert "libzbridge.so.0" in ldd and env["LD_LIBRARY_PATH"] in ldd, ldd
        out = _run([exe, "--version"], env=env).stdout.decode()
        assert out.startswith(name + " "), out


def test_examples_exchange_events(installed, broker):
    env, consumer, producer = installed
    p = _run([producer, "25", broker.ingest], env=env, timeout=60)
    assert p.stdout.decode().strip() == "sent 25, failed 0"
    c = _run([consumer, "sales-events", "25", broker.publish, broker.control], env=env,
             timeout=60)
    lines = c.stdout.decode().strip().split("\n")
    assert len(lines) == 25
    sales = []
    for line in lines:
        seq, text = line.split(" ", 1)
        event = json.loads(text)
        assert event["detail-type"] == "sales-events" and event["source"] == "example"
        sales.append((int(seq), event["detail"]["sales"]))
    assert [s for _, s in sales] == list(range(1, 26))
    assert [q for q, _ in sales] == sorted(q for q, _ in sales)


def test_example_consumer_unreachable(installed, tmp_path):
    """A broker that is not there: the consumer waits (catch-up retries), then
    gives up after its receive timeout with exit 1; nothing crashes."""
    env, consumer, _ = installed
    from conftest import free_port
    pub, ctl = free_port(), free_port()
    p = subprocess.run([consumer, "sales-events", "1", "tcp://127.0.0.1:%d" % pub,
                        "tcp://127.0.0.1:%d" % ctl], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    assert p.returncode == 1
    assert p.stdout == b""
