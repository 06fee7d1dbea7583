"""The RabbitMQ Java client (Debian's librabbitmq-client-java 5.0) against the broker.

tests/interop/java/JavaClientInterop.java is compiled with Debian's JDK into a temporary directory
when the module starts (nothing is downloaded) and run once per scenario; a scenario passes when
the program prints "ok SCENARIO" and exits 0. The client needs slf4j-api at run time (Debian's
libslf4j-java, a dependency of the client package); slf4j-nop keeps it quiet. The tls_ scenarios
use the broker's TLS listener, with certificates made by tls_certs.py (TLS_DIR).
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import brokers
import procs
import tls_certs
import test_auth

JAVA_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "java",
                        "JavaClientInterop.java")
JARS = ["/usr/share/java/amqp-client.jar", "/usr/share/java/slf4j-api.jar",
        "/usr/share/java/slf4j-nop.jar"]
broker = None
classes = None
certs = None
tls_port = None


def setUpModule():
    global broker, classes, certs, tls_port
    missing = [j for j in JARS if not os.path.exists(j)]
    missing += [t for t in ("javac", "java") if not shutil.which(t)]
    if missing:
        raise RuntimeError("missing %s: apt-get install librabbitmq-client-java libslf4j-java "
                           "default-jdk-headless" % ", ".join(missing))
    classes = tempfile.mkdtemp(prefix="warren-java-")
    res = subprocess.run(["javac", "-nowarn", "-d", classes, "-cp", ":".join(JARS), JAVA_SRC],
                         capture_output=True, text=True, timeout=300)
    if res.returncode != 0:
        raise RuntimeError("javac failed:\n%s%s" % (res.stdout, res.stderr))
    # With test_auth's users and vhost, for the permission tests (guest keeps guest/guest).
    certs = tls_certs.Certs()
    certs.pkcs12(certs.guest)  # client-guest.p12, for the KeyManagerFactory
    tls_port = procs.free_port()
    broker = brokers.start_broker({"tls_listeners": [tls_certs.listener(certs, tls_port)],
                                   "load_definitions": test_auth.definitions_file()})


def tearDownModule():
    if broker:
        broker.stop()
    if certs:
        certs.cleanup()
    if classes:
        shutil.rmtree(classes, ignore_errors=True)


def java_argv(*args):
    # Small heap, serial GC and the client compiler: a short-lived JVM starting fast on 2 cores.
    env = dict(os.environ, TLS_DIR=certs.dir) if certs else None
    return ["java", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", ":".join([classes] + JARS), "JavaClientInterop"] + list(args), env


def java(*args):
    argv, env = java_argv(*args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)


class JavaClientTests(unittest.TestCase):
    def run_scenario(self, name):
        port = tls_port if name.startswith("tls_") else broker.port
        res = java(name, broker.host, str(port), broker.user, broker.password)
        out = res.stdout + res.stderr
        self.assertEqual(res.returncode, 0, "JavaClientInterop %s failed:\n%s" % (name, out))
        self.assertIn("ok %s" % name, res.stdout.splitlines())

    def test_connect(self):
        self.run_scenario("connect")

    def test_publish_consume(self):
        self.run_scenario("publish_consume")

    def test_confirms(self):
        self.run_scenario("confirms")

    def test_qos_ack(self):
        self.run_scenario("qos_ack")

    def test_reject_requeue(self):
        self.run_scenario("reject_requeue")

    def test_dead_letter(self):
        self.run_scenario("dead_letter")

    def test_mandatory_return(self):
        self.run_scenario("mandatory_return")

    def test_clean_close(self):
        self.run_scenario("clean_close")

    def test_recovery_after_restart(self):
        # The client prints "restart now" holding a delivery unacknowledged; the broker is then
        # killed and started again on its data and port, and the client recovers by itself.
        argv, env = java_argv("recovery_after_restart", broker.host, str(broker.port),
                              broker.user, broker.password)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=env)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.strip() == "restart now":
                if brokers.is_rabbitmq():
                    time.sleep(2)  # RabbitMQ 3.10 writes declarations lazily (test_durability)
                broker.restart(kill=True)
                break
        out.append(proc.stdout.read())
        self.assertEqual(proc.wait(180), 0, "".join(out))
        self.assertIn("ok recovery_after_restart", "".join(out).splitlines())

    def test_tls_publish_consume(self):
        self.run_scenario("tls_publish_consume")

    def test_tls_external(self):
        self.run_scenario("tls_external")

    def test_permissions(self):
        self.run_scenario("permissions")

    def test_every_scenario_is_run_here(self):
        res = java("--list")
        self.assertEqual(res.returncode, 0, res.stderr)
        here = {n[len("test_"):] for n in dir(self) if n.startswith("test_")} - {
            "every_scenario_is_run_here"}
        self.assertEqual(set(res.stdout.split()), here)


if __name__ == "__main__":
    unittest.main()
