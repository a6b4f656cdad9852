#!/usr/bin/python3
"""limits_client.py - the hostile client of tests/security/anon_http.sh and anon_wire.sh.

Raw sockets only (no third-party module): a minimal msgpack encoder/decoder for protocol frames,
HTTP requests written by hand, and /proc readings of the server. Each subcommand prints one
line of `key=value` facts for the shell test to check:

  vmhwm PID                                  peak and current RSS of PID in KiB
  http-post PORT PATH BYTES [chunked] [TOKEN_ID TOKEN_SECRET]
                                             streams a JSON body of BYTES bytes; status, seconds
  http-dribble PORT PATH                     sends a body one byte every 0.3 s; status, seconds
  idle PORT COUNT SECONDS                    opens COUNT sockets; how many the server closed at
                                             once, and after SECONDS
  crowd PORT http|wire COUNT SIZE PID        COUNT unfinished requests of SIZE bytes each; PID's
                                             RSS while they are held, and the answers
  dribble-hello PORT                         a HELLO one byte every 0.3 s; when it was closed
  nils PORT MB                               after HELLO, a frame of MB MiB of nils; the reply
  deep PORT APP FUNCTION DEPTH               after HELLO, CALL with arguments nested DEPTH deep
  authed-idle PORT WAIT NAP                  after HELLO, silent (NAP 0) or waiting for a call
                                             of limits-app.nap(NAP): closed or answered
  noread PORT CALL_ID COUNT SECONDS PID      after HELLO, COUNT pipelined GETs of CALL_ID, not
                                             read for SECONDS; PID's RSS then; then reads them all
The token comes from $HOME/.skiff.toml.
"""
import os
import re
import socket
import struct
import sys
import time

OP_OK, OP_ERROR, OP_HELLO, OP_LOOKUP, OP_CALL, OP_GET = 1, 2, 10, 11, 12, 13


def pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        b = v.encode()
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(pack(x) for x in v)
    if isinstance(v, dict):
        return b"\xdf" + struct.pack(">I", len(v)) + b"".join(
            pack(k) + pack(x) for k, x in v.items())
    raise TypeError(type(v))


def count(b, i, c, w16):
    """(element count, next index) of the fix/16/32 map or array header byte c."""
    if c == w16:
        return struct.unpack(">H", b[i:i + 2])[0], i + 2
    if c == w16 + 1:
        return struct.unpack(">I", b[i:i + 4])[0], i + 4
    return c & 0x0f, i


def unpack(b, i=0):
    """(value, next index) of the msgpack object at b[i:] (the subset the server sends)."""
    c = b[i]
    i += 1
    if c <= 0x7f:
        return c, i
    if c >= 0xe0:
        return c - 256, i
    if 0x80 <= c <= 0x8f or c in (0xde, 0xdf):
        n, i = count(b, i, c, 0xde)
        d = {}
        for _ in range(n):
            k, i = unpack(b, i)
            d[k], i = unpack(b, i)
        return d, i
    if 0x90 <= c <= 0x9f or c in (0xdc, 0xdd):
        n, i = count(b, i, c, 0xdc)
        out = []
        for _ in range(n):
            x, i = unpack(b, i)
            out.append(x)
        return out, i
    if 0xa0 <= c <= 0xbf or c in (0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6):
        if 0xa0 <= c <= 0xbf:
            n = c & 0x1f
        else:
            w = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[c]
            n, i = int.from_bytes(b[i:i + w], "big"), i + w
        raw = bytes(b[i:i + n])
        return (raw if c in (0xc4, 0xc5, 0xc6) else raw.decode()), i + n
    if c == 0xc0:
        return None, i
    if c in (0xc2, 0xc3):
        return c == 0xc3, i
    sizes = {0xcc: (1, ">B"), 0xcd: (2, ">H"), 0xce: (4, ">I"), 0xcf: (8, ">Q"),
             0xd0: (1, ">b"), 0xd1: (2, ">h"), 0xd2: (4, ">i"), 0xd3: (8, ">q"),
             0xca: (4, ">f"), 0xcb: (8, ">d")}
    w, f = sizes[c]
    return struct.unpack(f, b[i:i + w])[0], i + w


def frame(op, rid, **fields):
    body = pack(dict(op=op, rid=rid, **fields))
    return struct.pack(">I", len(body)) + body


def token():
    text = open(os.path.join(os.environ["HOME"], ".skiff.toml")).read()
    tid = re.search(r'token_id\s*=\s*"([^"]*)"', text).group(1)
    sec = re.search(r'token_secret\s*=\s*"([^"]*)"', text).group(1)
    return tid, sec


def read_frame(s, timeout=10.0):
    s.settimeout(timeout)
    head = recv_exact(s, 4)
    if head is None:
        return None
    body = recv_exact(s, struct.unpack(">I", head)[0])
    return None if body is None else unpack(body)[0]


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = s.recv(min(n - len(buf), 1 << 20))
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def hello(port):
    s = socket.create_connection(("127.0.0.1", port))
    tid, sec = token()
    s.sendall(frame(OP_HELLO, 1, token_id=tid, token_secret=sec, client="limits_client"))
    m = read_frame(s)
    assert m and m["op"] == OP_OK, m
    return s


def closed(s, wait):
    """True if the server closed s within wait seconds (EOF or reset)."""
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def vmhwm(pid):
    st = open(f"/proc/{pid}/status").read()
    hwm = int(re.search(r"VmHWM:\s+(\d+)", st).group(1))
    rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
    print(f"hwm_kb={hwm} rss_kb={rss}")


def http_post(port, path, size, chunked=False, tid=None, sec=None):
    s = socket.create_connection(("127.0.0.1", port))
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if tid:
        head += f"X-Skiff-Token-Id: {tid}\r\nX-Skiff-Token-Secret: {sec}\r\n"
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {size}\r\n\r\n"
    start = time.time()
    s.sendall(head.encode())
    # {"a": "xxxx..."}: exactly size bytes
    body_parts = [b'{"a": "', None, b'"}']
    pad = size - len(body_parts[0]) - len(body_parts[2])
    sent = 0
    chunk = b"x" * (256 << 10)
    try:
        s.sendall(chunked and b"%x\r\n%s\r\n" % (len(body_parts[0]), body_parts[0]) or body_parts[0])
        while sent < pad:
            part = chunk[:min(len(chunk), pad - sent)]
            s.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            sent += len(part)
        tail = body_parts[2]
        s.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail) if chunked else tail)
    except (BrokenPipeError, ConnectionResetError):
        pass
    s.settimeout(20)
    resp = b""
    try:
        while b"\r\n\r\n" not in resp or len(resp) < resp.index(b"\r\n\r\n") + 4 + clen(resp):
            c = s.recv(65536)
            if not c:
                break
            resp += c
    except (ConnectionResetError, socket.timeout):
        pass
    elapsed = time.time() - start
    status = resp.split(b" ", 2)[1].decode() if resp.startswith(b"HTTP/1.1 ") else "none"
    body = resp.split(b"\r\n\r\n", 1)[1].decode(errors="replace") if b"\r\n\r\n" in resp else ""
    print(f"status={status} seconds={elapsed:.2f} sent_mb={sent >> 20} body={body[:300]}")


def clen(resp):
    m = re.search(rb"Content-Length: (\d+)", resp)
    return int(m.group(1)) if m else 0


def http_dribble(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    body = b'{"a": "slow"}'
    start = time.time()
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    resp = b""
    s.settimeout(0.3)
    for b in body * 100:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        try:
            c = s.recv(65536)
            if not c:
                break
            resp += c
            if b"\r\n\r\n" in resp:
                break
        except socket.timeout:
            pass
        except OSError:
            break
        if time.time() - start > 30:
            break
    status = resp.split(b" ", 2)[1].decode() if resp.startswith(b"HTTP/1.1 ") else "none"
    print(f"status={status} seconds={time.time() - start:.2f}")


def idle(port, count, seconds):
    socks = []
    refused = 0
    for _ in range(count):
        try:
            socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            refused += 1
    time.sleep(0.5)
    early = sum(1 for s in socks if closed(s, 0.001))
    time.sleep(max(0.0, seconds - 0.5))
    late = sum(1 for s in socks if closed(s, 0.001))
    print(f"opened={len(socks)} refused={refused} closed_early={early} closed_late={late}")


def crowd(port, kind, count, size, pid):
    """COUNT connections that each start a request and never finish it: an HTTP POST with SIZE
    of its body sent, or SIZE bytes of a HELLO frame; then PID's RSS, and how they were answered."""
    socks = []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            continue
        s.setblocking(False)
        if kind == "http":
            data = (f"POST /web/limits-post HTTP/1.1\r\nHost: x\r\n"
                    f"Content-Length: {size + 1}\r\n\r\n").encode() + b"x" * size
        else:
            data = struct.pack(">I", 16000) + b"\x83" + b"x" * (size - 5)
        socks.append([s, data])
    deadline = time.time() + 20
    while time.time() < deadline and any(d for _, d in socks):
        for e in socks:
            if e[1]:
                try:
                    e[1] = e[1][e[0].send(e[1]):]
                except BlockingIOError:
                    pass
                except OSError:
                    e[1] = b""
        time.sleep(0.01)
    time.sleep(1)
    st = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
    answers = {}
    for s, _ in socks:
        s.setblocking(True)
        s.settimeout(0.002)
        try:
            head = s.recv(64)
        except (socket.timeout, BlockingIOError):
            head = b"open"
        except OSError:
            head = b"reset"
        key = head.split(b" ")[1].decode() if head.startswith(b"HTTP/1.1 ") else \
            ("closed" if head == b"" else head.decode(errors="replace")[:8])
        answers[key] = answers.get(key, 0) + 1
        s.close()
    print(f"rss_kb={rss} answers={','.join(f'{k}:{v}' for k, v in sorted(answers.items()))}")


def dribble_hello(port):
    s = socket.create_connection(("127.0.0.1", port))
    tid, sec = token()
    data = frame(OP_HELLO, 1, token_id=tid, token_secret=sec)
    start = time.time()
    for b in data:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        if closed(s, 0.3):
            break
    print(f"closed_after={time.time() - start:.2f} total_bytes={len(data)}")


def nils(port, mb):
    s = hello(port)
    n = mb << 20
    # {"op": CALL, "rid": 2, "x": [nil * n]}: a map of 3, then an array32 of n nils
    body = b"\x83" + pack("op") + pack(OP_CALL) + pack("rid") + pack(2) + pack("x") + \
        b"\xdd" + struct.pack(">I", n)
    start = time.time()
    s.sendall(struct.pack(">I", len(body) + n) + body)
    chunk = b"\xc0" * (1 << 20)
    try:
        for _ in range(mb):
            s.sendall(chunk)
    except OSError:
        pass
    m = read_frame(s, 30)
    print(f"seconds={time.time() - start:.2f} reply_op={m and m.get('op')} "
          f"type={m and m.get('type')} message={m and m.get('message')} "
          f"closed={closed(s, 5)}")


def deep(port, app, function, depth):
    s = hello(port)
    s.sendall(frame(OP_LOOKUP, 2, app=app, function=function))
    m = read_frame(s)
    assert m["op"] == OP_OK, m
    args = b"\x92" + b"\x91" * depth + b"\x90" + b"\x80"  # [[[...[]...]], {}]
    s.sendall(frame(OP_CALL, 3, function_id=m["function_id"], args=args, spawn=False, gen=False))
    m = read_frame(s, 60)
    print(f"reply_op={m and m.get('op')} type={m and m.get('type')} "
          f"message={m and m.get('message')}")


def authed_idle(port, wait, nap):
    """HELLO, then (nap > 0) a call of limits-app.nap(nap); when the server closed, or the reply."""
    s = hello(port)
    start = time.time()
    if nap > 0:
        s.sendall(frame(OP_LOOKUP, 2, app="limits-app", function="nap"))
        m = read_frame(s)
        args = b"\x92\x91\xcb" + struct.pack(">d", nap) + b"\x80"  # [[nap], {}]
        s.sendall(frame(OP_CALL, 3, function_id=m["function_id"], args=args, spawn=False,
                        gen=False))
        m = read_frame(s, wait)
        print(f"reply_op={m and m.get('op')} seconds={time.time() - start:.2f} "
              f"closed={closed(s, 0.2)}")
        return
    print(f"closed={closed(s, wait)} seconds={time.time() - start:.2f}")


def noread(port, call_id, count, seconds, pid):
    s = hello(port)
    reqs = b"".join(frame(OP_GET, 10 + i, call_id=call_id, timeout_ms=10000) for i in range(count))
    s.setblocking(False)
    off = 0
    deadline = time.time() + seconds
    while time.time() < deadline:  # send what the server takes, never read
        try:
            off += s.send(reqs[off:])
        except BlockingIOError:
            time.sleep(0.05)
        if off == len(reqs):
            time.sleep(0.05)
    st = open(f"/proc/{pid}/status").read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", st).group(1))
    s.setblocking(True)
    s.sendall(reqs[off:])
    got = 0
    size = 0
    while got < count:
        m = read_frame(s, 30)
        if m is None:
            break
        if m.get("op") == OP_OK:
            got += 1
            size += len(m.get("value", b""))
    print(f"rss_kb={rss} replies={got} mb={size >> 20}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "vmhwm":
        vmhwm(int(args[0]))
    elif cmd == "http-post":
        chunked = len(args) > 3 and args[3] == "chunked"
        rest = args[4:] if chunked else args[3:]
        http_post(int(args[0]), args[1], int(args[2]), chunked, *(rest or [None, None]))
    elif cmd == "http-dribble":
        http_dribble(int(args[0]), args[1])
    elif cmd == "idle":
        idle(int(args[0]), int(args[1]), float(args[2]))
    elif cmd == "crowd":
        crowd(int(args[0]), args[1], int(args[2]), int(args[3]), int(args[4]))
    elif cmd == "dribble-hello":
        dribble_hello(int(args[0]))
    elif cmd == "nils":
        nils(int(args[0]), int(args[1]))
    elif cmd == "deep":
        deep(int(args[0]), args[1], args[2], int(args[3]))
    elif cmd == "authed-idle":
        authed_idle(int(args[0]), float(args[1]), float(args[2]))
    elif cmd == "noread":
        noread(int(args[0]), args[1], int(args[2]), float(args[3]), int(args[4]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
