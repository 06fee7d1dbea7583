// Stream queues with the Go client: offsets of every kind (first, last, next, a number, a
// timestamp, an interval), x-stream-offset on each delivery, filters, and a named consumer
// resuming where it acked (x-stream-consumer-name, Warren's offset tracking).
package interop

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func declareStream(t *testing.T, ch *amqp.Channel, args amqp.Table) string {
	t.Helper()
	name := fmt.Sprintf("go-stream-%d", time.Now().UnixNano())
	a := amqp.Table{"x-queue-type": "stream"}
	for k, v := range args {
		a[k] = v
	}
	if _, err := ch.QueueDeclare(name, true, false, false, false, a); err != nil {
		t.Fatalf("queue.declare stream: %v", err)
	}
	t.Cleanup(func() {
		if c, err := amqp.Dial(brokerURL(t)); err == nil {
			if x, err := c.Channel(); err == nil {
				x.QueueDelete(name, false, false, false)
			}
			c.Close()
		}
	})
	return name
}

// publishConfirmed publishes on a channel of its own (a confirm listener per call would block
// the client once an earlier listener's buffer is full) and waits for every confirm.
func publishConfirmed(t *testing.T, conn *amqp.Connection, q string, headers amqp.Table, bodies ...string) {
	t.Helper()
	ch := channel(t, conn)
	defer ch.Close()
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, len(bodies)))
	for _, b := range bodies {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Headers: headers, Body: []byte(b)}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	for range bodies {
		select {
		case c := <-confirms:
			if !c.Ack {
				t.Fatalf("publish nacked")
			}
		case <-time.After(timeout):
			t.Fatal("timed out waiting for a confirm")
		}
	}
}

// readStream consumes n deliveries with these consumer arguments, acking each, and returns
// "offset:body" strings.
func readStream(t *testing.T, conn *amqp.Connection, q string, n int, args amqp.Table) []string {
	t.Helper()
	ch := channel(t, conn)
	defer ch.Close()
	if err := ch.Qos(50, 0, false); err != nil {
		t.Fatalf("basic.qos: %v", err)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, args)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var got []string
	for len(got) < n {
		d := next(t, deliveries)
		off, ok := d.Headers["x-stream-offset"].(int64)
		if !ok {
			t.Fatalf("delivery without an int64 x-stream-offset: %v", d.Headers)
		}
		got = append(got, fmt.Sprintf("%d:%s", off, d.Body))
		d.Ack(false)
	}
	return got
}

func TestStreamOffsets(t *testing.T) {
	conn := dial(t)
	ch := channel(t, conn)
	q := declareStream(t, ch, nil)
	publishConfirmed(t, conn, q, nil, "a", "b", "c")
	cases := []struct {
		offset interface{}
		want   string
	}{
		{"first", "0:a"},
		{int64(2), "2:c"},
		{int32(-3), "0:a"},
		{time.Unix(0, 0), "0:a"},
		{"10m", "0:a"},
	}
	for _, c := range cases {
		got := readStream(t, conn, q, 1, amqp.Table{"x-stream-offset": c.offset})
		if got[0] != c.want {
			t.Fatalf("x-stream-offset %v: first delivery %s, want %s", c.offset, got[0], c.want)
		}
	}
	if last := readStream(t, conn, q, 1, amqp.Table{"x-stream-offset": "last"}); last[0] > "2:c" {
		t.Fatalf("last gave %v", last)
	}
	// next: only what comes after the consumer.
	ch2 := channel(t, conn)
	ch2.Qos(10, 0, false)
	deliveries, err := ch2.Consume(q, "", false, false, false, false, amqp.Table{"x-stream-offset": "next"})
	if err != nil {
		t.Fatalf("consume next: %v", err)
	}
	publishConfirmed(t, conn, q, nil, "d")
	if d := next(t, deliveries); string(d.Body) != "d" || d.Headers["x-stream-offset"] != int64(3) {
		t.Fatalf("next consumer got %q at %v", d.Body, d.Headers["x-stream-offset"])
	}
}

func TestStreamFilter(t *testing.T) {
	if isRabbitMQ() {
		t.Skip("Warren-only: stream filtering is RabbitMQ 3.13's; the reference node runs 3.10")
	}
	conn := dial(t)
	ch := channel(t, conn)
	q := declareStream(t, ch, nil)
	publishConfirmed(t, conn, q, amqp.Table{"x-stream-filter-value": "eu"}, "eu-1")
	publishConfirmed(t, conn, q, amqp.Table{"x-stream-filter-value": "us"}, "us-1")
	publishConfirmed(t, conn, q, nil, "none")
	publishConfirmed(t, conn, q, amqp.Table{"x-stream-filter-value": "eu"}, "eu-2")
	got := readStream(t, conn, q, 2, amqp.Table{"x-stream-offset": "first", "x-stream-filter": "eu"})
	if fmt.Sprint(got) != "[0:eu-1 3:eu-2]" {
		t.Fatalf("filter eu got %v", got)
	}
}

func TestStreamNamedConsumerResumes(t *testing.T) {
	if isRabbitMQ() {
		t.Skip("Warren-only: x-stream-consumer-name (offsets tracked by the broker)")
	}
	conn := dial(t)
	ch := channel(t, conn)
	q := declareStream(t, ch, nil)
	publishConfirmed(t, conn, q, nil, "0", "1", "2", "3", "4")
	named := amqp.Table{"x-stream-consumer-name": "settlement", "x-stream-offset": "first"}
	readStream(t, conn, q, 3, named)
	conn.Close()
	conn = dial(t)
	if got := readStream(t, conn, q, 2, named); fmt.Sprint(got) != "[3:3 4:4]" {
		t.Fatalf("resumed at %v, want [3:3 4:4]", got)
	}
}
