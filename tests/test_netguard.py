"""The offline guard: any connection outside loopback raises, in this process and in children."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading

import pytest

from lessons_lib import netguard


def test_guard_is_installed_in_the_test_process():
    assert netguard.installed()


@pytest.mark.parametrize("addr", [("93.184.216.34", 80), ("10.0.0.1", 443), ("2606:4700::1111", 53)])
def test_outside_connections_raise(addr):
    fam = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        with pytest.raises(netguard.NetworkBlockedError, match="blocked"):
            s.connect(addr if fam == socket.AF_INET else addr + (0, 0))


def test_name_lookup_and_udp_raise():
    with pytest.raises(netguard.NetworkBlockedError):
        socket.getaddrinfo("pypi.org", 443)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        with pytest.raises(netguard.NetworkBlockedError):
            s.sendto(b"x", ("8.8.8.8", 53))


def test_urllib_download_fails_fast():
    import urllib.request

    with pytest.raises(Exception) as err:
        urllib.request.urlopen("https://download.pytorch.org/models/resnet18-f37072fd.pth", timeout=5)
    assert "blocked" in str(err.value)


def test_loopback_still_works():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    t = threading.Thread(target=lambda: srv.accept()[0].close())
    t.start()
    with socket.create_connection(("localhost", port), timeout=5):
        pass
    t.join(5)
    srv.close()


def test_child_processes_are_guarded_too():
    """Kernels started by papermill / nbval inherit PYTHONPATH with tests/_netguard."""
    code = ("import socket\n"
            "try:\n socket.create_connection(('1.1.1.1', 80), timeout=3)\n"
            "except Exception as e: print(type(e).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=60)
    assert out.stdout.strip() == "NetworkBlockedError", out.stderr
