"""TLS to PostgreSQL: `ssl` and `sslmode` in the secret, TLS required for hosts that are not loopback,
certificates verified (chain and host name) when a CA bundle is configured.

Two real servers: the session's plaintext one and one serving a certificate signed by a CA made
here with `cryptography` (nothing is committed). A required TLS connection never falls back.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import psycopg
import pytest
from rotation_harness import Harness, SecretDict, assert_no_secret
from servers import LOOPBACK, PostgresServer, RedisServer, new_password, postgres_server, redis_server

from rotation.errors import ConfigurationError, CredentialError, SecretFormatError
from rotation.strategies.postgres import connect, parse, tls_options, try_login
from rotation.tls import CA_BUNDLE_ENV, is_loopback
from rotation.values import describe_exc

pytestmark = pytest.mark.servers


@dataclass(frozen=True)
class Pki:
    ca: Path
    """The CA that signed the server's certificate (PEM)."""
    other_ca: Path
    """A CA that signed nothing the server presents."""
    chain: bytes
    key: bytes


def _name(common_name: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[Any, Any]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, and a server certificate it signs for 127.0.0.1 and this machine's other loopback names."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    ca_key, ca_cert = _ca("secrets-platform test CA")
    _, other_cert = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    if (alias := _loopback_alias()) is not None:
        names.append(x509.DNSName(alias))
    cert = (
        x509.CertificateBuilder().subject_name(_name("postgres test server")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("pki")
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "other-ca.pem").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    return Pki(
        ca=directory / "ca.pem", other_ca=directory / "other-ca.pem",
        chain=cert.public_bytes(serialization.Encoding.PEM),
        key=key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
    )


def _loopback_alias() -> str | None:
    """A host name other than `localhost` that this machine resolves to 127.0.0.1 (e.g. its own name in
    /etc/hosts): to the rotation it is a remote host, so the default is to require TLS."""
    for candidate in (socket.gethostname(), "vm", "runsc"):
        try:
            if candidate and not is_loopback(candidate) and socket.gethostbyname(candidate) == LOOPBACK:
                return candidate
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def pg_tls(pki: Pki) -> Iterator[PostgresServer]:
    with postgres_server(tls=(pki.chain, pki.key)) as server:
        yield server


@pytest.fixture
def no_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_BUNDLE_ENV, raising=False)


def _secret(server: PostgresServer, host: str | None = None, **extra: Any) -> SecretDict:
    user, password = f"tls_{uuid.uuid4().hex[:8]}", new_password()
    server.create_role(user, password)
    return SecretDict({"engine": "postgres", "host": host or server.host, "port": server.port, "dbname": "postgres",
                       "username": user, "password": password, **extra})


def _logs_in(server: PostgresServer, data: SecretDict) -> bool:
    return server.can_login(data["username"], data["password"])


def _require_tls(server: PostgresServer, data: SecretDict) -> None:
    psycopg.connect(host=server.host, port=server.port, user=data["username"], password=data["password"],
                    dbname="postgres", sslmode="require", connect_timeout=5).close()


def _encrypted(data: dict[str, Any]) -> bool:
    with connect(parse(json.dumps(data), "test")) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    return bool(row and row[0])


# ---------------------------------------------------------------- which mode, from the secret


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("db.localhost", True), ("/var/run/postgresql", True), ("10.0.0.5", False), ("::ffff:10.0.0.5", False),
    ("mydb.cluster-c1a2b3.eu-west-1.rds.amazonaws.com", False), ("localhost.example.com", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(("fields", "bundle", "expected"), [
    ({"host": "db.internal"}, False, {"sslmode": "require"}),
    ({"host": "db.internal"}, True, {"sslmode": "verify-full", "sslrootcert": "<bundle>"}),
    ({"host": "127.0.0.1"}, False, {"sslmode": "prefer"}),
    ({"host": "127.0.0.1"}, True, {"sslmode": "prefer"}),
    ({"host": "127.0.0.1", "ssl": True}, False, {"sslmode": "require"}),
    ({"host": "127.0.0.1", "ssl": "TRUE"}, True, {"sslmode": "verify-full", "sslrootcert": "<bundle>"}),
    ({"host": "db.internal", "ssl": False}, True, {"sslmode": "disable"}),
    ({"host": "db.internal", "ssl": "false"}, False, {"sslmode": "disable"}),
    ({"host": "db.internal", "sslmode": "prefer"}, True, {"sslmode": "prefer"}),
    ({"host": "db.internal", "sslmode": "require", "ssl": False}, True,
     {"sslmode": "require", "sslrootcert": "<bundle>"}),
    ({"host": "db.internal", "sslmode": "require"}, False, {"sslmode": "require"}),
    ({"host": "db.internal", "sslmode": "verify-ca"}, True, {"sslmode": "verify-ca", "sslrootcert": "<bundle>"}),
    ({"host": "db.internal", "sslmode": "verify-full"}, False, {"sslmode": "verify-full", "sslrootcert": "<certifi>"}),
    ({"host": "db.internal", "sslmode": "verify-ca"}, False, {"sslmode": "verify-ca", "sslrootcert": "<certifi>"}),
])
def test_tls_options(fields: dict[str, Any], bundle: bool, expected: dict[str, str], pki: Pki,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    if bundle:
        monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca))
    else:
        monkeypatch.delenv(CA_BUNDLE_ENV, raising=False)
    data = parse(json.dumps({"engine": "postgres", "port": 5432, "dbname": "d", "username": "u", "password": "p",
                             **fields}), "test")
    paths = {"<bundle>": str(pki.ca), "<certifi>": certifi.where()}  # certifi: the CAs shipped in the package
    assert tls_options(data) == {k: paths.get(v, v) for k, v in expected.items()}


@pytest.mark.parametrize(("fields", "message"), [
    ({"sslmode": "verify"}, "secret db (AWSCURRENT): sslmode 'verify' is not one of disable, allow, prefer, "
                            "require, verify-ca, verify-full"),
    ({"ssl": "yes"}, "secret db (AWSCURRENT): field 'ssl' must be true or false"),
    ({"ssl": 1}, "secret db (AWSCURRENT): field 'ssl' must be true or false"),
])
def test_bad_tls_fields_are_refused(fields: dict[str, Any], message: str) -> None:
    value = {"engine": "postgres", "host": "h", "port": 5432, "dbname": "d", "username": "u", "password": "p", **fields}
    with pytest.raises(SecretFormatError) as caught:
        parse(json.dumps(value), "db (AWSCURRENT)")
    assert str(caught.value) == message


def test_a_configured_bundle_that_is_not_a_file_is_a_deployment_error(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CA_BUNDLE_ENV, str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match=f"{CA_BUNDLE_ENV}=.*missing.pem is not a file"):
        tls_options({"host": "db.internal"})


# ---------------------------------------------------------------- real servers, with and without TLS


def test_ssl_true_refuses_a_server_without_tls(pg: PostgresServer, no_bundle: None) -> None:
    data = _secret(pg, ssl=True)
    reason = try_login(parse(json.dumps(data), "test"))
    assert reason is not None and "server does not support SSL" in reason
    assert_no_secret(reason, data["password"])
    plaintext = try_login(parse(json.dumps(SecretDict(data, ssl=False)), "test")) is None
    assert plaintext, "the same role logs in without TLS"


def test_ssl_true_is_encrypted_on_a_server_with_tls(pg_tls: PostgresServer, no_bundle: None) -> None:
    data = _secret(pg_tls, ssl=True)
    assert _encrypted(data)
    assert not _encrypted(SecretDict(data, ssl=False))


def test_a_configured_bundle_verifies_the_chain_and_the_host_name(
        pg_tls: PostgresServer, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _secret(pg_tls, ssl=True)
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca))
    assert tls_options(data)["sslmode"] == "verify-full" and _encrypted(data)
    # The certificate names 127.0.0.1, not `localhost`: verify-full checks the host name, verify-ca does not.
    reason = try_login(parse(json.dumps(SecretDict(data, host="localhost")), "test"))
    assert reason is not None and "does not match host name" in reason
    assert _encrypted(SecretDict(data, host="localhost", sslmode="verify-ca"))
    # Signed by a CA the bundle does not hold: refused, also for an explicit `sslmode: require`.
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.other_ca))
    for variant in (data, SecretDict(data, sslmode="require")):
        reason = try_login(parse(json.dumps(variant), "test"))
        assert reason is not None and "certificate verify failed" in reason
    monkeypatch.delenv(CA_BUNDLE_ENV)
    assert _encrypted(SecretDict(data, sslmode="require")), "without a bundle, require only encrypts"


def test_a_host_that_is_not_loopback_requires_tls_by_default(
        pg: PostgresServer, pg_tls: PostgresServer, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
    alias = _loopback_alias()
    if alias is None:
        pytest.skip("no host name other than localhost resolves to 127.0.0.1 here")
    monkeypatch.delenv(CA_BUNDLE_ENV, raising=False)
    plain = _secret(pg, host=alias)  # no ssl, no sslmode
    reason = try_login(parse(json.dumps(plain), "test"))
    assert reason is not None and "server does not support SSL" in reason, "no silent plaintext"
    assert _encrypted(_secret(pg_tls, host=alias))
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca))
    assert _encrypted(_secret(pg_tls, host=alias))  # verify-full: the certificate names the alias


def test_rotation_over_verified_tls(
        harness: Harness, pg_tls: PostgresServer, pki: Pki, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca))
    initial = _secret(pg_tls, ssl=True)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-single-user", {name: {}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    new = harness.json(name)
    changed = new["password"] != initial["password"]
    assert new["ssl"] is True and changed
    assert _encrypted(new)


# ---------------------------------------------------------------- verify-* without a configured bundle


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on Lambda: no configured bundle, and nothing that steers OpenSSL's own lookup."""
    for key in (CA_BUNDLE_ENV, "SSL_CERT_FILE", "SSL_CERT_DIR", "PGSSLROOTCERT"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def shipped_roots(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """certifi's bundle as the package ships it, plus the test CA (standing for a public CA that signed
    the server), returned by `certifi.where()` as in the package."""
    bundle = tmp_path / "cacert.pem"
    bundle.write_bytes(Path(certifi.core.where()).read_bytes() + pki.ca.read_bytes())
    monkeypatch.setattr(certifi, "where", lambda: str(bundle))
    return bundle


def test_verify_full_without_a_bundle_verifies_against_the_cas_shipped_in_the_package(
        pg_tls: PostgresServer, shipped_roots: Path, lambda_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _secret(pg_tls, sslmode="verify-full")
    assert tls_options(data) == {"sslmode": "verify-full", "sslrootcert": str(shipped_roots)}
    assert _encrypted(data)
    assert _encrypted(SecretDict(data, sslmode="verify-ca"))
    # The host name is still checked: the certificate names 127.0.0.1, not `localhost`.
    reason = try_login(parse(json.dumps(SecretDict(data, host="localhost")), "test"))
    assert reason is not None and "does not match host name" in reason
    # certifi's own bundle does not hold the test CA: refused, never downgraded to an unverified login.
    monkeypatch.setattr(certifi, "where", certifi.core.where)
    for mode in ("verify-full", "verify-ca"):
        reason = try_login(parse(json.dumps(SecretDict(data, sslmode=mode)), "test"))
        assert reason is not None and "certificate verify failed" in reason, mode
        assert_no_secret(reason, data["password"])


def test_rotation_over_verify_full_with_the_shipped_cas(
        harness: Harness, pg_tls: PostgresServer, shipped_roots: Path, lambda_env: None, name: str) -> None:
    initial = _secret(pg_tls, sslmode="verify-full")
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-single-user", {name: {}})
    token = harness.rotate(name, fn)
    assert not harness.router.errors(token)
    new = harness.json(name)
    assert new["password"] != initial["password"] and new["sslmode"] == "verify-full"
    assert _encrypted(new)


def _bundled_openssl() -> Any:
    """The libcrypto that psycopg-binary's libpq uses (its wheel's own copy)."""
    import ctypes
    import importlib.util

    if psycopg.pq.__impl__ != "binary":
        pytest.skip(f"psycopg runs with its {psycopg.pq.__impl__} implementation, not psycopg-binary's libpq")
    spec = importlib.util.find_spec("psycopg_binary")
    assert spec is not None and spec.origin is not None
    (path,) = (Path(spec.origin).parent.parent / "psycopg_binary.libs").glob("libcrypto-*.so*")
    lib = ctypes.CDLL(str(path))
    for fn in ("X509_get_default_cert_file", "X509_get_default_cert_dir", "X509_get_default_cert_file_env"):
        getattr(lib, fn).restype = ctypes.c_char_p
    return lib


def test_psycopg_binarys_openssl_reads_its_own_directory_or_ssl_cert_file_only(
        pg_tls: PostgresServer, pki: Pki, shipped_roots: Path, lambda_env: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Why not `sslrootcert=system`: libpq then asks OpenSSL for its default paths, and the OpenSSL in
    psycopg-binary's wheel has its own compiled-in directory, which no operating system (Lambda's
    Amazon Linux included) fills; only $SSL_CERT_FILE / $SSL_CERT_DIR move it."""
    import ssl

    lib = _bundled_openssl()
    default_file = lib.X509_get_default_cert_file().decode()
    default_dir = lib.X509_get_default_cert_dir().decode()
    assert lib.X509_get_default_cert_file_env().decode() == "SSL_CERT_FILE"
    assert "psycopg" in default_file and "psycopg" in default_dir, (default_file, default_dir)
    assert not Path(default_file).exists() and not Path(default_dir).exists()
    system = ssl.get_default_verify_paths()  # this machine's OpenSSL: another place altogether
    assert default_file != system.openssl_cafile and default_dir != system.openssl_capath

    data = _secret(pg_tls)
    def system_roots() -> str | None:
        try:
            psycopg.connect(host=pg_tls.host, port=pg_tls.port, dbname="postgres", user=data["username"],
                            password=data["password"], sslmode="verify-full", sslrootcert="system",
                            connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            return describe_exc(exc, [data["password"]])
        return None

    reason = system_roots()
    assert reason is not None and "certificate verify failed" in reason
    monkeypatch.setenv("SSL_CERT_FILE", str(shipped_roots))
    assert system_roots() is None


def test_rotation_against_a_server_without_tls_fails_instead_of_falling_back(
        harness: Harness, pg: PostgresServer, name: str, no_bundle: None) -> None:
    initial = _secret(pg, ssl=True)
    harness.secret(name, json.dumps(initial))
    fn = harness.function("postgres-single-user", {name: {}})
    token = harness.rotate(name, fn)
    errors = harness.router.errors(token)
    assert len(errors) == 1 and isinstance(errors[0], CredentialError)
    assert "server does not support SSL" in str(errors[0])
    assert _logs_in(pg, initial), "nothing changed on the server"
    with pytest.raises(psycopg.OperationalError):
        _require_tls(pg, initial)


# ------------------------------------------------------------------ Redis over TLS


@pytest.fixture(scope="module")
def redis_tls(pki: Pki) -> Iterator[RedisServer]:
    with redis_server({}, tls=(pki.chain, pki.key, pki.ca)) as server:
        yield server


def test_redis_rotation_over_tls_verifies_the_server(
    harness: Harness, redis_tls: RedisServer, name: str, pki: Pki, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`tls: true`: every connection (the app user's and the admin's) is TLS, verified against the configured
    bundle; against a bundle of another CA nothing logs in and the password is not changed."""
    from rotation.strategies.redis_acl import try_login

    user, password = f"tls-{uuid.uuid4().hex[:8]}", new_password()
    admin = redis_tls.admin()
    try:
        admin.execute_command("ACL", "SETUSER", user, "on", ">" + password, "~*", "+@all")
    finally:
        admin.close()
    master = harness.secret(name + "-master", json.dumps(
        {"username": redis_tls.admin_user, "password": redis_tls.passwords[redis_tls.admin_user]}))
    data = {"host": redis_tls.host, "port": redis_tls.port, "username": user, "password": password, "tls": True,
            "masterarn": master}
    harness.secret(name, json.dumps(data))
    fn = harness.function("redis-acl", {name: {}}, paused=True)
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.other_ca))
    reason = try_login(data)
    assert reason is not None and "certificate verify failed" in reason
    token = harness.rotate(name, fn)
    harness.step(name, "createSecret", token, fn)
    with pytest.raises(CredentialError, match="certificate verify failed"):
        harness.step(name, "setSecret", token, fn)
    monkeypatch.setenv(CA_BUNDLE_ENV, str(pki.ca))
    assert try_login(data) is None
    for step in ("setSecret", "testSecret", "finishSecret"):
        harness.step(name, step, token, fn)
    # The previous password stays valid until the next rotation finishes (finishSecret read AWSPREVIOUS over TLS).
    assert redis_tls.can_login(user, harness.json(name)["password"]) and redis_tls.can_login(user, password)
