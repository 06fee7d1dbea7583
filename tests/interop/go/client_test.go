// The Go client (github.com/rabbitmq/amqp091-go, Debian's package) against a running broker:
// connect, publish/consume, confirms, qos and ack, reject with requeue, dead-lettering,
// mandatory returns, channel.flow and clean closes. Built offline in GOPATH mode and run by
// tests/interop/python/test_go_client.py with the broker's URL in AMQP_URL.
package interop

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// An upper bound for one awaited event on a loaded 2-core machine; never a timing assertion.
const timeout = 20 * time.Second

func brokerURL(t *testing.T) string {
	u := os.Getenv("AMQP_URL")
	if u == "" {
		t.Fatal("AMQP_URL is not set (run through tests/interop/run.sh -k test_go)")
	}
	return u
}

func isRabbitMQ() bool { return os.Getenv("INTEROP_BROKER") == "rabbitmq" }

func dial(t *testing.T) *amqp.Connection {
	t.Helper()
	conn, err := amqp.Dial(brokerURL(t))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() {
		if !conn.IsClosed() {
			conn.Close()
		}
	})
	return conn
}

func channel(t *testing.T, conn *amqp.Connection) *amqp.Channel {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// A server-named, exclusive queue (deleted with its connection).
func tempQueue(t *testing.T, ch *amqp.Channel, args amqp.Table) string {
	t.Helper()
	q, err := ch.QueueDeclare("", false, false, true, false, args)
	if err != nil {
		t.Fatalf("queue.declare: %v", err)
	}
	return q.Name
}

func publish(t *testing.T, ch *amqp.Channel, exchange, key string, body string) {
	t.Helper()
	if err := ch.Publish(exchange, key, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

func next(t *testing.T, deliveries <-chan amqp.Delivery) amqp.Delivery {
	t.Helper()
	select {
	case d, ok := <-deliveries:
		if !ok {
			t.Fatal("the delivery channel closed")
		}
		return d
	case <-time.After(timeout):
		t.Fatal("timed out waiting for a delivery")
	}
	return amqp.Delivery{}
}

// The queue's ready count after two round trips on ch: the broker dispatches at the end of a
// loop turn, after it has answered the first queue.declare, so the second answer reflects any
// delivery the previous frames could have caused.
func settledCount(t *testing.T, ch *amqp.Channel, queue string) int {
	t.Helper()
	var q amqp.Queue
	var err error
	for i := 0; i < 2; i++ {
		if q, err = ch.QueueInspect(queue); err != nil {
			t.Fatalf("queue.declare passive: %v", err)
		}
	}
	return q.Messages
}

func TestConnectAdvertisesCapabilities(t *testing.T) {
	conn := dial(t)
	for _, c := range []string{"publisher_confirms", "basic.nack", "consumer_cancel_notify",
		"connection.blocked", "exchange_exchange_bindings", "per_consumer_qos"} {
		caps, _ := conn.Properties["capabilities"].(amqp.Table)
		if on, _ := caps[c].(bool); !on {
			t.Errorf("capability %s missing from %v", c, caps)
		}
	}
	ch := channel(t, conn)
	if err := ch.Close(); err != nil {
		t.Fatalf("channel.close: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatalf("connection.close: %v", err)
	}
}

func TestPublishConsumeInOrder(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	q := tempQueue(t, ch, nil)
	const n = 100
	for i := 0; i < n; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	for i := 0; i < n; i++ {
		d := next(t, deliveries)
		if string(d.Body) != fmt.Sprint(i) || d.Redelivered || d.RoutingKey != q {
			t.Fatalf("delivery %d: body %q redelivered %v key %q", i, d.Body, d.Redelivered, d.RoutingKey)
		}
		if err := d.Ack(false); err != nil {
			t.Fatalf("ack: %v", err)
		}
	}
	if c := settledCount(t, ch, q); c != 0 {
		t.Fatalf("%d messages left after acking every one", c)
	}
}

func TestPublisherConfirms(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	q := tempQueue(t, ch, nil)
	const n = 500
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, n))
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	for i := 0; i < n; i++ {
		publish(t, ch, "", q, "confirmed")
	}
	// The client expands multiple acks: one confirmation per publish, in order.
	for i := 1; i <= n; i++ {
		select {
		case c := <-confirms:
			if !c.Ack || c.DeliveryTag != uint64(i) {
				t.Fatalf("confirmation %d: %+v", i, c)
			}
		case <-time.After(timeout):
			t.Fatalf("timed out waiting for confirmation %d", i)
		}
	}
	if c := settledCount(t, ch, q); c != n {
		t.Fatalf("queue holds %d messages, want %d", c, n)
	}
}

func TestQosHoldsDeliveriesUntilAck(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	q := tempQueue(t, ch, nil)
	for i := 0; i < 5; i++ {
		publish(t, ch, "", q, fmt.Sprint(i))
	}
	if err := ch.Qos(2, 0, false); err != nil {
		t.Fatalf("basic.qos: %v", err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	first := next(t, deliveries)
	next(t, deliveries) // the second stays unacked until the multiple ack below
	if c := settledCount(t, ch, q); c != 3 {
		t.Fatalf("with prefetch 2 and nothing acked, %d ready, want 3", c)
	}
	if err := first.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	third := next(t, deliveries)
	if string(third.Body) != "2" {
		t.Fatalf("after one ack got %q, want \"2\"", third.Body)
	}
	if c := settledCount(t, ch, q); c != 2 {
		t.Fatalf("%d ready after one ack, want 2", c)
	}
	if err := third.Ack(true); err != nil { // multiple: acks the second and the third
		t.Fatalf("ack multiple: %v", err)
	}
	for _, want := range []string{"3", "4"} {
		if d := next(t, deliveries); string(d.Body) != want {
			t.Fatalf("got %q, want %q", d.Body, want)
		}
	}
}

func TestRejectWithRequeueRedelivers(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	q := tempQueue(t, ch, nil)
	publish(t, ch, "", q, "again")
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	d := next(t, deliveries)
	if d.Redelivered {
		t.Fatal("first delivery marked redelivered")
	}
	if err := d.Reject(true); err != nil {
		t.Fatalf("reject: %v", err)
	}
	again := next(t, deliveries)
	if string(again.Body) != "again" || !again.Redelivered {
		t.Fatalf("redelivery: body %q redelivered %v", again.Body, again.Redelivered)
	}
	if err := again.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
}

func TestNackWithoutRequeueDeadLetters(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	dlx := fmt.Sprintf("go-dlx-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(dlx, "fanout", false, true, false, false, nil); err != nil {
		t.Fatalf("exchange.declare: %v", err)
	}
	dead := tempQueue(t, ch, nil)
	if err := ch.QueueBind(dead, "", dlx, false, nil); err != nil {
		t.Fatalf("queue.bind: %v", err)
	}
	work := tempQueue(t, ch, amqp.Table{"x-dead-letter-exchange": dlx})
	publish(t, ch, "", work, "poison")
	deliveries, err := ch.Consume(work, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	if err := next(t, deliveries).Nack(false, false); err != nil {
		t.Fatalf("nack: %v", err)
	}
	deadDeliveries, err := ch.Consume(dead, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	d := next(t, deadDeliveries)
	if string(d.Body) != "poison" || d.Exchange != dlx || d.RoutingKey != work {
		t.Fatalf("dead letter: body %q exchange %q key %q", d.Body, d.Exchange, d.RoutingKey)
	}
	deaths, ok := d.Headers["x-death"].([]interface{})
	if !ok || len(deaths) != 1 {
		t.Fatalf("x-death: %#v", d.Headers["x-death"])
	}
	death := deaths[0].(amqp.Table)
	if death["reason"] != "rejected" || death["queue"] != work || death["count"] != int64(1) ||
		death["exchange"] != "" {
		t.Fatalf("x-death entry: %#v", death)
	}
}

func TestMandatoryUnroutableIsReturned(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 1))
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	key := fmt.Sprintf("nobody-%d", time.Now().UnixNano())
	if err := ch.Publish("amq.direct", key, true, false, amqp.Publishing{Body: []byte("lost")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case r := <-returns:
		if r.ReplyCode != 312 || r.ReplyText != "NO_ROUTE" || r.Exchange != "amq.direct" ||
			r.RoutingKey != key || string(r.Body) != "lost" {
			t.Fatalf("basic.return: %+v", r)
		}
	case <-time.After(timeout):
		t.Fatal("timed out waiting for basic.return")
	}
	// RabbitMQ acks an unroutable message after returning it.
	select {
	case c := <-confirms:
		if !c.Ack {
			t.Fatalf("unroutable message was nacked: %+v", c)
		}
	case <-time.After(timeout):
		t.Fatal("timed out waiting for the confirm")
	}
}

// channel.flow from the client (the client's TestIntegrationConsumeFlow): deliveries stop while
// the channel is paused and resume after flow(true). RabbitMQ answers active=false with 540.
func TestChannelFlowPausesAndResumesDeliveries(t *testing.T) {
	if isRabbitMQ() {
		t.Skip("RabbitMQ answers channel.flow active=false with 540 NOT_IMPLEMENTED")
	}
	pubConn, subConn := dial(t), dial(t)
	pub, sub := channel(t, pubConn), channel(t, subConn)
	q := tempQueue(t, sub, nil)
	if err := sub.Qos(1, 0, false); err != nil {
		t.Fatalf("basic.qos: %v", err)
	}
	deliveries, err := sub.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	publish(t, pub, "", q, "pub 1")
	publish(t, pub, "", q, "pub 2")
	first := next(t, deliveries)
	if string(first.Body) != "pub 1" {
		t.Fatalf("got %q, want \"pub 1\"", first.Body)
	}
	if err := sub.Flow(false); err != nil {
		t.Fatalf("channel.flow false: %v", err)
	}
	if err := first.Ack(false); err != nil {
		t.Fatalf("ack: %v", err)
	}
	// The ack gave the consumer credit; a paused channel still gets nothing.
	inspect := channel(t, subConn)
	if c := settledCount(t, inspect, q); c != 1 {
		t.Fatalf("%d ready while the channel is paused, want 1", c)
	}
	select {
	case d := <-deliveries:
		t.Fatalf("delivery %q while the channel was paused", d.Body)
	default:
	}
	if err := sub.Flow(true); err != nil {
		t.Fatalf("channel.flow true: %v", err)
	}
	if d := next(t, deliveries); string(d.Body) != "pub 2" {
		t.Fatalf("after flow(true) got %q, want \"pub 2\"", d.Body)
	}
}

// Close from many goroutines at once (the client's TestConcurrentClose), 50 times: every call
// returns nil, ErrClosed or a net error, never an *amqp.Error. Before the fix the broker closed
// its end right after close-ok and the client's reader could see EOF before it had handed
// close-ok to the caller: "Exception (501) Reason: EOF".
func TestConcurrentCloseIsClean(t *testing.T) {
	const concurrency, rounds = 32, 50
	for round := 0; round < rounds; round++ {
		conn, err := amqp.Dial(brokerURL(t))
		if err != nil {
			t.Fatalf("round %d: dial: %v", round, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, concurrency)
		for i := 0; i < concurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := conn.Close()
				var opErr *net.OpError
				if err == nil || err == amqp.ErrClosed || errors.As(err, &opErr) {
					return
				}
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: Close() returned %v", round, err)
		}
	}
}

// One Close() on a busy connection: it returns nil, and the connection's NotifyClose channel
// closes without an error.
func TestCloseAfterWorkReturnsNil(t *testing.T) {
	for round := 0; round < 20; round++ {
		conn, err := amqp.Dial(brokerURL(t))
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		closed := conn.NotifyClose(make(chan *amqp.Error, 1))
		ch := channel(t, conn)
		q := tempQueue(t, ch, nil)
		publish(t, ch, "", q, "x")
		if err := conn.Close(); err != nil {
			t.Fatalf("round %d: Close() returned %v", round, err)
		}
		if e, ok := <-closed; ok {
			t.Fatalf("round %d: NotifyClose got %v", round, e)
		}
	}
}
