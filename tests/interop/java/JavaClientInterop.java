// The RabbitMQ Java client (Debian's librabbitmq-client-java) against the broker, one scenario per
// run: java JavaClientInterop SCENARIO HOST PORT USER PASSWORD, or --list for the scenario names.
// The tls_ scenarios connect with TLS (useSslProtocol) to PORT, trusting TLS_DIR/ca.pem;
// tls_external presents TLS_DIR/client-guest.p12 and logs in with EXTERNAL.
// Compiled and run by tests/interop/python/test_java_client.py; prints "ok SCENARIO" and exits 0
// when every check holds. Waits are on events (blocking queues, confirms), never sleeps.
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConfirmListener;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.DefaultSaslConfig;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.GetResponse;
import com.rabbitmq.client.LongString;
import com.rabbitmq.client.MessageProperties;
import com.rabbitmq.client.Recoverable;
import com.rabbitmq.client.RecoveryListener;
import com.rabbitmq.client.ShutdownSignalException;
import java.io.FileInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public final class JavaClientInterop {
    static final long TIMEOUT_S = 20;  // upper bound for one awaited event on a loaded machine

    interface Scenario {
        void run(Connection conn) throws Exception;
    }

    // A delivery as the consumer saw it.
    record Delivery(Envelope envelope, AMQP.BasicProperties props, String body) {}

    static final Map<String, Scenario> SCENARIOS = new LinkedHashMap<>();
    static {
        SCENARIOS.put("connect", JavaClientInterop::connect);
        SCENARIOS.put("publish_consume", JavaClientInterop::publishConsume);
        SCENARIOS.put("confirms", JavaClientInterop::confirms);
        SCENARIOS.put("qos_ack", JavaClientInterop::qosAck);
        SCENARIOS.put("reject_requeue", JavaClientInterop::rejectRequeue);
        SCENARIOS.put("dead_letter", JavaClientInterop::deadLetter);
        SCENARIOS.put("mandatory_return", JavaClientInterop::mandatoryReturn);
        SCENARIOS.put("clean_close", JavaClientInterop::cleanClose);
        SCENARIOS.put("recovery_after_restart", JavaClientInterop::recoveryAfterRestart);
        SCENARIOS.put("tls_publish_consume", JavaClientInterop::publishConsume);
        SCENARIOS.put("tls_external", JavaClientInterop::publishConsume);
        SCENARIOS.put("permissions", JavaClientInterop::permissions);
    }

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError(what);
    }

    static void checkEquals(Object expected, Object actual, String what) {
        if (expected == null ? actual != null : !expected.equals(actual))
            throw new AssertionError(what + ": expected <" + expected + "> but was <" + actual + ">");
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String text(Object value) {  // a field-table string arrives as a LongString
        return value == null ? null : value.toString();
    }

    static String tempQueue(Channel ch, Map<String, Object> args) throws Exception {
        return ch.queueDeclare("", false, true, true, args).getQueue();
    }

    // Starts a consumer that puts every delivery on the returned queue.
    static BlockingQueue<Delivery> consume(Channel ch, String queue, boolean autoAck) throws Exception {
        BlockingQueue<Delivery> got = new LinkedBlockingQueue<>();
        ch.basicConsume(queue, autoAck, new DefaultConsumer(ch) {
            @Override
            public void handleDelivery(String tag, Envelope env, AMQP.BasicProperties props, byte[] body) {
                got.add(new Delivery(env, props, new String(body, StandardCharsets.UTF_8)));
            }
        });
        return got;
    }

    static Delivery next(BlockingQueue<Delivery> got, String what) throws InterruptedException {
        Delivery d = got.poll(TIMEOUT_S, TimeUnit.SECONDS);
        check(d != null, "timed out waiting for " + what);
        return d;
    }

    // The handshake: what the client negotiated and what the server advertised.
    static void connect(Connection conn) throws Exception {
        check(conn.isOpen(), "connection is open");
        Map<String, Object> server = conn.getServerProperties();
        checkEquals("RabbitMQ", text(server.get("product")), "server product");
        @SuppressWarnings("unchecked")
        Map<String, Object> caps = (Map<String, Object>) server.get("capabilities");
        for (String cap : new String[] {"publisher_confirms", "basic.nack", "consumer_cancel_notify",
                                        "exchange_exchange_bindings", "connection.blocked",
                                        "authentication_failure_close"})
            checkEquals(Boolean.TRUE, caps.get(cap), "capability " + cap);
        checkEquals(131072, conn.getFrameMax(), "frame_max");
        checkEquals(2047, conn.getChannelMax(), "channel_max");
        checkEquals(60, conn.getHeartbeat(), "heartbeat");
        Channel ch = conn.createChannel();
        check(ch.getChannelNumber() >= 1, "a channel number was allocated");
        ch.close();
    }

    // Messages and their properties round-trip, in order, to a manually acking consumer.
    static void publishConsume(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String q = tempQueue(ch, null);
        Map<String, Object> headers = new HashMap<>();
        headers.put("attempt", 3);
        headers.put("tenant", "acme");
        for (int i = 0; i < 50; i++) {
            AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .contentType("text/plain").deliveryMode(2).priority(1).correlationId("c" + i)
                .messageId("m" + i).headers(headers).build();
            ch.basicPublish("", q, props, bytes("body " + i));
        }
        BlockingQueue<Delivery> got = consume(ch, q, false);
        for (int i = 0; i < 50; i++) {
            Delivery d = next(got, "delivery " + i);
            checkEquals("body " + i, d.body(), "body order");
            checkEquals("c" + i, d.props().getCorrelationId(), "correlation id");
            checkEquals("m" + i, d.props().getMessageId(), "message id");
            checkEquals("text/plain", d.props().getContentType(), "content type");
            checkEquals(2, d.props().getDeliveryMode(), "delivery mode");
            checkEquals(3, d.props().getHeaders().get("attempt"), "int header");
            checkEquals("acme", text(d.props().getHeaders().get("tenant")), "string header");
            check(!d.envelope().isRedeliver(), "first delivery is not redelivered");
            ch.basicAck(d.envelope().getDeliveryTag(), false);
        }
        checkEquals(0, ch.queueDeclarePassive(q).getMessageCount(), "queue drained");
        ch.close();
    }

    // Every publish is confirmed; a queue refusing a message (reject-publish) nacks it.
    static void confirms(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        ch.confirmSelect();
        String q = tempQueue(ch, null);
        for (int i = 0; i < 1000; i++) ch.basicPublish("", q, null, bytes("m" + i));
        ch.waitForConfirmsOrDie(TIMEOUT_S * 1000);
        checkEquals(1000, ch.queueDeclarePassive(q).getMessageCount(), "every confirmed message is queued");

        Map<String, Object> args = new HashMap<>();
        args.put("x-max-length", 1);
        args.put("x-overflow", "reject-publish");
        String full = tempQueue(ch, args);
        BlockingQueue<String> outcomes = new LinkedBlockingQueue<>();
        ch.addConfirmListener(new ConfirmListener() {
            @Override
            public void handleAck(long tag, boolean multiple) {
                outcomes.add("ack " + tag);
            }

            @Override
            public void handleNack(long tag, boolean multiple) {
                outcomes.add("nack " + tag);
            }
        });
        long first = ch.getNextPublishSeqNo();
        ch.basicPublish("", full, null, bytes("kept"));
        checkEquals("ack " + first, outcomes.poll(TIMEOUT_S, TimeUnit.SECONDS), "the first is acked");
        ch.basicPublish("", full, null, bytes("refused"));
        checkEquals("nack " + (first + 1), outcomes.poll(TIMEOUT_S, TimeUnit.SECONDS),
                    "the second is nacked (reject-publish)");
        ch.close();
    }

    // basic.qos 2: two unacked deliveries, the rest stay ready until an ack makes room.
    static void qosAck(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String q = tempQueue(ch, null);
        for (int i = 0; i < 5; i++) ch.basicPublish("", q, null, bytes("m" + i));
        ch.basicQos(2);
        BlockingQueue<Delivery> got = consume(ch, q, false);
        Delivery a = next(got, "first delivery");
        Delivery b = next(got, "second delivery");
        checkEquals(3, ch.queueDeclarePassive(q).getMessageCount(), "three stay ready under prefetch 2");
        check(got.isEmpty(), "no third delivery before an ack");
        ch.basicAck(b.envelope().getDeliveryTag(), true);  // multiple: a and b
        List<String> rest = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            Delivery d = next(got, "delivery after ack");
            rest.add(d.body());
            ch.basicAck(d.envelope().getDeliveryTag(), false);
        }
        checkEquals(List.of("m0", "m1"), List.of(a.body(), b.body()), "first two in order");
        checkEquals(List.of("m2", "m3", "m4"), rest, "the rest in order");
        checkEquals(0, ch.queueDeclarePassive(q).getMessageCount(), "queue drained");
        ch.close();
    }

    // reject with requeue redelivers the message (redelivered flag set); nack without drops it.
    static void rejectRequeue(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String q = tempQueue(ch, null);
        ch.basicPublish("", q, null, bytes("once more"));
        BlockingQueue<Delivery> got = consume(ch, q, false);
        Delivery d = next(got, "the delivery");
        check(!d.envelope().isRedeliver(), "first delivery is not redelivered");
        ch.basicReject(d.envelope().getDeliveryTag(), true);
        Delivery again = next(got, "the redelivery");
        checkEquals("once more", again.body(), "same body");
        check(again.envelope().isRedeliver(), "redelivered flag");
        ch.basicNack(again.envelope().getDeliveryTag(), false, false);
        checkEquals(0, ch.queueDeclarePassive(q).getMessageCount(), "nack without requeue drops it");
        check(got.isEmpty(), "no further delivery");
        ch.close();
    }

    // A rejected message goes to the queue's dead-letter exchange with an x-death entry.
    static void deadLetter(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String dlx = "java-dlx-" + System.nanoTime();
        ch.exchangeDeclare(dlx, "direct", false, true, null);
        String dead = tempQueue(ch, null);
        ch.queueBind(dead, dlx, "dead");
        Map<String, Object> args = new HashMap<>();
        args.put("x-dead-letter-exchange", dlx);
        args.put("x-dead-letter-routing-key", "dead");
        String work = tempQueue(ch, args);
        ch.basicPublish("", work, new AMQP.BasicProperties.Builder().messageId("job-1").build(), bytes("job"));

        GetResponse r = ch.basicGet(work, false);
        check(r != null, "the job is in the work queue");
        ch.basicReject(r.getEnvelope().getDeliveryTag(), false);

        BlockingQueue<Delivery> got = consume(ch, dead, true);
        Delivery d = next(got, "the dead-lettered job");
        checkEquals("job", d.body(), "body");
        checkEquals("job-1", d.props().getMessageId(), "properties kept");
        checkEquals(dlx, d.envelope().getExchange(), "arrives through the DLX");
        checkEquals("dead", d.envelope().getRoutingKey(), "with the dead-letter routing key");
        @SuppressWarnings("unchecked")
        List<Map<String, Object>> deaths = (List<Map<String, Object>>) d.props().getHeaders().get("x-death");
        check(deaths != null && deaths.size() == 1, "one x-death entry: " + deaths);
        Map<String, Object> death = deaths.get(0);
        checkEquals("rejected", text(death.get("reason")), "x-death reason");
        checkEquals(work, text(death.get("queue")), "x-death queue");
        checkEquals(1L, death.get("count"), "x-death count");
        checkEquals("", text(death.get("exchange")), "x-death exchange");
        @SuppressWarnings("unchecked")
        List<Object> keys = (List<Object>) death.get("routing-keys");
        checkEquals(List.of(work), keys.stream().map(JavaClientInterop::text).toList(), "x-death routing keys");
        check(death.get("time") instanceof java.util.Date, "x-death time is a timestamp");
        checkEquals("rejected", text(d.props().getHeaders().get("x-first-death-reason")), "x-first-death-reason");
        ch.close();
    }

    // A mandatory message that routes nowhere comes back with basic.return 312 NO_ROUTE.
    static void mandatoryReturn(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        ch.confirmSelect();
        BlockingQueue<String> returns = new LinkedBlockingQueue<>();
        ch.addReturnListener((code, text, exchange, key, props, body) ->
            returns.add(code + " " + text + " " + exchange + "/" + key + " " + new String(body, StandardCharsets.UTF_8)));
        String key = "java-nowhere-" + System.nanoTime();
        ch.basicPublish("amq.direct", key, true, null, bytes("lost?"));
        ch.waitForConfirmsOrDie(TIMEOUT_S * 1000);  // the return comes before the confirm
        checkEquals("312 NO_ROUTE amq.direct/" + key + " lost?", returns.poll(), "basic.return");

        String q = tempQueue(ch, null);
        ch.basicPublish("", q, true, null, bytes("routed"));
        ch.waitForConfirmsOrDie(TIMEOUT_S * 1000);
        check(returns.isEmpty(), "a routed mandatory message is not returned");
        ch.close();
    }

    // Closing channel and connection is a normal, application-initiated shutdown.
    static void cleanClose(Connection conn) throws Exception {
        Channel ch = conn.createChannel();
        String q = tempQueue(ch, null);
        ch.basicPublish("", q, null, bytes("left unacked"));
        BlockingQueue<Delivery> got = consume(ch, q, false);
        next(got, "the delivery");
        BlockingQueue<ShutdownSignalException> closed = new LinkedBlockingQueue<>();
        conn.addShutdownListener(closed::add);
        ch.close();
        check(!ch.isOpen(), "channel closed");
        conn.close(5000);
        ShutdownSignalException why = closed.poll(TIMEOUT_S, TimeUnit.SECONDS);
        check(why != null, "the shutdown listener ran");
        check(why.isHardError(), "a connection-level shutdown");
        check(why.isInitiatedByApplication(), "initiated by the application");
        AMQP.Connection.Close reason = (AMQP.Connection.Close) why.getReason();
        checkEquals(200, reason.getReplyCode(), "reply code");
        check(!conn.isOpen(), "connection closed");
    }

    // The client's automatic recovery across a restart of the broker on its data and port: the
    // test kills and restarts the broker when this prints "restart now"; the connection, the
    // channels (confirm mode, qos) and the consumer come back, the delivery the consumer held
    // unacknowledged comes back redelivered, and publishing with confirms goes on.
    static void recoveryAfterRestart(Connection conn) throws Exception {
        BlockingQueue<Recoverable> recovered = new LinkedBlockingQueue<>();
        ((Recoverable) conn).addRecoveryListener(new RecoveryListener() {
            @Override
            public void handleRecovery(Recoverable r) {
                recovered.add(r);
            }

            @Override
            public void handleRecoveryStarted(Recoverable r) {}
        });
        Channel ch = conn.createChannel();
        String q = "java-recovery-" + UUID.randomUUID();
        ch.queueDeclare(q, true, false, false, null);
        ch.confirmSelect();
        ch.basicPublish("", q, MessageProperties.PERSISTENT_TEXT_PLAIN, bytes("before"));
        ch.waitForConfirmsOrDie(TIMEOUT_S * 1000);
        Channel consumer = conn.createChannel();
        consumer.basicQos(1);
        BlockingQueue<Delivery> got = consume(consumer, q, false);
        Delivery first = next(got, "the first delivery");
        checkEquals("before", first.body(), "first body");
        check(!first.envelope().isRedeliver(), "the first delivery is not redelivered");

        System.out.println("restart now");
        System.out.flush();
        check(recovered.poll(60, TimeUnit.SECONDS) != null, "the connection recovered");
        Delivery again = next(got, "the delivery held at the restart, again");
        checkEquals("before", again.body(), "body after the restart");
        check(again.envelope().isRedeliver(), "redelivered after the restart");
        consumer.basicAck(again.envelope().getDeliveryTag(), false);
        ch.basicPublish("", q, MessageProperties.PERSISTENT_TEXT_PLAIN, bytes("after"));
        ch.waitForConfirmsOrDie(TIMEOUT_S * 1000);
        Delivery later = next(got, "a message published after the restart");
        checkEquals("after", later.body(), "body published after the restart");
        check(!later.envelope().isRedeliver(), "a new message is not redelivered");
        consumer.basicAck(later.envelope().getDeliveryTag(), false);
        ch.queueDelete(q);
    }

    // Trusts the test CA; with a client certificate (PKCS#12, password "changeit") if asked.
    static SSLContext sslContext(boolean clientCertificate) throws Exception {
        String dir = System.getenv("TLS_DIR");
        check(dir != null, "TLS_DIR is set");
        KeyStore trust = KeyStore.getInstance(KeyStore.getDefaultType());
        trust.load(null, null);
        try (InputStream in = new FileInputStream(dir + "/ca.pem")) {
            trust.setCertificateEntry("ca", CertificateFactory.getInstance("X.509").generateCertificate(in));
        }
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trust);
        KeyManager[] keys = null;
        if (clientCertificate) {
            char[] password = "changeit".toCharArray();
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(dir + "/client-guest.p12")) {
                ks.load(in, password);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, password);
            keys = kmf.getKeyManagers();
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(keys, tmf.getTrustManagers(), null);
        return ctx;
    }

    // The whole cause chain as text: the client wraps a broker's close in several exceptions.
    static String causes(Throwable t) {
        StringBuilder b = new StringBuilder();
        for (; t != null; t = t.getCause()) b.append(t).append(" / ");
        return b.toString();
    }

    // Users, vhosts and permissions, with test_auth.py's definitions loaded by the broker (alice,
    // password test12, may use names starting "alice." in vhost "orders" and nothing in "/").
    static void permissions(Connection conn) throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setHost(conn.getAddress().getHostAddress());
        f.setPort(conn.getPort());
        f.setUsername("alice");
        f.setPassword("test12");
        f.setAutomaticRecoveryEnabled(false);
        f.setVirtualHost("/");
        try {
            f.newConnection("java-interop-vhost").close();
            check(false, "vhost '/' is refused to alice");
        } catch (Exception e) {
            check(causes(e).contains("NOT_ALLOWED - access to vhost '/' refused for user 'alice'"),
                  "530 text for vhost '/': " + causes(e));
        }
        f.setVirtualHost("orders");
        Connection alice = f.newConnection("java-interop-permissions");
        try {
            Channel ch = alice.createChannel();
            ch.queueDeclare("alice.java", false, false, true, null);
            try {
                ch.queueDeclare("bob.java", false, false, true, null);
                check(false, "queue bob.java is refused to alice");
            } catch (Exception e) {
                check(causes(e).contains(
                          "ACCESS_REFUSED - access to queue 'bob.java' in vhost 'orders' refused for user 'alice'"),
                      "403 text for bob.java: " + causes(e));
            }
            check(!ch.isOpen(), "the channel is closed");
            check(alice.isOpen(), "the connection stays open");
        } finally {
            if (alice.isOpen()) alice.close(5000);
        }
    }

    public static void main(String[] argv) throws Exception {
        if (argv.length == 1 && argv[0].equals("--list")) {
            SCENARIOS.keySet().forEach(System.out::println);
            return;
        }
        if (argv.length != 5 || !SCENARIOS.containsKey(argv[0])) {
            System.err.println("usage: JavaClientInterop SCENARIO HOST PORT USER PASSWORD | --list");
            System.exit(2);
        }
        ConnectionFactory f = new ConnectionFactory();
        f.setHost(argv[1]);
        f.setPort(Integer.parseInt(argv[2]));
        f.setUsername(argv[3]);
        f.setPassword(argv[4]);
        // A lost connection must fail the test, except where recovery is what is tested.
        boolean recovery = argv[0].equals("recovery_after_restart");
        f.setAutomaticRecoveryEnabled(recovery);
        f.setNetworkRecoveryInterval(100);
        if (argv[0].startsWith("tls_")) {
            boolean external = argv[0].equals("tls_external");
            f.useSslProtocol(sslContext(external));
            if (external) f.setSaslConfig(DefaultSaslConfig.EXTERNAL);
        }
        Connection conn = f.newConnection("java-interop-" + argv[0]);
        try {
            SCENARIOS.get(argv[0]).run(conn);
        } finally {
            if (conn.isOpen()) conn.close(5000);
        }
        System.out.println("ok " + argv[0]);
    }
}
