// Super streams and consumer groups with the Go client: a super stream declared by plain AMQP,
// groups of 1, 2 and 5 members over 6 partitions (x-stream-group on a consumer per partition),
// members joining and leaving (cancel, ack what came, close) while messages flow: every message
// of every key reaches exactly one member of each group, in order per key.
package interop

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const groupPartitions = 6

// groupLog is what one group received, in the order its members received it.
type groupLog struct {
	mu      sync.Mutex
	bodies  []string
	by      map[string]int // member -> deliveries
	changed chan struct{}  // signalled after each delivery
}

func (l *groupLog) add(member, body string) {
	l.mu.Lock()
	l.bodies = append(l.bodies, body)
	l.by[member]++
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

func (l *groupLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.bodies)
}

type groupMember struct {
	name string
	conn *amqp.Connection
	ch   *amqp.Channel
	tags []string
	done sync.WaitGroup
}

func joinGroup(t *testing.T, stream, group, name string, log *groupLog) *groupMember {
	t.Helper()
	m := &groupMember{name: name}
	var err error
	if m.conn, err = amqp.Dial(brokerURL(t)); err != nil {
		t.Fatalf("dial: %v", err)
	}
	m.ch = channel(t, m.conn)
	if err := m.ch.Qos(20, 0, false); err != nil {
		t.Fatalf("basic.qos: %v", err)
	}
	for i := 0; i < groupPartitions; i++ {
		tag := fmt.Sprintf("%s-%d", name, i)
		deliveries, err := m.ch.Consume(fmt.Sprintf("%s-%d", stream, i), tag, false, false, false, false,
			amqp.Table{"x-stream-group": group, "x-stream-offset": "first"})
		if err != nil {
			t.Fatalf("consume: %v", err)
		}
		m.tags = append(m.tags, tag)
		m.done.Add(1)
		go func() {
			defer m.done.Done()
			for d := range deliveries {
				log.add(name, string(d.Body))
				time.Sleep(200 * time.Microsecond) // some work: deliveries wait in the prefetch window
				d.Ack(false)
			}
		}()
	}
	return m
}

// leave cancels every consumer, acks what was still on its way (the delivery channels close
// after the cancel-oks), then closes: the partitions change hands with nothing read twice.
func (m *groupMember) leave(t *testing.T) {
	t.Helper()
	for _, tag := range m.tags {
		if err := m.ch.Cancel(tag, false); err != nil {
			t.Fatalf("basic.cancel: %v", err)
		}
	}
	m.done.Wait()
	m.ch.Close()
	m.conn.Close()
}

func TestStreamGroups(t *testing.T) {
	if isRabbitMQ() {
		t.Skip("consumer groups (x-stream-group) are Warren's")
	}
	conn := dial(t)
	ch := channel(t, conn)
	stream := fmt.Sprintf("go-clicks-%d", time.Now().UnixNano())
	if err := ch.ExchangeDeclare(stream, "x-consistent-hash", true, false, false, false,
		amqp.Table{"x-super-stream": true}); err != nil {
		t.Fatalf("exchange.declare: %v", err)
	}
	for i := 0; i < groupPartitions; i++ {
		q := fmt.Sprintf("%s-%d", stream, i)
		if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "stream"}); err != nil {
			t.Fatalf("queue.declare: %v", err)
		}
		if err := ch.QueueBind(q, "1", stream, false, amqp.Table{"x-stream-partition-order": int64(i)}); err != nil {
			t.Fatalf("queue.bind: %v", err)
		}
	}
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm.select: %v", err)
	}
	confirms := ch.NotifyPublish(make(chan amqp.Confirmation, 200))
	seq := map[string]int{}
	sent := 0
	publishRound := func(perKey int) {
		for r := 0; r < perKey; r++ {
			for k := 0; k < 30; k++ {
				key := fmt.Sprintf("ad-%d", k)
				seq[key]++
				body := fmt.Sprintf("%s:%d", key, seq[key])
				if err := ch.Publish(stream, key, false, false, amqp.Publishing{Body: []byte(body)}); err != nil {
					t.Fatalf("publish: %v", err)
				}
				sent++
			}
		}
		// Pipelined, then every confirm: the members have a backlog to read while others join.
		for i := 0; i < perKey*30; i++ {
			select {
			case c := <-confirms:
				if !c.Ack {
					t.Fatal("publish nacked")
				}
			case <-time.After(timeout):
				t.Fatal("timed out waiting for a confirm")
			}
		}
	}
	logs := map[string]*groupLog{}
	members := map[string][]*groupMember{}
	join := func(group, name string) {
		if logs[group] == nil {
			logs[group] = &groupLog{by: map[string]int{}, changed: make(chan struct{}, 1)}
		}
		members[group] = append(members[group], joinGroup(t, stream, group, name, logs[group]))
	}
	leave := func(group string, i int) {
		members[group][i].leave(t)
		members[group] = append(members[group][:i], members[group][i+1:]...)
	}
	waitAll := func(what string) {
		deadline := time.After(60 * time.Second)
		for _, g := range []string{"one", "two", "five"} {
			for logs[g].count() < sent {
				select {
				case <-logs[g].changed:
				case <-deadline:
					t.Fatalf("%s: group %s has %d of %d", what, g, logs[g].count(), sent)
				}
			}
		}
	}
	join("one", "o1")
	join("two", "t1")
	for i := 1; i <= 4; i++ {
		join("five", fmt.Sprintf("f%d", i))
	}
	publishRound(5)
	// While those are read: one member joins each larger group, one leaves "five".
	join("two", "t2")
	join("five", "f5")
	leave("five", 1)
	publishRound(5)
	join("five", "f6")
	leave("two", 0)
	join("two", "t3")
	publishRound(5)
	waitAll("all rounds")
	for g, l := range logs {
		seen := map[string]bool{}
		last := map[string]int{}
		for _, b := range l.bodies {
			if seen[b] {
				t.Fatalf("group %s: %s delivered twice", g, b)
			}
			seen[b] = true
			key, number, _ := strings.Cut(b, ":")
			n, err := strconv.Atoi(number)
			if err != nil {
				t.Fatalf("body %q: %v", b, err)
			}
			if n != last[key]+1 {
				t.Fatalf("group %s: %s out of order (after %d)", g, b, last[key])
			}
			last[key] = n
		}
		if len(l.bodies) != sent {
			t.Fatalf("group %s: %d of %d", g, len(l.bodies), sent)
		}
		t.Logf("group %s: %v", g, l.by)
	}
	for _, ms := range members {
		for _, m := range ms {
			m.leave(t)
		}
	}
}
