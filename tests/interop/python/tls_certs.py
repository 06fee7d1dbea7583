"""Test certificates, made at test time with the openssl command (Debian's `openssl`): a CA, a
server certificate for 127.0.0.1 and localhost, client certificates (CN=guest, an unknown CN,
an expired one, one from a CA the broker does not trust), and a second server certificate for
the reload test. EC P-256 keys: quick to make. Nothing is downloaded, nothing outlives the run.
"""
import os
import shutil
import ssl
import subprocess
import tempfile

import pika


def _openssl(*args, cwd):
    res = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError("openssl %s failed:\n%s" % (" ".join(args), res.stderr))


class Certs:
    """Paths of the files made in `directory` (call cleanup() to remove them)."""

    def __init__(self):
        if not shutil.which("openssl"):
            raise RuntimeError("the openssl command is missing: apt-get install openssl")
        self.dir = tempfile.mkdtemp(prefix="warren-tls-")
        self._serial = 1000
        self._ca("ca", "Warren test CA")
        self._ca("other-ca", "Some other CA")
        self.server = self._leaf("server", "localhost", "ca",
                                 san="subjectAltName=DNS:localhost,IP:127.0.0.1")
        self.server2 = self._leaf("server2", "localhost reloaded", "ca",
                                  san="subjectAltName=DNS:localhost,IP:127.0.0.1")
        self.guest = self._leaf("client-guest", "guest", "ca")
        self.unknown = self._leaf("client-unknown", "nobody-we-know", "ca")
        self.expired = self._leaf("client-expired", "guest", "ca", days="-1")
        self.untrusted = self._leaf("client-untrusted", "guest", "other-ca")
        self.ca = self.path("ca.pem")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name, cn):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".pem", "-days", "30", "-subj", "/CN=" + cn,
                 cwd=self.dir)

    def _leaf(self, name, cn, ca, san=None, days="30"):
        """(certfile, keyfile) of a certificate for `cn` signed by `ca`."""
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/O=Warren tests/CN=" + cn,
                 cwd=self.dir)
        self._serial += 1
        args = ["x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
                "-set_serial", str(self._serial), "-out", name + ".pem", "-days", days]
        if san:
            with open(self.path(name + ".ext"), "w") as f:
                f.write(san + "\n")
            args += ["-extfile", name + ".ext"]
        _openssl(*args, cwd=self.dir)
        return self.path(name + ".pem"), self.path(name + ".key")

    def pkcs12(self, leaf, password="changeit"):
        """The certificate and key as a PKCS#12 file (what Java's KeyManagerFactory reads)."""
        cert, key = leaf
        out = cert[:-len(".pem")] + ".p12"
        _openssl("pkcs12", "-export", "-in", cert, "-inkey", key, "-out", out,
                 "-passout", "pass:" + password, cwd=self.dir)
        return out

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def listener(certs, port, **keys):
    """A tls_listeners entry on 127.0.0.1:port with the test certificates; verify_peer on (a
    client certificate is checked if sent, needed for EXTERNAL), overridable with `keys`."""
    entry = {"bind": "127.0.0.1", "port": port, "certfile": certs.server[0], "keyfile": certs.server[1],
             "cacertfile": certs.ca, "verify_peer": True}
    entry.update(keys)
    return entry


def client_context(certs, client=None, version=None):
    """A client ssl.SSLContext trusting the test CA (checking the name "localhost"), presenting
    `client` (a (certfile, keyfile) pair) if given, limited to `version` (an ssl.TLSVersion)."""
    ctx = ssl.create_default_context(cafile=certs.ca)
    if client:
        ctx.load_cert_chain(*client)
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def pika_params(port, context, credentials=None, **kw):
    """pika over TLS (pika.SSLOptions) to 127.0.0.1:port, verifying the server as "localhost"."""
    kw.setdefault("connection_attempts", 1)
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("blocked_connection_timeout", 30)
    return pika.ConnectionParameters(
        host="127.0.0.1", port=port, ssl_options=pika.SSLOptions(context, "localhost"),
        credentials=credentials or pika.PlainCredentials("guest", "guest"), **kw)
