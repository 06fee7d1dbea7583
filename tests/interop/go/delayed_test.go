// The Go client with delayed delivery and retries: the x-delayed-message exchange with each
// underlying type (routed when the delay ends, x-delay made negative, confirmed when stored),
// and retry with backoff ending in the delivery limit and dead-lettering. Warren-only: Debian's
// RabbitMQ 3.10 has neither the plugin nor RabbitMQ 4.3's delayed retry.
package interop

import (
	"fmt"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func skipOnRabbitMQ(t *testing.T) {
	if isRabbitMQ() {
		t.Skip("Debian's RabbitMQ 3.10 has no delayed-message plugin and no delayed retry")
	}
}

func TestDelayedExchangeEachType(t *testing.T) {
	skipOnRabbitMQ(t)
	conn := dial(t)
	ch := channel(t, conn)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 16))
	for _, c := range []struct {
		kind, bindKey, key string
		bindArgs, headers  amqp.Table
	}{
		{"direct", "jobs", "jobs", nil, amqp.Table{}},
		{"topic", "pdf.*", "pdf.render", nil, amqp.Table{}},
		{"fanout", "", "any", nil, amqp.Table{}},
		{"headers", "", "", amqp.Table{"x-match": "all", "kind": "pdf"}, amqp.Table{"kind": "pdf"}},
	} {
		x := fmt.Sprintf("go-later-%s-%d", c.kind, time.Now().UnixNano())
		if err := ch.ExchangeDeclare(x, "x-delayed-message", true, true, false, false,
			amqp.Table{"x-delayed-type": c.kind}); err != nil {
			t.Fatalf("%s: exchange.declare: %v", c.kind, err)
		}
		q := tempQueue(t, ch, nil)
		if err := ch.QueueBind(q, c.bindKey, x, false, c.bindArgs); err != nil {
			t.Fatalf("%s: queue.bind: %v", c.kind, err)
		}
		headers := amqp.Table{"x-delay": int32(500)}
		for k, v := range c.headers {
			headers[k] = v
		}
		published := time.Now()
		if err := ch.Publish(x, c.key, false, false, amqp.Publishing{Headers: headers, Body: []byte("later"),
			DeliveryMode: amqp.Persistent}); err != nil {
			t.Fatalf("%s: publish: %v", c.kind, err)
		}
		select {
		case conf := <-confirms:
			if !conf.Ack {
				t.Fatalf("%s: nacked", c.kind)
			}
		case <-time.After(timeout):
			t.Fatalf("%s: no confirm", c.kind)
		}
		deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
		if err != nil {
			t.Fatalf("%s: consume: %v", c.kind, err)
		}
		d := next(t, deliveries)
		if waited := time.Since(published); waited < 500*time.Millisecond {
			t.Fatalf("%s: delivered after %v, before its 500 ms", c.kind, waited)
		}
		if string(d.Body) != "later" || d.Exchange != x || d.RoutingKey != c.key {
			t.Fatalf("%s: %q from %q/%q", c.kind, d.Body, d.Exchange, d.RoutingKey)
		}
		if delay, _ := d.Headers["x-delay"].(int32); delay != -500 {
			t.Fatalf("%s: x-delay %#v on delivery, want -500", c.kind, d.Headers["x-delay"])
		}
		if err := ch.ExchangeDelete(x, false, false); err != nil {
			t.Fatalf("%s: exchange.delete: %v", c.kind, err)
		}
	}
}

func TestDelayedRetryThenDeadLetter(t *testing.T) {
	skipOnRabbitMQ(t)
	conn := dial(t)
	ch := channel(t, conn)
	dead := tempQueue(t, ch, nil)
	work := tempQueue(t, ch, amqp.Table{
		"x-delayed-retry-type": "all", "x-delayed-retry-min": int32(100), "x-delayed-retry-max": int32(400),
		"x-delivery-limit": int32(2), "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dead})
	publish(t, ch, "", work, "job")
	deliveries, err := ch.Consume(work, "", false, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	var returned time.Time
	for attempt := 0; attempt <= 2; attempt++ {
		d := next(t, deliveries)
		if attempt > 0 {
			if waited, want := time.Since(returned), time.Duration(attempt)*100*time.Millisecond; waited < want {
				t.Fatalf("attempt %d came after %v, before its %v backoff", attempt, waited, want)
			}
			if count, _ := d.Headers["x-delivery-count"].(int64); count != int64(attempt) {
				t.Fatalf("attempt %d: x-delivery-count %#v", attempt, d.Headers["x-delivery-count"])
			}
		}
		returned = time.Now()
		if err := d.Nack(false, true); err != nil {
			t.Fatalf("nack: %v", err)
		}
	}
	deadDeliveries, err := ch.Consume(dead, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	d := next(t, deadDeliveries)
	if reason, _ := d.Headers["x-last-death-reason"].(string); reason != "delivery_limit" || string(d.Body) != "job" {
		t.Fatalf("dead letter %q with reason %#v", d.Body, d.Headers["x-last-death-reason"])
	}
}
