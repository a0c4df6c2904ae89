"""TLS against a real TLS server: Debian's redis-server (built with TLS; the embedded one is not)
on a TLS port that requires client certificates, with a test CA made here with the openssl CLI.

Server verification, client certificates (--tls-cert/--tls-key), a wrong CA refused in one line,
--tls-insecure only when asked (and then warned about on stderr), and the two mismatches (TLS to a
plain port, plain to a TLS port) failing within seconds with the likely cause named.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import redis
import writers
from conftest import Cli

from cacheops.exit_codes import ExitCode
from cacheops.server.embedded import free_port

SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(
    SERVER is None or shutil.which("openssl") is None,
    reason="needs Debian's redis-server (built with TLS) and openssl: apt-get install redis-server "
    "(scripts/test installs it in CI)",
)


def openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(folder, name: str) -> None:
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "1", "-subj", f"/CN={name}", cwd=folder)  # fmt: skip


def make_cert(folder, ca: str, name: str, san: str | None = None) -> None:
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
    extra = []
    if san:
        (folder / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{name}.ext"]
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "1", *extra, cwd=folder)  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A redis-server with a plain port (for the test's own writes) and a TLS port that requires a
    client certificate signed by the test CA."""
    folder = tmp_path_factory.mktemp("tls")
    make_ca(folder, "ca")
    make_ca(folder, "other-ca")
    make_cert(folder, "ca", "server", san="IP:127.0.0.1,DNS:localhost")
    make_cert(folder, "ca", "client")
    make_cert(folder, "other-ca", "stranger")
    plain, tls = free_port(), free_port()
    process = subprocess.Popen(
        [
            SERVER,
            "--port",
            str(plain),
            "--tls-port",
            str(tls),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--logfile",
            "redis.log",
            "--tls-cert-file",
            "server.crt",
            "--tls-key-file",
            "server.key",
            "--tls-ca-cert-file",
            "ca.crt",
            "--tls-auth-clients",
            "yes",
        ],  # fmt: skip
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        plain_client = redis.Redis(port=plain)
        for _ in range(200):
            if process.poll() is not None:
                log = (folder / "redis.log").read_text(errors="replace").strip().splitlines()
                pytest.skip(f"redis-server could not start with TLS: {log[-1] if log else process.returncode}")
            try:
                plain_client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        plain_client.flushall()  # test-only
        # Debian's server has no JSON module: the legacy exact cache (hashes) needs none
        writers.community_exact(f"redis://127.0.0.1:{plain}", [("Hi", "Hello over TLS")])
        yield {"folder": folder, "plain": plain, "tls": tls}
    finally:
        process.terminate()
        process.wait(timeout=10)


def tls_cli(server, *, host="127.0.0.1") -> Cli:
    return Cli(f"rediss://{host}:{server['tls']}/0")


def files(server, *names: str) -> list[str]:
    return [str(server["folder"] / name) for name in names]


def client_cert(server, name="client") -> list[str]:
    cert, key = files(server, f"{name}.crt", f"{name}.key")
    return ["--tls-cert", cert, "--tls-key", key]


def assert_one_line(result, code: ExitCode, *needles: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_verified_server_and_client_certificate(tls_server):
    ca = files(tls_server, "ca.crt")[0]
    for host in ("127.0.0.1", "localhost"):  # the certificate names both: hostname checking stays on
        result = tls_cli(tls_server, host=host)("--tls-ca-file", ca, *client_cert(tls_server), "scan", "--json")
        assert result.exit_code == 0, result.output
        assert '"answer":"Hello over TLS"' in result.stdout
        assert result.stderr == ""  # verified: no warning


def test_wrong_or_missing_ca_is_refused(tls_server):
    run = tls_cli(tls_server)
    other = files(tls_server, "other-ca.crt")[0]
    for ca_args in (["--tls-ca-file", other], []):  # a wrong CA; the system store (no CA given)
        result = run(*ca_args, *client_cert(tls_server), "caches", "--json")
        assert_one_line(result, ExitCode.CONNECTION, "certificate was refused", "--tls-ca-file")
        assert result.stdout == ""


def test_client_certificate_required_and_checked(tls_server):
    run = tls_cli(tls_server)
    ca = files(tls_server, "ca.crt")[0]
    result = run("--tls-ca-file", ca, "caches")
    assert_one_line(result, ExitCode.CONNECTION, "client certificate", "--tls-cert")
    result = run("--tls-ca-file", ca, *client_cert(tls_server, "stranger"), "caches")
    assert_one_line(result, ExitCode.CONNECTION, "refused the client certificate")
    # The user's own mistakes are config errors naming the file.
    cert, wrong_key = files(tls_server, "client.crt", "stranger.key")
    result = run("--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", wrong_key, "caches")
    assert_one_line(result, ExitCode.CONFIG, "stranger.key", "matching key")
    result = run("--tls-ca-file", ca, "--tls-cert", cert, "caches")
    assert_one_line(result, ExitCode.CONFIG, "--tls-key")
    result = run("--tls-ca-file", ca, "--tls-cert", str(tls_server["folder"] / "nope.crt"), "--tls-key", cert, "caches")
    assert_one_line(result, ExitCode.CONFIG, "nope.crt", "does not exist")


def test_insecure_only_when_asked_and_warned(tls_server):
    result = tls_cli(tls_server)("--tls-insecure", *client_cert(tls_server), "scan", "--json")
    assert result.exit_code == 0, result.output
    assert '"answer":"Hello over TLS"' in result.stdout
    assert result.stderr.count("--tls-insecure") == 1 and "not verified" in result.stderr
    assert "warning" not in result.stdout


def test_plain_url_to_tls_port_names_the_cause(tls_server):
    run = Cli(f"redis://127.0.0.1:{tls_server['tls']}/0")
    started = time.monotonic()
    result = run("caches")
    assert time.monotonic() - started < 5
    assert_one_line(result, ExitCode.CONNECTION, "is it a TLS port?", "rediss://")


def test_tls_url_to_plain_port_fails_fast(tls_server):
    run = Cli(f"rediss://127.0.0.1:{tls_server['plain']}/0")
    ca = files(tls_server, "ca.crt")[0]
    started = time.monotonic()
    result = run("--tls-ca-file", ca, "caches")  # the default connect timeout (5 s), not a minute
    assert time.monotonic() - started < 8
    assert_one_line(result, ExitCode.CONNECTION, "plain (non-TLS) port", "redis://")
    started = time.monotonic()
    result = run("--tls-ca-file", ca, "--connect-timeout", "0.5", "caches")
    assert time.monotonic() - started < 3
    assert_one_line(result, ExitCode.CONNECTION, "plain (non-TLS) port")


def test_profile_carries_tls_files_and_timeouts(tls_server, tmp_path, monkeypatch):
    ca, cert, key = files(tls_server, "ca.crt", "client.crt", "client.key")
    config = tmp_path / "cacheops.yaml"
    config.write_text(
        "profiles:\n"
        "  secure:\n"
        f"    url: rediss://127.0.0.1:{tls_server['tls']}/0\n"
        f"    tls_ca_file: {ca}\n    tls_cert_file: {cert}\n    tls_key_file: {key}\n"
        "    connect_timeout: 2\n    timeout: 30\n"
        "  wrongport:\n"
        f"    url: rediss://127.0.0.1:{tls_server['plain']}/0\n"
        f"    tls_ca_file: {ca}\n    connect_timeout: 0.5\n"
    )
    monkeypatch.setenv("CACHEOPS_CONFIG", str(config))
    run = Cli("")
    result = run("--profile", "secure", "scan", "--json")
    assert result.exit_code == 0 and '"answer":"Hello over TLS"' in result.stdout, result.output
    started = time.monotonic()
    result = run("--profile", "wrongport", "caches")
    assert time.monotonic() - started < 3
    assert_one_line(result, ExitCode.CONNECTION, "plain (non-TLS) port")
    result = run("--timeout", "0", "caches")  # Click's own usage error
    assert result.exit_code == ExitCode.USAGE and "--timeout" in result.stderr


def test_the_undo_hint_carries_the_tls_options(tls_server, tmp_path):
    """The undo hint after an evict over TLS with a client certificate runs verbatim: it names the
    CA, the certificate and the key it was run with."""
    import json
    import shlex

    ca = files(tls_server, "ca.crt")[0]
    run = tls_cli(tls_server)
    tls = ["--tls-ca-file", ca, *client_cert(tls_server)]
    (key,) = [json.loads(line)["key"] for line in run(*tls, "scan", "--json").stdout.splitlines()]
    result = run(*tls, "evict", "--key", key, "--backup", str(tmp_path / "b.jsonl"), "--yes")
    assert result.exit_code == 0, result.output
    (hint,) = [line for line in result.stdout.splitlines() if line.startswith("undo with: ")]
    argv = shlex.split(hint.removeprefix("undo with: "))
    assert {"--tls-ca-file", "--tls-cert", "--tls-key"} <= set(argv), hint
    restored = Cli("")(*argv[1:])  # exactly the printed line, nothing added
    assert restored.exit_code == 0, restored.output
    assert '"answer":"Hello over TLS"' in run(*tls, "scan", "--json").stdout
