#!/usr/bin/python3
"""AF_VSOCK from Python's standard library, in the vsock boot's Linux domUs.

The point of the module is that a program written for vsock, with no V4V
code of its own, works between Xen domains. This one uses nothing but
`socket` (and `fcntl` for the local CID), as any vsock program would.

  pyvsock.py serve PORT    stream, at PORT: for each connection, read to end
                           of file, answer "BYTES MD5 CID PORT" (what was
                           read, and the peer address accept() gave), close.
                           datagram, at PORT too (its own V4V ring): every
                           datagram goes back to its sender unchanged.
                           stream, at PORT+1: an echo that keeps each
                           connection open for HOLD_S seconds after the
                           client's end of file, as a server that is slow
                           to close does.
                           Runs until the domain is destroyed.
  pyvsock.py client CID PORT ECHO_PORT
                           the checks against `serve` at CID and PORT (and
                           PORT+1) and
                           socat's echo server at ECHO_PORT: one result line
                           each, `V4VT ok NAME` or `V4VT not ok NAME # WHY`.
"""

import errno
import fcntl
import hashlib
import os
import socket
import struct
import sys
import threading
import time

# Largest datagram the module carries (vsock-v4v/README.md).
MAX_DGRAM = 32 * 1024

# How long the holding echo keeps a connection after the client's end of
# file: well past the reconnect check's connect timeout.
HOLD_S = 30

# The local port the reconnect check binds, both times.
RECONNECT_PORT = 41234


def result(name, why=None):
    if why is None:
        print(f"V4VT ok vsock.python-{name}", flush=True)
    else:
        print(f"V4VT not ok vsock.python-{name} # {why}", flush=True)


def stream():
    return socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)


def recv_all(s):
    parts = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(parts)
        parts.append(b)


def serve_stream(port):
    ls = stream()
    ls.bind((socket.VMADDR_CID_ANY, port))
    ls.listen(8)
    while True:
        c, (cid, cport) = ls.accept()
        with c:
            h = hashlib.md5()
            n = 0
            try:
                while True:
                    b = c.recv(65536)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
                c.sendall(f"{n} {h.hexdigest()} {cid} {cport}\n".encode())
            except OSError as e:  # that client's trouble, not the server's
                print(f"pyvsock: connection from {cid}:{cport}: {e}", flush=True)


def serve_dgram(port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_DGRAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    while True:
        data, addr = s.recvfrom(MAX_DGRAM)
        try:
            s.sendto(data, addr)
        except OSError as e:
            print(f"pyvsock: datagram back to {addr}: {e}", flush=True)


def hold_one(c):
    with c:
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                c.sendall(b)
            time.sleep(HOLD_S)
        except OSError as e:
            print(f"pyvsock: holding echo: {e}", flush=True)


def serve_hold(port):
    ls = stream()
    ls.bind((socket.VMADDR_CID_ANY, port))
    ls.listen(8)
    while True:
        c, _ = ls.accept()
        threading.Thread(target=hold_one, args=(c,), daemon=True).start()


def serve(port):
    if os.fork() == 0:
        serve_dgram(port)
    elif os.fork() == 0:
        serve_hold(port + 1)
    else:
        serve_stream(port)


def local_cid():
    """The local CID as the vsock core reports it to any program."""
    with open("/dev/vsock", "rb") as f:
        buf = fcntl.ioctl(f, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, b"\0" * 4)
    return struct.unpack("I", buf)[0]


def check(name, fn, *args):
    try:
        why = fn(*args)
    except Exception as e:  # any failure is this check's, not the run's
        why = f"{type(e).__name__}: {e}"
    result(name, why)


def to_server(cid, port, me):
    """1 MiB to the Python server; its count, digest and our address."""
    data = os.urandom(1 << 20)
    t0 = time.monotonic()
    with stream() as s:
        s.settimeout(60)
        # The server domain may still be starting its interpreter.
        while True:
            try:
                s.connect((cid, port))
                break
            except ConnectionResetError:
                if time.monotonic() - t0 > 60:
                    raise
                time.sleep(0.5)
        # A connect()ing socket is bound by the vsock core to CID_ANY (any
        # transport; TCP would name its address), so only its port says
        # something here; the server says which CID it saw.
        name = s.getsockname()
        if name[0] not in (me, socket.VMADDR_CID_ANY):
            return f"getsockname() CID {name[0]}, the ioctl says {me}"
        if s.getpeername() != (cid, port):
            return f"getpeername() {s.getpeername()}"
        for i in range(0, len(data), 65536):
            s.sendall(data[i:i + 65536])
        s.shutdown(socket.SHUT_WR)
        reply = recv_all(s).decode().split()
    ms = (time.monotonic() - t0) * 1000
    print(f"pyvsock: 1 MiB to the Python server in {ms:.0f} ms: {reply}", flush=True)
    want = [str(len(data)), hashlib.md5(data).hexdigest(), str(me), str(name[1])]
    if reply != want:
        return f"server said {reply}, want {want}"
    return None


def to_echo(cid, port):
    """256 KiB through socat's echo server, 16 KiB out and back at a time."""
    data = os.urandom(256 << 10)
    got = bytearray()
    with stream() as s:
        s.settimeout(60)
        s.connect((cid, port))
        for i in range(0, len(data), 16384):
            piece = data[i:i + 16384]
            s.sendall(piece)
            want = len(got) + len(piece)
            while len(got) < want:
                b = s.recv(want - len(got))
                if not b:
                    return f"end of file after {len(got)} bytes"
                got += b
    if bytes(got) != data:
        return f"{len(got)} bytes back, not the same"
    return None


def refused(cid):
    with stream() as s:
        s.settimeout(20)
        try:
            s.connect((cid, 5999))
        except ConnectionResetError:
            return None
    return "connect to a port with no listener succeeded"


def echo_from(cid, port, text):
    """text through the echo at (cid, port) from RECONNECT_PORT; closes."""
    with stream() as s:
        s.settimeout(10)
        s.bind((socket.VMADDR_CID_ANY, RECONNECT_PORT))
        try:
            s.connect((cid, port))
        except OSError as e:
            return f"connect from port {RECONNECT_PORT}: {type(e).__name__}: {e}"
        s.sendall(text)
        got = b""
        while len(got) < len(text):
            b = s.recv(len(text) - len(got))
            if not b:
                break
            got += b
    if got != text:
        return f"sent {text!r}, back {got!r}"
    return None


def reconnect(cid, port):
    """Twice from the same local port to the holding echo at (cid, port).

    The server still holds the first connection (its peer, we, shut down
    both ways) when the second request comes from the same (CID, port):
    that request must reach the listener, not the old socket.
    """
    why = echo_from(cid, port, b"first")
    if why:
        return f"first: {why}"
    t0 = time.monotonic()
    why = echo_from(cid, port, b"second")
    if why:
        return f"second, old connection still held: {why}"
    ms = (time.monotonic() - t0) * 1000
    print(f"pyvsock: reconnect from port {RECONNECT_PORT} echoed in {ms:.0f} ms", flush=True)
    return None


def dgrams(cid, port):
    """Datagrams of 1 B to 32 KiB to the echo, each back from (cid, port)."""
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_DGRAM)
    with s:
        s.bind((socket.VMADDR_CID_ANY, socket.VMADDR_PORT_ANY))
        s.settimeout(10)
        for size in (1, 100, 1500, 4096, 16384, MAX_DGRAM):
            out = os.urandom(size)
            # The server's first datagram socket may not be bound yet.
            for attempt in range(20):
                try:
                    s.sendto(out, (cid, port))
                    break
                except ConnectionRefusedError:
                    time.sleep(0.5)
            data, addr = s.recvfrom(MAX_DGRAM + 1)
            if addr != (cid, port):
                return f"{size} B: came back from {addr}"
            if data != out:
                return f"{size} B: {len(data)} B came back, not the same"
        try:
            s.sendto(b"x" * (MAX_DGRAM + 1), (cid, port))
        except OSError as e:
            if e.errno != errno.EMSGSIZE:
                return f"an oversized datagram: {e}"
        else:
            return "an oversized datagram was sent"
    return None


def client(cid, port, echo_port):
    try:
        me = local_cid()
    except OSError as e:
        result("local-cid", f"ioctl: {e}")
        return
    print(f"pyvsock: local CID {me} (IOCTL_VM_SOCKETS_GET_LOCAL_CID)", flush=True)
    check("stream", to_server, cid, port, me)
    check("echo", to_echo, cid, echo_port)
    check("refused", refused, cid)
    check("same-port-reconnect", reconnect, cid, port + 1)
    check("dgram", dgrams, cid, port)


def main(argv):
    if len(argv) == 3 and argv[1] == "serve":
        serve(int(argv[2]))
    elif len(argv) == 5 and argv[1] == "client":
        client(int(argv[2]), int(argv[3]), int(argv[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
