// One scenario run with amqp091-go, written as an application would: a connection and channel
// per producer and per consumer, Publish in a loop, Ack from the range over deliveries. Each
// Publish and each Ack is the library's own write (TCP_NODELAY is Go's default).
package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// A queue with its producers and consumers. Producers take a token per publish and consumers
// return one per delivery, so a flow never holds more than MaxInflight unconsumed messages.
type flow struct {
	queue     string
	tokens    chan struct{}
	published atomic.Uint64
	consumed  atomic.Uint64
}

type generator struct {
	s         Scenario
	url       string
	flows     []*flow
	conns     []*amqp.Connection // producers' and consumers' connections
	control   *amqp.Connection
	controlCh *amqp.Channel

	done      chan struct{} // closed to stop the producers
	failed    chan struct{} // closed on the first error
	errOnce   sync.Once
	err       error
	closing   atomic.Bool // our own closes are not errors
	measuring atomic.Bool
	blocked   atomic.Bool
	confirmed atomic.Uint64
	nacked    atomic.Uint64

	consumers sync.WaitGroup
	samples   [][]int64 // latency samples in ns, one slice per consumer, read after it ends
}

var epoch = time.Now()

// Monotonic nanoseconds since the generator started: the send time stamped into each body.
func nanotime() int64 { return int64(time.Since(epoch)) }

func (g *generator) fail(err error) {
	g.errOnce.Do(func() {
		g.err = err
		close(g.failed)
	})
}

func (g *generator) dial(role string) (*amqp.Connection, *amqp.Channel, error) {
	var conn *amqp.Connection
	var err error
	if tlsConfig != nil {
		conn, err = amqp.DialTLS(g.url, tlsConfig)
	} else {
		conn, err = amqp.Dial(g.url)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", role, err)
	}
	closes := conn.NotifyClose(make(chan *amqp.Error, 1))
	go func() {
		if e := <-closes; e != nil && !g.closing.Load() {
			g.fail(fmt.Errorf("%s connection: %v", role, e))
		}
	}()
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() {
		for b := range blocked {
			if b.Active {
				g.blocked.Store(true)
			}
		}
	}()
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("%s channel: %w", role, err)
	}
	return conn, ch, nil
}

func (g *generator) setup() error {
	var err error
	g.control, g.controlCh, err = g.dial("control")
	if err != nil {
		return err
	}
	for q := 0; q < g.s.Queues; q++ {
		f := &flow{queue: fmt.Sprintf("warren-bench-go-%d-%s-%d", os.Getpid(), g.s.Name, q),
			tokens: make(chan struct{}, g.s.MaxInflight)}
		g.flows = append(g.flows, f)
		if _, err := g.controlCh.QueueDeclare(f.queue, false, false, false, false, nil); err != nil {
			return fmt.Errorf("queue.declare: %w", err)
		}
	}
	// Consumers first, so that they subscribe before the first publish.
	for q, f := range g.flows {
		for i := 0; i < g.s.Consumers; i++ {
			conn, ch, err := g.dial("consumer")
			if err != nil {
				return err
			}
			g.conns = append(g.conns, conn)
			if g.s.Prefetch > 0 {
				if err := ch.Qos(g.s.Prefetch, 0, false); err != nil {
					return fmt.Errorf("basic.qos: %w", err)
				}
			}
			tag := fmt.Sprintf("bench-%d", q*g.s.Consumers+i)
			deliveries, err := ch.Consume(f.queue, tag, g.s.NoAck, false, false, false, nil)
			if err != nil {
				return fmt.Errorf("basic.consume: %w", err)
			}
			g.samples = append(g.samples, nil)
			g.consumers.Add(1)
			go g.consume(deliveries, f, &g.samples[len(g.samples)-1])
		}
	}
	return nil
}

func (g *generator) startProducers(start <-chan struct{}) error {
	for i := 0; i < g.s.Producers; i++ {
		conn, ch, err := g.dial("producer")
		if err != nil {
			return err
		}
		g.conns = append(g.conns, conn)
		var confirms chan amqp.Confirmation
		if g.s.Confirm > 0 {
			if err := ch.Confirm(false); err != nil {
				return fmt.Errorf("confirm.select: %w", err)
			}
			confirms = ch.NotifyPublish(make(chan amqp.Confirmation, g.s.Confirm))
		}
		go g.produce(ch, g.flows[i%len(g.flows)], confirms, start)
	}
	return nil
}

func (g *generator) produce(ch *amqp.Channel, f *flow, confirms chan amqp.Confirmation, start <-chan struct{}) {
	body := make([]byte, g.s.Body)
	for i := range body {
		body[i] = 'x'
	}
	// The unconfirmed window: a slot per publish, freed by its confirm (delivered in order).
	var window chan struct{}
	if confirms != nil {
		window = make(chan struct{}, g.s.Confirm)
		go func() {
			for c := range confirms {
				<-window
				if c.Ack {
					g.confirmed.Add(1)
				} else {
					g.nacked.Add(1)
				}
			}
		}()
	}
	select {
	case <-start:
	case <-g.done:
		return
	}
	for {
		select {
		case f.tokens <- struct{}{}:
		case <-g.done:
			return
		}
		if window != nil {
			select {
			case window <- struct{}{}:
			case <-g.done:
				return
			}
		}
		if len(body) >= 8 {
			binary.LittleEndian.PutUint64(body, uint64(nanotime()))
		}
		if err := ch.Publish("", f.queue, false, false, amqp.Publishing{Body: body}); err != nil {
			if !g.closing.Load() {
				g.fail(fmt.Errorf("basic.publish: %w", err))
			}
			return
		}
		f.published.Add(1)
	}
}

func (g *generator) consume(deliveries <-chan amqp.Delivery, f *flow, samples *[]int64) {
	defer g.consumers.Done()
	unacked := 0
	for d := range deliveries {
		now := nanotime()
		if g.measuring.Load() && len(d.Body) >= 8 {
			*samples = append(*samples, now-int64(binary.LittleEndian.Uint64(d.Body)))
		}
		f.consumed.Add(1)
		select {
		case <-f.tokens:
		default:
		}
		if g.s.NoAck {
			continue
		}
		var err error
		if g.s.MultiAck <= 1 {
			err = d.Ack(false)
		} else if unacked++; unacked >= g.s.MultiAck {
			err = d.Ack(true)
			unacked = 0
		}
		if err != nil && !g.closing.Load() {
			g.fail(fmt.Errorf("basic.ack: %w", err))
		}
	}
}

type snapshot struct {
	at                  time.Time
	published, consumed uint64
	confirmed, nacked   uint64
	flowConsumed        []uint64
	cpu                 float64
	brokerCPU           *float64
}

func (g *generator) snapshot(brokerPid int) snapshot {
	s := snapshot{at: time.Now(), confirmed: g.confirmed.Load(), nacked: g.nacked.Load(), cpu: selfCPUSeconds()}
	if brokerPid > 0 {
		s.brokerCPU = readCPUSeconds(brokerPid)
	}
	for _, f := range g.flows {
		s.published += f.published.Load()
		c := f.consumed.Load()
		s.consumed += c
		s.flowConsumed = append(s.flowConsumed, c)
	}
	return s
}

func (g *generator) backlog() int64 {
	var total int64
	for _, f := range g.flows {
		total += int64(f.published.Load()) - int64(f.consumed.Load())
	}
	return total
}

// Waits d, sampling the backlog's maximum every 10 ms; false if the run failed or was stopped.
func (g *generator) wait(d time.Duration, stop <-chan os.Signal, r *Result) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-g.failed:
			return false
		case <-stop:
			r.interrupted = true
			g.fail(errors.New("interrupted"))
			return false
		case <-tick.C:
			if b := g.backlog(); b > r.BacklogMax {
				r.BacklogMax = b
			}
		}
	}
	return true
}

// Producers stop first, then every connection closes and the control connection deletes the
// queues. A publisher stuck in a write (a broker that stopped reading) does not hold us forever.
func (g *generator) teardown() {
	g.closing.Store(true)
	close(g.done)
	finished := make(chan struct{})
	go func() {
		for _, c := range g.conns {
			c.Close()
		}
		g.consumers.Wait()
		close(finished)
	}()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
	}
	if g.controlCh != nil {
		for _, f := range g.flows {
			g.controlCh.QueueDelete(f.queue, false, false, false)
		}
	}
	if g.control != nil {
		g.control.Close()
	}
}

func run(s Scenario, url string, brokerPid int, stop <-chan os.Signal) *Result {
	g := &generator{s: s, url: url, done: make(chan struct{}), failed: make(chan struct{})}
	r := &Result{Scenario: s.Name, Description: s.Description, Generator: "warren-bench-go (amqp091-go)",
		Mode: "go", Params: s, BrokerCPUPer: "consumed", Connections: 1 + s.Producers + s.Consumers*s.Queues}
	start := make(chan struct{})
	err := g.setup()
	if err == nil {
		err = g.startProducers(start)
	}
	if err != nil {
		g.fail(err)
	} else {
		close(start)
		if g.wait(time.Duration(s.Warmup*float64(time.Second)), stop, r) {
			r.BacklogMax = g.backlog()
			begin := g.snapshot(brokerPid)
			g.measuring.Store(true)
			ok := g.wait(time.Duration(s.Duration*float64(time.Second)), stop, r)
			g.measuring.Store(false)
			if ok {
				r.measured(begin, g.snapshot(brokerPid), g.backlog())
			}
		}
	}
	g.teardown()
	r.Blocked = g.blocked.Load()
	if g.err != nil {
		msg := g.err.Error()
		r.Error = &msg
	} else {
		r.OK = true
		r.setLatency(g.samples)
	}
	return r
}

// Result is the JSON line, with warren-bench's field names (compare.py reads either).
type Result struct {
	Scenario          string   `json:"scenario"`
	Description       string   `json:"description"`
	Generator         string   `json:"generator"`
	Mode              string   `json:"mode"`
	Params            Scenario `json:"params"`
	OK                bool     `json:"ok"`
	Error             *string  `json:"error"`
	Seconds           float64  `json:"seconds"`
	Published         uint64   `json:"published"`
	Consumed          uint64   `json:"consumed"`
	Confirmed         uint64   `json:"confirmed"`
	Nacked            uint64   `json:"nacked"`
	PublishRate       float64  `json:"publish_rate"`
	ConsumeRate       float64  `json:"consume_rate"`
	BacklogEnd        int64    `json:"backlog_end"`
	BacklogMax        int64    `json:"backlog_max"`
	Latency           *Latency `json:"latency_us"`
	GeneratorCPU      float64  `json:"generator_cpu"`
	BrokerCPUSeconds  *float64 `json:"broker_cpu_seconds"`
	BrokerCPUUsPerMsg *float64 `json:"broker_cpu_us_per_msg"`
	BrokerCPUPer      string   `json:"broker_cpu_per"`
	FlowRateMin       float64  `json:"flow_rate_min,omitempty"`
	FlowRateMean      float64  `json:"flow_rate_mean,omitempty"`
	Blocked           bool     `json:"blocked"`
	Connections       int      `json:"connections"`
	RssBeforeKib      *int64   `json:"rss_before_kib"`
	RssKib            *int64   `json:"rss_kib"`

	interrupted bool
}

type Latency struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50"`
	P99     float64 `json:"p99"`
	P999    float64 `json:"p999"`
	Max     float64 `json:"max"`
	Mean    float64 `json:"mean"`
}

func (r *Result) measured(begin, end snapshot, backlog int64) {
	r.Seconds = end.at.Sub(begin.at).Seconds()
	r.Published = end.published - begin.published
	r.Consumed = end.consumed - begin.consumed
	r.Confirmed = end.confirmed - begin.confirmed
	r.Nacked = end.nacked - begin.nacked
	r.BacklogEnd = backlog
	if backlog > r.BacklogMax {
		r.BacklogMax = backlog
	}
	if r.Seconds <= 0 {
		return
	}
	r.PublishRate = float64(r.Published) / r.Seconds
	r.ConsumeRate = float64(r.Consumed) / r.Seconds
	r.GeneratorCPU = (end.cpu - begin.cpu) / r.Seconds
	if begin.brokerCPU != nil && end.brokerCPU != nil {
		secs := *end.brokerCPU - *begin.brokerCPU
		r.BrokerCPUSeconds = &secs
		if r.Consumed > 0 {
			per := secs * 1e6 / float64(r.Consumed)
			r.BrokerCPUUsPerMsg = &per
		}
	}
	sum, least := 0.0, -1.0
	for i := range end.flowConsumed {
		rate := float64(end.flowConsumed[i]-begin.flowConsumed[i]) / r.Seconds
		sum += rate
		if least < 0 || rate < least {
			least = rate
		}
	}
	r.FlowRateMin, r.FlowRateMean = least, sum/float64(len(end.flowConsumed))
}

func (r *Result) setLatency(perConsumer [][]int64) {
	var all []int64
	for _, s := range perConsumer {
		all = append(all, s...)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	pct := func(q float64) float64 {
		i := int(q*float64(len(all))+0.999999) - 1
		if i < 0 {
			i = 0
		}
		if i >= len(all) {
			i = len(all) - 1
		}
		return float64(all[i]) / 1e3
	}
	var sum float64
	for _, v := range all {
		sum += float64(v)
	}
	r.Latency = &Latency{Samples: len(all), P50: pct(0.50), P99: pct(0.99), P999: pct(0.999),
		Max: float64(all[len(all)-1]) / 1e3, Mean: sum / float64(len(all)) / 1e3}
}

func (r *Result) textLine() string {
	line := fmt.Sprintf("%-18s %-9s", r.Scenario, r.Mode)
	if r.Error != nil {
		line += fmt.Sprintf(" ERROR: %s  ", *r.Error)
	}
	line += fmt.Sprintf(" pub %10.0f msg/s  cons %10.0f msg/s", r.PublishRate, r.ConsumeRate)
	if r.Latency != nil {
		line += fmt.Sprintf("  latency p50 %.0f us p99 %.0f us p99.9 %.0f us", r.Latency.P50, r.Latency.P99,
			r.Latency.P999)
	}
	line += fmt.Sprintf("  backlog %d (max %d)", r.BacklogEnd, r.BacklogMax)
	if r.Nacked > 0 {
		line += fmt.Sprintf("  nacked %d", r.Nacked)
	}
	if r.Blocked {
		line += "  BLOCKED"
	}
	if r.Params.Queues > 1 && r.FlowRateMean > 0 {
		line += fmt.Sprintf("  slowest queue %.2f of mean", r.FlowRateMin/r.FlowRateMean)
	}
	line += fmt.Sprintf("  gen cpu %.0f%%", r.GeneratorCPU*100)
	if r.BrokerCPUSeconds != nil && r.Seconds > 0 {
		line += fmt.Sprintf("  broker cpu %.0f%%", *r.BrokerCPUSeconds/r.Seconds*100)
		if r.BrokerCPUUsPerMsg != nil {
			line += fmt.Sprintf(" %.2f us/msg", *r.BrokerCPUUsPerMsg)
		}
	}
	return line
}
