// The Go client over TLS (amqps): DialTLS with the test CA and a PLAIN login, and
// DialTLS_ExternalAuth with a client certificate (EXTERNAL, user from its common name); an
// unknown user and an expired client certificate are refused. Run by test_go_client.py with the
// TLS port in AMQPS_URL and the certificates made by tls_certs.py in TLS_DIR.
package interop

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

func tlsURL(t *testing.T) string {
	u := os.Getenv("AMQPS_URL")
	if u == "" {
		t.Fatal("AMQPS_URL is not set (run through tests/interop/run.sh -k test_go)")
	}
	return u
}

// Trusts the test CA and checks the name "localhost"; presents the client certificate `client`
// ("client-guest" for client-guest.pem and .key) unless it is empty.
func tlsConfig(t *testing.T, client string) *tls.Config {
	t.Helper()
	dir := os.Getenv("TLS_DIR")
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatalf("the test CA: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		t.Fatal("no certificate in ca.pem")
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if client != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, client+".pem"), filepath.Join(dir, client+".key"))
		if err != nil {
			t.Fatalf("client certificate %s: %v", client, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg
}

func dialTLS(t *testing.T, external bool, client string) (*amqp.Connection, error) {
	if external {
		return amqp.DialTLS_ExternalAuth(tlsURL(t), tlsConfig(t, client))
	}
	return amqp.DialTLS(tlsURL(t), tlsConfig(t, client))
}

// Publishes `bodies` and reads them back, in order and intact.
func roundTrip(t *testing.T, conn *amqp.Connection, bodies [][]byte) {
	t.Helper()
	ch := channel(t, conn)
	q := tempQueue(t, ch, nil)
	for _, b := range bodies {
		if err := ch.Publish("", q, false, false, amqp.Publishing{Body: b}); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	for i, b := range bodies {
		d := next(t, deliveries)
		if !bytes.Equal(d.Body, b) {
			t.Fatalf("message %d: %d bytes back, %d sent, or different bytes", i, len(d.Body), len(b))
		}
	}
}

func TestTLSPlainLoginRoundTrip(t *testing.T) {
	conn, err := dialTLS(t, false, "")
	if err != nil {
		t.Fatalf("DialTLS: %v", err)
	}
	defer conn.Close()
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 && v != tls.VersionTLS12 {
		t.Fatalf("TLS version %x", v)
	}
	big := make([]byte, 2<<20)
	rand.Read(big)
	roundTrip(t, conn, [][]byte{[]byte("over TLS"), make([]byte, 1024), big})
}

func TestTLSExternalAuthWithClientCertificate(t *testing.T) {
	conn, err := dialTLS(t, true, "client-guest")
	if err != nil {
		t.Fatalf("DialTLS_ExternalAuth: %v", err)
	}
	defer conn.Close()
	roundTrip(t, conn, [][]byte{[]byte("logged in by certificate")})
}

func TestTLSExternalAuthUnknownUserIsRefused(t *testing.T) {
	conn, err := dialTLS(t, true, "client-unknown")
	if err == nil {
		conn.Close()
		t.Fatal("a certificate naming an unknown user logged in")
	}
	if e, ok := err.(*amqp.Error); !ok || e.Code != amqp.AccessRefused {
		t.Fatalf("want 403 ACCESS_REFUSED, got %v", err)
	}
}

// (A certificate from a CA the broker does not list is not even sent: Go's client only
// presents one that chains to a CA named in the server's certificate request.)
func TestTLSExpiredClientCertificateIsRefused(t *testing.T) {
	conn, err := dialTLS(t, false, "client-expired")
	if err == nil {
		conn.Close()
		t.Fatal("an expired client certificate was accepted")
	}
}
