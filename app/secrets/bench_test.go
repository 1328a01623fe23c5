package secrets

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// benchStore is the real keychain under scripts/session.sh (make bench),
// else the in-memory one.
func benchStore(b *testing.B, ttl time.Duration) *Store {
	b.Helper()
	opts := Options{Service: "keyport-bench", CacheTTL: ttl}
	if os.Getenv("KEYPORT_TEST_KEYRING") != "1" {
		opts.Backend = newMem()
	}
	s := New(opts)
	if err := s.Set("bench", KindBearer, "bench-token-0123456789"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.DeleteServer("bench") })
	return s
}

// BenchmarkGetKeychain is one credential lookup from the keychain (a D-Bus
// round trip to the Secret Service under make bench); BenchmarkGetCached is
// the same lookup within the CacheTTL the app uses. Their ratio is what the
// cache saves a proxy on every request.
func BenchmarkGetKeychain(b *testing.B) {
	s := benchStore(b, 0)
	for b.Loop() {
		if _, err := s.Get("bench", KindBearer); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGetCached(b *testing.B) {
	s := benchStore(b, time.Minute)
	for b.Loop() {
		if _, err := s.Get("bench", KindBearer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSetChunked10kB stores a 10 kB value (4 chunks + header + index).
func BenchmarkSetChunked10kB(b *testing.B) {
	s := benchStore(b, 0)
	v := strings.Repeat("x", 10<<10)
	for b.Loop() {
		if err := s.Set("bench", OAuthKind("token"), v); err != nil {
			b.Fatal(err)
		}
	}
}

var logLine = `time=2026-05-04T03:02:01Z level=INFO msg="upstream request" server=github method=tools/call tool=search_code ` +
	`params={"query":"func main","repo":"octo/hello"} status=200 duration=35ms session=3f9a0c1d ` + strings.Repeat("x", 800)

// BenchmarkRedactLine redacts a 1 kB log line with 20 registered secrets;
// compare with BenchmarkRedactPatternsOnly (no known values) and
// BenchmarkCopyLine (the baseline: just copying the line).
func BenchmarkRedactLine(b *testing.B) {
	r := NewRedactor()
	for i := range 20 {
		r.Add(fmt.Sprintf("secret-value-%02d-abcdefghijklmnop", i))
	}
	b.SetBytes(int64(len(logLine)))
	for b.Loop() {
		_ = r.Redact(logLine)
	}
}

func BenchmarkRedactPatternsOnly(b *testing.B) {
	b.SetBytes(int64(len(logLine)))
	for b.Loop() {
		_ = Redact(logLine)
	}
}

func BenchmarkCopyLine(b *testing.B) {
	b.SetBytes(int64(len(logLine)))
	for b.Loop() {
		_ = strings.Clone(logLine)
	}
}
