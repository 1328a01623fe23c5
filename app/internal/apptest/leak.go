package apptest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Leak returns the spelling of secret found in b, or "": as is,
// JSON-escaped (with and without \/, every byte as \u00XX), percent-encoded
// (either case).
func Leak(b []byte, secret string) string {
	j, _ := json.Marshal(secret)
	js := string(j[1 : len(j)-1])
	var u, lower, upper strings.Builder
	for i := 0; i < len(secret); i++ {
		fmt.Fprintf(&u, `\u%04x`, secret[i])
		fmt.Fprintf(&lower, "%%%02x", secret[i])
		fmt.Fprintf(&upper, "%%%02X", secret[i])
	}
	for _, s := range []string{secret, js, strings.ReplaceAll(js, "/", `\/`), u.String(), url.QueryEscape(secret), url.PathEscape(secret), lower.String(), upper.String()} {
		if bytes.Contains(b, []byte(s)) {
			return s
		}
	}
	return ""
}

// Recorder is an http.RoundTripper that keeps every byte of the answers
// read through it: what an MCP client (an AI model) gets to see.
type Recorder struct {
	mu  sync.Mutex
	got bytes.Buffer
}

// RoundTrip implements http.RoundTripper.
func (rec *Recorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	rec.mu.Lock()
	_ = resp.Header.Write(&rec.got) // headers reach the client too
	rec.mu.Unlock()
	resp.Body = &recordedBody{resp.Body, rec}
	return resp, nil
}

// Bytes is everything read so far.
func (rec *Recorder) Bytes() []byte {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return bytes.Clone(rec.got.Bytes())
}

type recordedBody struct {
	io.ReadCloser
	rec *Recorder
}

func (b *recordedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.rec.mu.Lock()
	b.rec.got.Write(p[:n])
	b.rec.mu.Unlock()
	return n, err
}
