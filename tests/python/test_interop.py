"""Interoperability with a third-party STOMP client: stomp.py against a real mqnode.

Each test starts its own node (ports from port 0, read back from the ready line) in a temporary
directory and stops it afterwards. The node binary is $MQNODE_BIN, else target/debug/mqnode of
this workspace ($CARGO_TARGET_DIR and MQ_TEST_PROFILE=release are honoured).

Run: python3 -m pytest tests/python -q
"""

import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import stomp

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 10.0  # seconds: an upper bound for things that should happen at once
QUIET = 0.3  # seconds: how long to watch for something that must not happen


def mqnode_bin():
    if os.environ.get("MQNODE_BIN"):
        return os.environ["MQNODE_BIN"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    if not target.is_absolute():
        target = ROOT / target
    profile = "release" if os.environ.get("MQ_TEST_PROFILE") == "release" else "debug"
    path = target / profile / "mqnode"
    if not path.is_file():
        pytest.fail(f"{path} not found: run cargo build --workspace --bins first")
    return str(path)


class Node:
    """A running mqnode; its log is printed when the test fails (pytest shows teardown output).

    Its one STOMP transport is `transport` (a port-0 URL), its data and log in `tmp`; `args`
    are more mqnode options."""

    def __init__(self, tmp, name, *args, transport="tcp://127.0.0.1:0"):
        self.log_path = tmp / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [mqnode_bin(), "--name", name, "--data", str(tmp / name),
             "--transport", transport, "--admin", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
        )
        lines = queue.Queue()

        def drain():
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        try:
            line = lines.get(timeout=TIMEOUT)
        except queue.Empty:
            line = None
        if not line:
            self.stop()
            pytest.fail(f"mqnode printed no ready line:\n{self.log_text()}")
        self.ready = json.loads(line)
        ready = self.ready
        assert ready["event"] == "ready" and ready["role"] in ("master", "standalone"), ready
        self.url = ready["transports"][0]
        host, port = self.url.split("://", 1)[1].rsplit(":", 1)
        self.host_port = (host, int(port))
        self.admin = ready["admin"]
        # A node always protects its admin API; it names the token file in its ready line.
        with open(ready["admin_token_file"]) as f:
            self.token = f.read().strip()

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def api(self, path):
        """GET `path` of the admin API (with the node's token, no proxy): the JSON answer."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"{self.admin}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with opener.open(req, timeout=TIMEOUT) as r:
            return json.load(r)

    def depth(self, queue_name):
        try:
            return self.api(f"/api/v1/queues/{queue_name}")["depth"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return 0
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def node(tmp_path):
    n = Node(tmp_path, "interop", "--heartbeat-ms", "100")
    yield n
    n.stop()
    print(n.log_text())


class Collector(stomp.ConnectionListener):
    """Remembers everything the server sent; tests wait on conditions over it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.connected = None
        self.messages = []
        self.receipts = set()
        self.errors = []
        self.heartbeats = 0
        self.disconnected = False

    def _add(self, fn):
        with self.cond:
            fn()
            self.cond.notify_all()

    def on_connected(self, frame):
        self._add(lambda: setattr(self, "connected", frame))

    def on_message(self, frame):
        self._add(lambda: self.messages.append(frame))

    def on_receipt(self, frame):
        self._add(lambda: self.receipts.add(frame.headers["receipt-id"]))

    def on_error(self, frame):
        self._add(lambda: self.errors.append(frame))

    def on_heartbeat(self):
        def bump():
            self.heartbeats += 1
        self._add(bump)

    def on_disconnected(self):
        self._add(lambda: setattr(self, "disconnected", True))

    def wait(self, what, pred, timeout=TIMEOUT):
        with self.cond:
            assert self.cond.wait_for(pred, timeout), f"timed out waiting for {what}"

    def wait_messages(self, n):
        self.wait(f"{n} messages", lambda: len(self.messages) >= n)
        return list(self.messages)

    def wait_receipt(self, rid):
        self.wait(f"receipt {rid}", lambda: rid in self.receipts)

    def assert_no_more_messages(self, n):
        with self.cond:
            self.cond.wait_for(lambda: len(self.messages) > n, QUIET)
            assert len(self.messages) == n, [m.body for m in self.messages]


def open_conn(node, version="1.2", heartbeats=(0, 0), auto_decode=True, headers=None):
    cls = {"1.0": stomp.Connection10, "1.1": stomp.Connection11, "1.2": stomp.Connection12}[version]
    kwargs = {"auto_decode": auto_decode}
    if version != "1.0":
        kwargs["heartbeats"] = heartbeats
    conn = cls([node.host_port], **kwargs)
    listener = Collector()
    conn.set_listener("collector", listener)
    conn.connect(wait=True, headers=headers or {})
    return conn, listener


def close(conn):
    if conn.is_connected():
        conn.disconnect(receipt="bye")


def test_connect_1_2_with_heart_beats(node):
    conn, l = open_conn(node, heartbeats=(500, 500))
    try:
        assert l.connected.headers["version"] == "1.2"
        sx, sy = (int(v) for v in l.connected.headers["heart-beat"].split(","))
        assert sx > 0 and sy > 0, l.connected.headers
        # The server's beats keep arriving and the connection stays up.
        l.wait("3 heart-beats", lambda: l.heartbeats >= 3, timeout=5)
        assert conn.is_connected() and not l.disconnected
        conn.subscribe("/queue/py-hb", id="s", ack="auto")
        conn.send("/queue/py-hb", "after beats", receipt="r1")
        l.wait_receipt("r1")
        assert l.wait_messages(1)[0].body == "after beats"
    finally:
        close(conn)


def test_client_individual_acks_and_receipts(node):
    conn, l = open_conn(node)
    conn.subscribe("/queue/py-ack", id="s1", ack="client-individual", receipt="sub")
    l.wait_receipt("sub")
    for i in range(3):
        conn.send("/queue/py-ack", f"m{i}", headers={"persistent": "true", "x-num": str(i)},
                  receipt=f"send-{i}")
    for i in range(3):
        l.wait_receipt(f"send-{i}")
    msgs = l.wait_messages(3)
    assert [m.body for m in msgs] == ["m0", "m1", "m2"]
    assert [m.headers["x-num"] for m in msgs] == ["0", "1", "2"]
    assert all(m.headers["subscription"] == "s1" and "ack" in m.headers for m in msgs)
    conn.ack(msgs[1].headers["ack"], receipt="ack-1")
    l.wait_receipt("ack-1")
    conn.disconnect(receipt="bye")

    # The two unacknowledged messages come back, marked redelivered.
    conn, l = open_conn(node)
    try:
        conn.subscribe("/queue/py-ack", id="s2", ack="client-individual")
        msgs = l.wait_messages(2)
        assert [m.body for m in msgs] == ["m0", "m2"]
        assert all(m.headers.get("redelivered") == "true" for m in msgs)
        for m in msgs:
            conn.ack(m.headers["ack"])
        deadline = time.monotonic() + TIMEOUT
        while node.depth("py-ack") != 0:
            assert time.monotonic() < deadline, "queue py-ack never emptied"
            time.sleep(0.02)
    finally:
        close(conn)


def test_transactions(node):
    conn, l = open_conn(node)
    try:
        conn.subscribe("/queue/py-tx", id="s", ack="auto", receipt="sub")
        l.wait_receipt("sub")
        tx = conn.begin()
        conn.send("/queue/py-tx", "one", transaction=tx)
        conn.send("/queue/py-tx", "two", transaction=tx, receipt="in-tx")
        l.wait_receipt("in-tx")
        l.assert_no_more_messages(0)
        conn.commit(tx, receipt="commit")
        l.wait_receipt("commit")
        assert [m.body for m in l.wait_messages(2)] == ["one", "two"]

        tx = conn.begin()
        conn.send("/queue/py-tx", "never", transaction=tx)
        conn.abort(tx, receipt="abort")
        l.wait_receipt("abort")
        l.assert_no_more_messages(2)
        assert node.depth("py-tx") == 0
    finally:
        close(conn)


def test_nack_goes_to_the_dead_letter_queue(node):
    conn, l = open_conn(node)
    try:
        conn.subscribe("/queue/py-nack", id="s", ack="client-individual")
        conn.send("/queue/py-nack", "poison", headers={"persistent": "true"}, receipt="r")
        l.wait_receipt("r")
        m = l.wait_messages(1)[0]
        conn.nack(m.headers["ack"], receipt="nack")
        l.wait_receipt("nack")
        l.assert_no_more_messages(1)
        assert node.depth("py-nack") == 0
        conn.subscribe("/queue/DLQ", id="dlq", ack="auto")
        dead = l.wait_messages(2)[1]
        assert dead.body == "poison"
        assert dead.headers["destination"] == "/queue/DLQ"
    finally:
        close(conn)


def test_binary_body_and_escaped_headers(node):
    conn, l = open_conn(node, auto_decode=False)
    try:
        conn.subscribe("/queue/py-bin", id="s", ack="auto")
        body = bytes(range(256)) + b"\x00tail\x00"
        conn.send("/queue/py-bin", body, headers={"tricky": "a:b\\c"}, receipt="r")
        l.wait_receipt("r")
        m = l.wait_messages(1)[0]
        assert m.body == body
        assert m.headers["tricky"] == "a:b\\c"
        assert m.headers["content-length"] == str(len(body))
    finally:
        close(conn)


def test_stomp_1_0(node):
    conn, l = open_conn(node, version="1.0")
    try:
        assert l.connected.headers.get("version", "1.0") == "1.0"
        conn.subscribe("/queue/py-10", id="s", ack="client")
        conn.send("/queue/py-10", "hello 1.0", receipt="r")
        l.wait_receipt("r")
        m = l.wait_messages(1)[0]
        assert m.body == "hello 1.0"
        conn.ack(m.headers["message-id"], receipt="ack")
        l.wait_receipt("ack")
        assert node.depth("py-10") == 0
        conn.unsubscribe(id="s", receipt="unsub")
        l.wait_receipt("unsub")
    finally:
        close(conn)


def test_stomp_1_1(node):
    conn, l = open_conn(node, version="1.1", heartbeats=(0, 500))
    try:
        assert l.connected.headers["version"] == "1.1"
        conn.subscribe("/queue/py-11", id="s", ack="client-individual")
        conn.send("/queue/py-11", "keep", receipt="r1")
        conn.send("/queue/py-11", "refuse", receipt="r2")
        l.wait_receipt("r2")
        keep, refuse = l.wait_messages(2)
        conn.ack(keep.headers["message-id"], "s", receipt="ack")
        conn.nack(refuse.headers["message-id"], "s", receipt="nack")
        l.wait_receipt("ack")
        l.wait_receipt("nack")
        assert node.depth("py-11") == 0
        assert node.depth("DLQ") == 1
        l.wait("a heart-beat", lambda: l.heartbeats >= 1, timeout=5)
    finally:
        close(conn)


def test_selector_wildcard_and_composite(node):
    conn, l = open_conn(node)
    try:
        conn.subscribe("/queue/py-sel", id="red", ack="auto",
                       headers={"selector": "color = 'red' AND JMSPriority > 4"}, receipt="s1")
        conn.subscribe("/topic/py-wild.>", id="wild", ack="auto", receipt="s2")
        l.wait_receipt("s1")
        l.wait_receipt("s2")
        for i, (color, prio) in enumerate([("red", 9), ("blue", 9), ("red", 1), ("red", 5)]):
            conn.send("/queue/py-sel", f"m{i}", headers={"color": color, "priority": str(prio)},
                      receipt=f"r{i}")
            l.wait_receipt(f"r{i}")
        conn.send("/topic/py-wild.a,/queue/py-comp", "both", receipt="comp")
        l.wait_receipt("comp")
        msgs = l.wait_messages(3)
        by_sub = {}
        for m in msgs:
            by_sub.setdefault(m.headers["subscription"], []).append(m.body)
        assert by_sub == {"red": ["m0", "m3"], "wild": ["both"]}, by_sub
        assert node.depth("py-sel") == 2
        assert node.depth("py-comp") == 1
        # A malformed selector is an ERROR naming the column.
        bad, bl = open_conn(node)
        bad.subscribe("/queue/py-sel", id="bad", headers={"selector": "color = "})
        bl.wait("an ERROR", lambda: bl.errors)
        assert "column 9" in bl.errors[0].headers["message"], bl.errors[0].headers
    finally:
        close(conn)


def test_request_reply_on_a_temporary_queue(node):
    service, sl = open_conn(node)
    client, cl = open_conn(node)
    try:
        service.subscribe("/queue/py-requests", id="s", ack="auto", receipt="s")
        sl.wait_receipt("s")
        client.subscribe("/temp-queue/replies", id="r", ack="auto", receipt="r")
        cl.wait_receipt("r")
        client.send("/queue/py-requests", "ping", headers={"reply-to": "/temp-queue/replies"})
        req = sl.wait_messages(1)[0]
        reply_to = req.headers["reply-to"]
        assert reply_to.startswith("/remote-temp-queue/"), reply_to
        service.send(reply_to, "pong", headers={"correlation-id": "c1"}, receipt="reply")
        sl.wait_receipt("reply")
        reply = cl.wait_messages(1)[0]
        assert reply.body == "pong"
        assert reply.headers["destination"] == "/temp-queue/replies"
        assert reply.headers["correlation-id"] == "c1"
    finally:
        close(service)
        close(client)


def test_durable_subscription_keeps_messages_while_away(node):
    sub = {"activemq.subscriptionName": "py-sub"}
    conn, l = open_conn(node, headers={"client-id": "py-app"})
    conn.subscribe("/topic/py-durable", id="d", ack="client-individual", headers=sub,
                   receipt="sub")
    l.wait_receipt("sub")
    conn.disconnect(receipt="bye")
    producer, pl = open_conn(node)
    try:
        for i in range(3):
            producer.send("/topic/py-durable", f"d{i}", headers={"persistent": "true"},
                          receipt=f"p{i}")
            pl.wait_receipt(f"p{i}")
        conn, l = open_conn(node, headers={"client-id": "py-app"})
        conn.subscribe("/topic/py-durable", id="d", ack="client-individual", headers=sub)
        msgs = l.wait_messages(3)
        assert [m.body for m in msgs] == ["d0", "d1", "d2"]
        assert all(m.headers["destination"] == "/topic/py-durable" for m in msgs)
        for m in msgs:
            conn.ack(m.headers["ack"])
        # UNSUBSCRIBE with the name removes it: nothing is kept any more.
        conn.unsubscribe("d", headers=sub, receipt="gone")
        l.wait_receipt("gone")
        conn.disconnect(receipt="bye")
        producer.send("/topic/py-durable", "lost", headers={"persistent": "true"}, receipt="p")
        pl.wait_receipt("p")
        conn, l = open_conn(node, headers={"client-id": "py-app"})
        conn.subscribe("/topic/py-durable", id="d", ack="auto", headers=sub, receipt="again")
        l.wait_receipt("again")
        l.assert_no_more_messages(0)
        close(conn)
    finally:
        close(producer)
