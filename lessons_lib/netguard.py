"""Refuse network connections outside loopback (used by the tests and headless notebook runs).

The course must run offline: nothing is downloaded at run time. ``install()`` patches
``socket.socket.connect``/``connect_ex``/``sendto`` and ``socket.getaddrinfo`` so that any attempt to
reach an address that is not loopback (127.0.0.0/8, ::1, ``localhost``) raises
:class:`NetworkBlockedError`. Unix sockets are untouched (Jupyter kernels use loopback TCP or IPC).

``tests/_netguard/sitecustomize.py`` calls ``install()`` in every Python process the tests start
(kernels included) by being first on ``PYTHONPATH``.
"""
from __future__ import annotations

import ipaddress
import socket

_installed = False
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class NetworkBlockedError(ConnectionRefusedError):
    """Raised when code tries to reach a non-loopback address while the guard is installed."""


def is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost: resolving it is already network traffic


def _check(address: object, what: str) -> None:
    if isinstance(address, tuple) and address and not is_loopback(address[0]):
        raise NetworkBlockedError(
            f"network access blocked by lessons_lib.netguard: {what} to {address[0]!r} "
            "(the workbook runs offline; only loopback is allowed)")


def install() -> None:
    """Install the guard in this process (idempotent)."""
    global _installed
    if _installed:
        return
    orig_connect, orig_connect_ex, orig_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto
    orig_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address, "connect")
        return orig_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            _check(address, "connect")
        return orig_connect_ex(self, address)

    def sendto(self, data, *args):
        if self.family in (socket.AF_INET, socket.AF_INET6) and args:
            _check(args[-1], "sendto")
        return orig_sendto(self, data, *args)

    def getaddrinfo(host, *args, **kwargs):
        h = host.decode() if isinstance(host, bytes) else host
        if h is not None and not is_loopback(h):
            raise NetworkBlockedError(
                f"network access blocked by lessons_lib.netguard: name lookup of {h!r} "
                "(the workbook runs offline; only loopback is allowed)")
        return orig_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
    socket.getaddrinfo = getaddrinfo
    _installed = True


def installed() -> bool:
    return _installed
