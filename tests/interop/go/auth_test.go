// Users, vhosts and permissions through the Go client: the broker is started with
// tests/interop/python/test_auth.py's definitions (alice/test12, permissions in vhost
// "orders" on names starting "alice.", topic write on amq.topic for keys starting "alice.").
package interop

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func dialAs(t *testing.T, user, password, vhost string) (*amqp.Connection, error) {
	t.Helper()
	conn, err := amqp.DialConfig(brokerURL(t), amqp.Config{
		Vhost: vhost,
		SASL:  []amqp.Authentication{&amqp.PlainAuth{Username: user, Password: password}},
	})
	if err == nil {
		t.Cleanup(func() {
			if !conn.IsClosed() {
				conn.Close()
			}
		})
	}
	return conn, err
}

func expectAmqpError(t *testing.T, err error, code int, text string) {
	t.Helper()
	var e *amqp.Error
	if !errors.As(err, &e) {
		t.Fatalf("expected AMQP error %d %q, got %v", code, text, err)
	}
	if e.Code != code || e.Reason != text {
		t.Fatalf("expected %d %q, got %d %q", code, text, e.Code, e.Reason)
	}
}

func TestVhostAccessAndPermissions(t *testing.T) {
	// The client reports a connection.close in answer to connection.open as ErrVhost.
	if _, err := dialAs(t, "alice", "test12", "/"); !errors.Is(err, amqp.ErrVhost) {
		t.Fatalf("vhost '/' as alice: expected ErrVhost, got %v", err)
	}

	_, err := dialAs(t, "alice", "wrong", "orders")
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("a wrong password: expected a 403 refusal, got %v", err)
	}

	conn, err := dialAs(t, "alice", "test12", "orders")
	if err != nil {
		t.Fatalf("dial orders as alice: %v", err)
	}
	ch := channel(t, conn)
	if _, err := ch.QueueDeclare("alice.go", false, true, false, false, nil); err != nil {
		t.Fatalf("queue.declare alice.go: %v", err)
	}
	_, err = ch.QueueDeclare("bob.go", false, true, false, false, nil)
	expectAmqpError(t, err, 403, "ACCESS_REFUSED - access to queue 'bob.go' in vhost 'orders' refused for user 'alice'")
}

func TestTopicPermissionRefusesPublish(t *testing.T) {
	conn, err := dialAs(t, "alice", "test12", "orders")
	if err != nil {
		t.Fatalf("dial orders as alice: %v", err)
	}
	ch := channel(t, conn)
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	confirm, err := ch.PublishWithDeferredConfirm("amq.topic", "alice.created", false, false, amqp.Publishing{Body: []byte("ok")})
	if err != nil || !confirm.Wait() {
		t.Fatalf("publish alice.created: not confirmed (%v)", err)
	}
	if err := ch.Publish("amq.topic", "bob.created", false, false, amqp.Publishing{Body: []byte("no")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case e := <-closed:
		expectAmqpError(t, e, 403, "ACCESS_REFUSED - access to topic 'bob.created' in exchange 'amq.topic' in vhost 'orders' refused for user 'alice'")
	case <-time.After(timeout):
		t.Fatal("no channel.close for the refused publish")
	}
}
