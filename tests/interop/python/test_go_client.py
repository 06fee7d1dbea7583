"""The Go client (github.com/rabbitmq/amqp091-go, Debian's golang-github-rabbitmq-amqp091-go-dev)
against the broker: tests/interop/go/*_test.go, built once per run offline in GOPATH mode
(GO111MODULE=off, GOPATH including /usr/share/gocode, nothing downloaded) and run one test at a
time with the broker's URL in AMQP_URL. The Go build cache lives in the temp directory. The
broker has a TLS listener too (AMQPS_URL; certificates from tls_certs.py in TLS_DIR) for the
TLS tests in go/tls_test.go.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import brokers
import procs
import tls_certs
import test_auth

GO_DIR = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "go"))
GOCODE = "/usr/share/gocode"
AMQP091 = os.path.join(GOCODE, "src", "github.com", "rabbitmq", "amqp091-go")

broker = None
work = None
test_binary = None
certs = None
tls_port = None


def go_env():
    env = dict(os.environ)
    env.update({
        "GO111MODULE": "off",
        "GOPATH": "%s:%s" % (os.path.join(work, "gopath"), GOCODE),
        # Reused across runs, in the temp directory: no assumptions about $HOME.
        "GOCACHE": os.path.join(tempfile.gettempdir(), "warren-interop-go-cache-%d" % os.getuid()),
        "GOENV": "off",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    })
    return env


def setUpModule():
    global broker, work, test_binary, certs, tls_port
    go = shutil.which("go")
    if not go:
        raise RuntimeError("go is not installed: apt-get install golang-go")
    if not os.path.isdir(AMQP091):
        raise RuntimeError("the Go AMQP client is not installed: "
                           "apt-get install golang-github-rabbitmq-amqp091-go-dev")
    work = tempfile.mkdtemp(prefix="warren-interop-go-")
    test_binary = os.path.join(work, "interop.test")
    res = subprocess.run([go, "test", "-c", "-o", test_binary, "."], cwd=GO_DIR, env=go_env(),
                         capture_output=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("building the Go tests failed:\n%s%s" % (
            res.stdout.decode(errors="replace"), res.stderr.decode(errors="replace")))
    # With test_auth's users and vhost, for the permission tests (guest keeps guest/guest).
    certs = tls_certs.Certs()
    tls_port = procs.free_port()
    broker = brokers.start_broker({"tls_listeners": [tls_certs.listener(certs, tls_port)],
                                   "load_definitions": test_auth.definitions_file()})


def tearDownModule():
    if broker:
        broker.stop()
    if certs:
        certs.cleanup()
    if work:
        shutil.rmtree(work, ignore_errors=True)


class GoClientTests(unittest.TestCase):
    def run_go(self, name):
        env = dict(os.environ, AMQP_URL=broker.url(), INTEROP_BROKER=brokers.BROKER,
                   AMQPS_URL="amqps://guest:guest@127.0.0.1:%d" % tls_port, TLS_DIR=certs.dir)
        res = subprocess.run([test_binary, "-test.run", "^%s$" % name, "-test.v",
                              "-test.timeout", "120s"],
                             cwd=GO_DIR, env=env, capture_output=True, timeout=180)
        out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
        self.assertEqual(res.returncode, 0, "go test %s failed:\n%s" % (name, out))
        self.assertRegex(out, r"--- (PASS|SKIP): %s\b" % name)  # it ran, not zero tests

    def test_go_stream_offsets(self):
        self.run_go("TestStreamOffsets")

    def test_go_stream_filter(self):
        self.run_go("TestStreamFilter")

    def test_go_stream_named_consumer_resumes(self):
        self.run_go("TestStreamNamedConsumerResumes")

    def test_go_stream_groups(self):
        self.run_go("TestStreamGroups")

    def test_go_connect(self):
        self.run_go("TestConnectAdvertisesCapabilities")

    def test_go_publish_consume(self):
        self.run_go("TestPublishConsumeInOrder")

    def test_go_confirms(self):
        self.run_go("TestPublisherConfirms")

    def test_go_qos_and_ack(self):
        self.run_go("TestQosHoldsDeliveriesUntilAck")

    def test_go_reject_requeue(self):
        self.run_go("TestRejectWithRequeueRedelivers")

    def test_go_dead_letter_exchange(self):
        self.run_go("TestNackWithoutRequeueDeadLetters")

    def test_go_mandatory_return(self):
        self.run_go("TestMandatoryUnroutableIsReturned")

    def test_go_channel_flow(self):
        self.run_go("TestChannelFlowPausesAndResumesDeliveries")

    def test_go_delayed_exchange_each_type(self):
        self.run_go("TestDelayedExchangeEachType")

    def test_go_delayed_retry_then_dead_letter(self):
        self.run_go("TestDelayedRetryThenDeadLetter")

    def test_go_concurrent_close_50_times(self):
        self.run_go("TestConcurrentCloseIsClean")

    def test_go_close_after_work(self):
        self.run_go("TestCloseAfterWorkReturnsNil")

    def test_go_tls_plain_login(self):
        self.run_go("TestTLSPlainLoginRoundTrip")

    def test_go_tls_external_login(self):
        self.run_go("TestTLSExternalAuthWithClientCertificate")

    def test_go_tls_external_unknown_user_refused(self):
        self.run_go("TestTLSExternalAuthUnknownUserIsRefused")

    def test_go_tls_expired_client_certificate_refused(self):
        self.run_go("TestTLSExpiredClientCertificateIsRefused")

    def test_go_vhost_access_and_permissions(self):
        self.run_go("TestVhostAccessAndPermissions")

    def test_go_topic_permission(self):
        self.run_go("TestTopicPermissionRefusesPublish")

    def test_go_every_go_test_is_run_here(self):
        res = subprocess.run([test_binary, "-test.list", ".*"], capture_output=True, check=True)
        listed = set(res.stdout.decode().split())
        with open(__file__) as f:
            here = set(re.findall(r'self\.run_go\("(\w+)"\)', f.read()))
        self.assertEqual(listed, here)


if __name__ == "__main__":
    unittest.main()
