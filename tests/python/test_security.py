"""stomp.py against a secured mqnode: a login over an ssl:// transport.

The test makes its own CA and node certificate with the `openssl` command, starts a node with
the security file security.toml next to it (its one user has a fixed argon2id hash: any
argon2id PHC string works) and an ssl:// transport, and drives it with stomp.py's TLS support (a Python SSL context
trusting the CA, the host name checked against the certificate).

Run: python3 -m pytest tests/python -q
"""

import shutil
import ssl
import socket
import subprocess
import time
from pathlib import Path

import pytest
import stomp

from test_interop import TIMEOUT, Collector, Node

# One user, py (password py-secret), who may use the queues py.>.
SECURITY_FILE = Path(__file__).resolve().parent / "security.toml"


def openssl(*args, cwd):
    if shutil.which("openssl") is None:
        pytest.fail("the TLS interop test makes its certificates with `openssl`: install it "
                    "(apt-get install openssl)")
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True,
                   timeout=TIMEOUT)


def make_pki(d):
    """ca.crt, and node.crt/node.key signed by it for 127.0.0.1 and localhost."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=mq python test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "node.key", "-out", "node.csr",
            "-subj", "/CN=node", cwd=d)
    (d / "node.ext").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "node.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "node.crt", "-days", "2", "-extfile", "node.ext", cwd=d)
    return d / "ca.crt", d / "node.crt", d / "node.key"


class SecureNode(Node):
    """An mqnode with the security file and an ssl:// transport."""

    def __init__(self, tmp):
        ca, cert, key = make_pki(tmp)
        self.ca = ca
        super().__init__(tmp, "secure", "--security", str(SECURITY_FILE), "--tls-cert",
                         str(cert), "--tls-key", str(key), "--tls-ca", str(ca),
                         transport="ssl://127.0.0.1:0")
        assert self.url.startswith("ssl://"), self.ready

    def connections(self):
        return self.api("/api/v1/connections")["connections"]

    def wait_no_connections(self):
        """Waits until the node has closed every STOMP connection (stomp.py does not notice
        when a server ends a TLS session, so the node is asked)."""
        deadline = time.monotonic() + TIMEOUT
        while self.connections():
            assert time.monotonic() < deadline, f"still open: {self.connections()}"
            time.sleep(0.02)


@pytest.fixture
def secure_node(tmp_path):
    n = SecureNode(tmp_path)
    yield n
    n.stop()
    print(n.log_text())


def tls_conn(node):
    conn = stomp.Connection12([node.host_port], heartbeats=(0, 0))
    conn.set_ssl(for_hosts=[node.host_port], ca_certs=str(node.ca))
    listener = Collector()
    conn.set_listener("collector", listener)
    return conn, listener


def test_login_over_tls_round_trip(secure_node):
    # The CA verifies the node's certificate, name included, in a plain Python SSL context.
    ctx = ssl.create_default_context(cafile=str(secure_node.ca))
    with socket.create_connection(secure_node.host_port, timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=secure_node.host_port[0]) as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")

    conn, l = tls_conn(secure_node)
    conn.connect("py", "py-secret", wait=True)
    try:
        assert l.connected.headers["version"] == "1.2"
        assert len(secure_node.connections()) == 1
        conn.subscribe("/queue/py.tls", id="s", ack="auto")
        conn.send("/queue/py.tls", "over tls", receipt="r1")
        l.wait_receipt("r1")
        assert l.wait_messages(1)[0].body == "over tls"
    finally:
        if conn.is_connected():
            conn.disconnect(receipt="bye")


def test_wrong_password_over_tls_is_refused(secure_node):
    conn, l = tls_conn(secure_node)
    conn.connect("py", "not-the-secret", wait=False)
    l.wait("an ERROR", lambda: l.errors)
    assert l.errors[0].headers["message"] == "authentication failed"
    assert l.connected is None
    secure_node.wait_no_connections()
    conn.disconnect()


def test_denied_send_names_operation_and_destination(secure_node):
    conn, l = tls_conn(secure_node)
    conn.connect("py", "py-secret", wait=True)
    conn.send("/queue/elsewhere", "x", receipt="r1")
    l.wait("an ERROR", lambda: l.errors)
    assert l.errors[0].headers["message"] == "user 'py' is not allowed to write to /queue/elsewhere"
    secure_node.wait_no_connections()
    conn.disconnect()
