"""meson install into a temporary directory: programs, man pages, the example
configuration and the systemd units are where they belong, the installed
broker runs, and the units pass systemd-analyze verify (when available)."""

import os
import shutil
import subprocess

import pytest

from conftest import BUILD, PROGRAMS

PREFIX = "/usr/local"


@pytest.fixture(scope="module")
def destdir(tmp_path_factory):
    meson = shutil.which("meson")
    if not meson:
        pytest.fail("meson is not installed")
    dest = str(tmp_path_factory.mktemp("destdir"))
    info = subprocess.run([meson, "introspect", "--buildoptions", BUILD], capture_output=True,
                          text=True, timeout=60)
    assert info.returncode == 0, info.stderr
    out = subprocess.run([meson, "install", "-C", BUILD, "--destdir", dest, "--no-rebuild",
                          "--quiet"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return dest


def installed(dest, *parts):
    return os.path.join(dest, PREFIX.lstrip("/"), *parts)


def test_files_are_installed(destdir):
    for prog in PROGRAMS:
        path = installed(destdir, "bin", prog)
        assert os.access(path, os.X_OK), path
        man = installed(destdir, "share", "man", "man1", prog + ".1")
        assert os.path.isfile(man), man
        text = open(man).read()
        assert text.startswith(".TH "), man
        for section in (".SH NAME", ".SH SYNOPSIS", ".SH EXIT STATUS", ".SH EXAMPLES"):
            assert section in text, (man, section)
        assert "@VERSION@" not in text
    cfg = installed(destdir, "etc", "zbridge", "zbridge.cfg")
    assert os.path.isfile(cfg), cfg
    assert os.path.isfile(installed(destdir, "etc", "zbridge", "consumer", "example.conf"))
    for unit in ("zb-broker.service", "zb-consumer@.service"):
        path = installed(destdir, "lib", "systemd", "system", unit)
        text = open(path).read()
        assert "@BINDIR@" not in text and "@SYSCONFDIR@" not in text, path
        assert "ExecStart=%s/bin/" % PREFIX in text
        assert "Restart=on-failure" in text and "DynamicUser=yes" in text
    broker = open(installed(destdir, "lib", "systemd", "system", "zb-broker.service")).read()
    assert "StateDirectory=zbridge" in broker and "--data-dir /var/lib/zbridge" in broker
    assert "--config %s/etc/zbridge/zbridge.cfg" % PREFIX in broker


def _libdir(dest):
    """Where the destdir copy of libzbridge is (the programs' rpath names the real
    prefix, which a destdir install does not fill)."""
    for root, _, files in os.walk(dest):
        if "libzbridge.so.0" in files:
            return root
    raise AssertionError("no libzbridge.so.0 under %s" % dest)


def test_installed_programs_run(destdir):
    env = dict(os.environ, LD_LIBRARY_PATH=_libdir(destdir))
    for prog in PROGRAMS:
        out = subprocess.run([installed(destdir, "bin", prog), "--version"],
                             capture_output=True, text=True, timeout=30, env=env)
        assert out.returncode == 0, (prog, out.stderr)
        assert out.stdout.startswith(prog + " "), out.stdout


def test_installed_config_is_valid(destdir, zb):
    """The example configuration starts a broker (with free ports and a temp journal)."""
    from conftest import free_port
    cfg = installed(destdir, "etc", "zbridge", "zbridge.cfg")
    b = zb.broker("--config", cfg, "--metrics", "127.0.0.1:%d" % free_port())
    assert b.ping()["status"] == "ok"


def test_systemd_units_verify(destdir, tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze is not installed: units not verified")
    # The units name /usr/local/bin/...: point them at the installed copies, and
    # give the template an instance
    units = []
    for unit, name in (("zb-broker.service", "zb-broker.service"),
                       ("zb-consumer@.service", "zb-consumer@audit.service")):
        text = open(installed(destdir, "lib", "systemd", "system", unit)).read()
        text = text.replace(PREFIX + "/bin/", installed(destdir, "bin") + "/")
        path = tmp_path / name
        path.write_text(text)
        units.append(str(path))
    out = subprocess.run([analyze, "verify", "--man=no"] + units, capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0 and "sysinit.target" in out.stderr + out.stdout:
        pytest.skip("systemd-analyze cannot verify here (no systemd units): %s" % out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
