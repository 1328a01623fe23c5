package proxymgr

import (
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"keyport/proxymgr/peercred"
)

// BenchmarkPeerCheck is what the same-user stage costs a proxy, with 1,000
// other loopback connections (2,000 sockets) open: a request (the health
// endpoint) on a new connection each time, alternately with the lookup and
// with it replaced by a constant verdict (the difference of the medians is
// the check's cost per connection), and on a kept-alive connection, which
// pays no lookup.
func BenchmarkPeerCheck(b *testing.B) {
	if s := peercred.Supported(); !s.Active {
		b.Skipf("no peer check on this system: %v", s)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.Cleanup(func() { c.Close() })
		}
	}()
	for range 1000 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
	}
	up := newUpstream(b, false)
	p := startProxy(b, Config{Upstream: up.url()})
	url := "http://" + p.Addr() + HealthPath
	get := func(b *testing.B, c *http.Client) {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
	// New connections with and without the lookup alternate, so that the
	// machine's load drifts alike on both; medians resist its outliers.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	b.Run("new-conn", func(b *testing.B) {
		var with, without []time.Duration
		for i := 0; b.Loop(); i++ {
			if i%2 == 1 {
				lookupPeer = func(net.Conn) peercred.Verdict { return peercred.Verdict{Kind: peercred.Same} }
			}
			t0 := time.Now()
			get(b, fresh)
			d := time.Since(t0)
			lookupPeer = peercred.CheckConn
			if i%2 == 1 {
				without = append(without, d)
			} else {
				with = append(with, d)
			}
		}
		median := func(d []time.Duration) float64 {
			slices.Sort(d)
			return float64(d[len(d)/2].Microseconds())
		}
		if len(without) > 0 {
			b.ReportMetric(median(with), "µs/conn-with-lookup")
			b.ReportMetric(median(without), "µs/conn-without")
		}
	})
	b.Run("keep-alive", func(b *testing.B) {
		c := &http.Client{Transport: &http.Transport{}}
		for b.Loop() {
			get(b, c)
		}
	})
}
