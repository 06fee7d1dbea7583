// warren-bench-go: a load generator built on a real client library (amqp091-go, the Go client
// from Debian), so that the comparison does not rest on warren-bench alone. It runs a few of
// warren-bench's scenarios the way an application would and prints the same JSON line.
// Build: GOPATH mode with Debian's packages (bench/CMakeLists.txt); see bench/README.md.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Scenario mirrors warren-bench's parameters of the same name (bench/scenario.cpp).
type Scenario struct {
	Name        string  `json:"-"`
	Description string  `json:"-"`
	Queues      int     `json:"queues"`
	Producers   int     `json:"producers"`
	Consumers   int     `json:"consumers"` // per queue
	Body        int     `json:"body"`
	NoAck       bool    `json:"no_ack"`
	Prefetch    int     `json:"prefetch"`
	MultiAck    int     `json:"multi_ack"`
	Confirm     int     `json:"confirm"`
	MaxInflight int     `json:"max_inflight"`
	Duration    float64 `json:"duration"`
	Warmup      float64 `json:"warmup"`
}

func base(name, description string) Scenario {
	return Scenario{Name: name, Description: description, Queues: 1, Producers: 1, Consumers: 1, Body: 16,
		MultiAck: 1, MaxInflight: 10000, Duration: 10, Warmup: 2}
}

// The scenarios this generator runs, with warren-bench's names and parameters.
func presets() []Scenario {
	def := base("default", "PerfTest's default: 1 producer, 1 consumer, 16 B, ack per message, unlimited prefetch")
	autoack := base("autoack", "16 B, auto-ack (no_ack)")
	autoack.NoAck = true
	prefetch := base("prefetch100", "16 B, prefetch 100, ack multiple every 50")
	prefetch.Prefetch, prefetch.MultiAck = 100, 50
	body1k := base("body-1k", "1 KiB bodies, ack per message")
	body1k.Body = 1024
	confirm := base("confirm1000", "publisher confirms, window 1,000")
	confirm.Confirm = 1000
	queues := base("queues10", "10 queues, each with 1 producer and 1 consumer")
	queues.Queues, queues.Producers = 10, 10
	return []Scenario{def, autoack, prefetch, body1k, confirm, queues}
}

func findPreset(name string) (Scenario, bool) {
	for _, s := range presets() {
		if s.Name == name {
			return s, true
		}
	}
	return Scenario{}, false
}

// Set by -tls: every connection is amqps, with this configuration.
var tlsConfig *tls.Config

func main() {
	host := flag.String("host", "127.0.0.1", "broker address")
	port := flag.Int("port", 5672, "broker port")
	names := flag.String("scenario", "default", "scenarios to run, comma-separated, or \"all\"")
	list := flag.Bool("list", false, "list the scenarios and exit")
	asJSON := flag.Bool("json", false, "print one JSON object per scenario on stdout (text lines go to stderr)")
	brokerPid := flag.Int("broker-pid", 0, "read the broker's CPU time from /proc/PID/stat over the window")
	// Overrides, applied to every scenario when given.
	duration := flag.Float64("duration", -1, "seconds measured (10)")
	warmup := flag.Float64("warmup", -1, "seconds run before measuring (2)")
	producers := flag.Int("producers", -1, "producers")
	consumers := flag.Int("consumers", -1, "consumers per queue")
	queues := flag.Int("queues", -1, "queues")
	body := flag.Int("body", -1, "body bytes (>= 8 for latency)")
	autoAck := flag.Bool("auto-ack", false, "consume with no_ack")
	prefetch := flag.Int("prefetch", -1, "basic.qos prefetch_count (0: unlimited)")
	multiAck := flag.Int("multi-ack", -1, "ack with multiple=true every N deliveries")
	confirm := flag.Int("confirm", -1, "publisher confirms with this window (0: off)")
	maxInflight := flag.Int("max-inflight", -1, "backlog bound per queue")
	useTLS := flag.Bool("tls", false, "connect with TLS (amqps) to -port")
	caFile := flag.String("cacert", "", "with -tls: the CA to verify the broker against (default: no verification)")
	flag.Parse()
	if *useTLS {
		tlsConfig = &tls.Config{InsecureSkipVerify: *caFile == ""}
		if *caFile != "" {
			pem, err := os.ReadFile(*caFile)
			roots := x509.NewCertPool()
			if err != nil || !roots.AppendCertsFromPEM(pem) {
				fmt.Fprintf(os.Stderr, "warren-bench-go: no CA certificate in %s\n", *caFile)
				os.Exit(2)
			}
			tlsConfig.RootCAs = roots
		}
	}

	if *list {
		for _, s := range presets() {
			fmt.Printf("%-18s %s\n", s.Name, s.Description)
		}
		return
	}
	var runs []Scenario
	for _, name := range strings.Split(*names, ",") {
		if name == "" {
			continue
		}
		if name == "all" {
			runs = append(runs, presets()...)
			continue
		}
		s, ok := findPreset(name)
		if !ok {
			fmt.Fprintf(os.Stderr, "warren-bench-go: no scenario named %s (see --list)\n", name)
			os.Exit(2)
		}
		runs = append(runs, s)
	}
	for i := range runs {
		s := &runs[i]
		setFloat(&s.Duration, *duration)
		setFloat(&s.Warmup, *warmup)
		setInt(&s.Producers, *producers)
		setInt(&s.Consumers, *consumers)
		setInt(&s.Queues, *queues)
		setInt(&s.Body, *body)
		setInt(&s.Prefetch, *prefetch)
		setInt(&s.MultiAck, *multiAck)
		setInt(&s.Confirm, *confirm)
		setInt(&s.MaxInflight, *maxInflight)
		if *autoAck {
			s.NoAck = true
		}
		if s.Queues < 1 || s.Producers < 1 || s.Consumers < 1 || s.MultiAck < 1 || s.MaxInflight < 1 {
			fmt.Fprintf(os.Stderr, "warren-bench-go: %s needs at least one queue, producer and consumer\n", s.Name)
			os.Exit(2)
		}
	}

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	scheme := "amqp"
	if tlsConfig != nil {
		scheme = "amqps"
	}
	url := fmt.Sprintf("%s://guest:guest@%s:%d/", scheme, *host, *port)
	status := 0
	for _, s := range runs {
		r := run(s, url, *brokerPid, stop)
		if r.Error != nil {
			status = 1
		}
		text := os.Stdout
		if *asJSON {
			text = os.Stderr
		}
		fmt.Fprintln(text, r.textLine())
		if *asJSON {
			line, _ := json.Marshal(r)
			fmt.Println(string(line))
		}
		if r.interrupted {
			break
		}
	}
	os.Exit(status)
}

func setInt(dst *int, v int) {
	if v >= 0 {
		*dst = v
	}
}

func setFloat(dst *float64, v float64) {
	if v >= 0 {
		*dst = v
	}
}
