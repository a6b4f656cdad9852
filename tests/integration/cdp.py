#!/usr/bin/env python3
"""cdp.py - drives headless Chromium through the DevTools protocol (standard library only: the
WebSocket handshake and framing by hand) for tests/integration/dashboard_browser.sh.

    cdp.py PORT SCRIPT_FILE

PORT is Chromium's --remote-debugging-port. SCRIPT_FILE holds one command per line:

    goto URL                   navigate and wait for the load
    wait TEXT [SECONDS]        until the page's text contains TEXT (default 20 s)
    absent TEXT                the page's text does not contain TEXT
    eval JS                    run JS in the page (its value is printed)
    click CSS                  click the first element matching CSS (confirm() says yes)
    screenshot PATH            a PNG of the page
    viewport W H               emulate a window of W x H CSS pixels (a phone: 390 844)
    status                     print the last navigation's HTTP status

Exit status 0 when every command succeeded; 1 with the failing command and the page's text.
"""
import base64
import json
import os
import socket
import struct
import sys
import time
import urllib.request


class WebSocket:
    def __init__(self, url):
        assert url.startswith("ws://")
        hostport, path = url[5:].split("/", 1)
        host, port = hostport.split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("websocket handshake: connection closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError("websocket handshake refused: " + head.decode(errors="replace"))
        self.buf = head.split(b"\r\n\r\n", 1)[1]

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise RuntimeError("websocket closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send(self, text):
        data = text.encode()
        head = bytes([0x81])
        n = len(data)
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            if b0 & 0x0F == 8:
                raise RuntimeError("websocket closed by the browser")
            if b0 & 0x0F in (9, 10):  # ping, pong: not expected from Chromium; skip
                continue
            message += payload
            if b0 & 0x80:
                return message.decode()


class Page:
    def __init__(self, port):
        deadline = time.time() + 30
        while True:
            try:
                targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("no page target in Chromium")
            time.sleep(0.2)
        self.ws = WebSocket(pages[0]["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events = []  # not yet waited for
        self.log = []  # everything since the last goto
        self.status = None
        self.call("Page.enable")
        self.call("Network.enable")

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def _event(self, msg):
        self.events.append(msg)
        self.log.append(msg)

    def wait_event(self, name, seconds=30):
        deadline = time.time() + seconds
        while time.time() < deadline:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    del self.events[: i + 1]
                    return e
            self._event(json.loads(self.ws.recv()))
        raise RuntimeError(f"no {name} within {seconds} s")

    def evaluate(self, js):
        r = self.call("Runtime.evaluate", expression=js, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError("script failed: " + json.dumps(r["exceptionDetails"])[:500])
        return r.get("result", {}).get("value")

    def text(self):
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def goto(self, url):
        self.events.clear()
        self.log.clear()
        r = self.call("Page.navigate", url=url)
        if not r.get("loaderId"):  # a same-document (hash) navigation: no load follows
            return
        self.wait_event("Page.loadEventFired")
        self.status = None
        for e in self.log:  # the main document's last response (after redirects)
            if e.get("method") == "Network.responseReceived" and e["params"].get("type") == "Document":
                self.status = e["params"]["response"]["status"]


def main():
    port, script = sys.argv[1], sys.argv[2]
    page = Page(port)
    for line in open(script):
        line = line.rstrip("\n")
        if not line.strip() or line.startswith("#"):
            continue
        cmd, _, arg = line.partition(" ")
        try:
            if cmd == "goto":
                page.goto(arg)
            elif cmd == "status":
                print(page.status)
            elif cmd == "wait":
                parts = arg.rsplit(" ", 1)
                secs = 20.0
                if len(parts) == 2 and parts[1].replace(".", "").isdigit():
                    arg, secs = parts[0], float(parts[1])
                deadline = time.time() + secs
                while arg not in page.text():
                    if time.time() > deadline:
                        raise RuntimeError(f"'{arg}' did not appear within {secs} s")
                    time.sleep(0.2)
            elif cmd == "absent":
                if arg in page.text():
                    raise RuntimeError(f"'{arg}' is on the page")
            elif cmd == "eval":
                print(json.dumps(page.evaluate(arg)))
            elif cmd == "click":
                ok = page.evaluate(
                    "window.confirm = () => true; (() => { const e = document.querySelector("
                    + json.dumps(arg) + "); if (!e) return false; e.click(); return true; })()")
                if not ok:
                    raise RuntimeError(f"nothing matches {arg}")
            elif cmd == "viewport":
                w, h = (int(v) for v in arg.split())
                page.call("Emulation.setDeviceMetricsOverride", width=w, height=h,
                          deviceScaleFactor=1, mobile=w < 600)
            elif cmd == "screenshot":
                png = page.call("Page.captureScreenshot", format="png")["data"]
                with open(arg, "wb") as f:
                    f.write(base64.b64decode(png))
            else:
                raise RuntimeError(f"unknown command {cmd}")
        except Exception as e:  # noqa: BLE001 - report any failure with the page's state
            print(f"cdp.py: {line}: {e}", file=sys.stderr)
            try:
                print("--- page text ---\n" + page.text()[:3000], file=sys.stderr)
            except Exception:  # noqa: BLE001
                pass
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
