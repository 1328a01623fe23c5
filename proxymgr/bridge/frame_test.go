package bridge

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func readAllLines(r io.Reader, max int) ([]string, int, error) {
	lr := newLineReader(r, max)
	var lines []string
	tooLong := 0
	for {
		line, err := lr.next()
		switch {
		case err == io.EOF:
			return lines, tooLong, nil
		case errors.Is(err, errLineTooLong):
			tooLong++
		case err != nil:
			return lines, tooLong, err
		default:
			lines = append(lines, string(line))
		}
	}
}

func TestLineReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		max      int
		want     []string
		tooLong  int
	}{
		{"lf", "{\"a\":1}\n{\"b\":2}\n", 100, []string{`{"a":1}`, `{"b":2}`}, 0},
		{"crlf", "{\"a\":1}\r\n{\"b\":2}\r\n", 100, []string{`{"a":1}`, `{"b":2}`}, 0},
		{"blank lines", "\n\r\n  \n{}\n\n", 100, []string{`{}`}, 0},
		{"no final newline", "{}\n[1]", 100, []string{`{}`, `[1]`}, 0},
		{"too long then ok", strings.Repeat("x", 20) + "\n{}\n", 10, []string{`{}`}, 1},
		{"too long at eof", "{}\n" + strings.Repeat("x", 20), 10, []string{`{}`}, 1},
		{"exactly max", strings.Repeat("y", 10) + "\n", 10, []string{strings.Repeat("y", 10)}, 0},
		{"long lines over buffer", strings.Repeat("z", 200000) + "\n{}\n", 300000, []string{strings.Repeat("z", 200000), `{}`}, 0},
		{"long line over max and buffer", strings.Repeat("z", 200000) + "\n{}\n", 100000, []string{`{}`}, 1},
	}
	for _, tc := range cases {
		for _, slow := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tc.in)
			if slow {
				r = iotest.OneByteReader(r)
			}
			got, tooLong, err := readAllLines(r, tc.max)
			if err != nil || tooLong != tc.tooLong || strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("%s (slow=%v): lines %d %.40q, tooLong %d, err %v; want %d lines, tooLong %d",
					tc.name, slow, len(got), got, tooLong, err, len(tc.want), tc.tooLong)
			}
		}
	}
}

// FuzzLineReader: every returned line is a line of the input (minus its
// terminator and surrounding blank-ness), in order, within the limit.
func FuzzLineReader(f *testing.F) {
	f.Add([]byte("{}\n{\"a\":1}\r\n\n[1]"), 8)
	f.Add([]byte("xxxxxxxxxxxxxxxxxxxx\ny\n"), 4)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<20 {
			return
		}
		got, tooLong, err := readAllLines(bytes.NewReader(in), max)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		wantLong := 0
		segs := strings.Split(string(in), "\n")
		for i, l := range segs {
			if i == len(segs)-1 && l == "" {
				break
			}
			if len(l) > max {
				wantLong++
				continue
			}
			if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) == "" {
				continue
			}
			want = append(want, l)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") || tooLong != wantLong {
			t.Fatalf("lines %q (%d too long), want %q (%d)", got, tooLong, want, wantLong)
		}
		for _, l := range got {
			if len(l) > max {
				t.Fatalf("line of %d bytes over the %d limit", len(l), max)
			}
		}
	})
}

func readEvents(t *testing.T, in string, max int) ([]sseEvent, *sseReader, error) {
	t.Helper()
	r := newSSEReader(strings.NewReader(in), max)
	var evs []sseEvent
	for {
		ev, err := r.next()
		if err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return evs, r, nil
			}
			return evs, r, err
		}
		evs = append(evs, ev)
	}
}

func TestSSEReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, in string
		want     []string // name:data
		lastID   string
		retry    time.Duration
	}{
		{"go-sdk style", "event: message\nid: 1_0\ndata: {\"a\":1}\n\n", []string{"message:{\"a\":1}"}, "1_0", 0},
		{"priming event then data", "id: p\nretry: 500\ndata:\n\nid: q\ndata: x\n\n", []string{":", ":x"}, "q", 500 * time.Millisecond},
		{"empty priming event is not dispatched", "id: p\nretry: 500\n\n", nil, "p", 500 * time.Millisecond},
		{"multi-line data", "data: a\ndata:b\ndata:  c\n\n", []string{":a\nb\n c"}, "", 0},
		{"crlf and cr", "data: a\r\n\r\ndata: b\r\rdata: c\n\n", []string{":a", ":b", ":c"}, "", 0},
		{"comments and unknown fields", ": keep-alive\nfoo: bar\ndata: x\n\n", []string{":x"}, "", 0},
		{"no space after colon, field without colon", "data:x\ndata\n\n", []string{":x\n"}, "", 0},
		{"bom", "\xEF\xBB\xBFdata: x\n\n", []string{":x"}, "", 0},
		{"unterminated event discarded", "data: x\n\ndata: y", []string{":x"}, "", 0},
		{"bad retry ignored", "retry: 5x\nretry: -1\ndata: x\n\n", []string{":x"}, "", 0},
		{"id with NUL ignored", "id: a\x00b\ndata: x\n\n", []string{":x"}, "", 0},
	}
	for _, tc := range cases {
		evs, r, err := readEvents(t, tc.in, 1<<20)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for _, ev := range evs {
			got = append(got, ev.name+":"+string(ev.data))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || r.LastID != tc.lastID || r.Retry != tc.retry {
			t.Errorf("%s: events %q lastID %q retry %v; want %q %q %v", tc.name, got, r.LastID, r.Retry, tc.want, tc.lastID, tc.retry)
		}
	}
	if _, _, err := readEvents(t, "data: "+strings.Repeat("x", 100)+"\n\n", 50); !errors.Is(err, errEventTooLarge) {
		t.Errorf("oversized event: %v", err)
	}
	if _, _, err := readEvents(t, strings.Repeat("data: xxxxxxxxxx\n", 10)+"\n", 50); !errors.Is(err, errEventTooLarge) {
		t.Errorf("oversized multi-line event: %v", err)
	}
}

// TestSSEReaderDispatchesWithoutLookahead: an event ending in CR is
// delivered at once, not after more input arrives.
func TestSSEReaderDispatchesWithoutLookahead(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	r := newSSEReader(pr, 1<<20)
	go pw.Write([]byte("data: x\r\r"))
	got := make(chan string, 1)
	go func() {
		ev, _ := r.next()
		got <- string(ev.data)
	}()
	select {
	case d := <-got:
		if d != "x" {
			t.Errorf("data %q", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("event ending in CR was not dispatched")
	}
	pw.Close()
}

// FuzzSSEReader: the reader never panics, respects its limit and returns
// data that came from data lines.
func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("id: 1\ndata: {}\n\n"), 64)
	f.Add([]byte("data: a\r\rdata: b\r\n\r\n: c\nretry: 10\n\n"), 8)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max <= 0 || max > 1<<20 {
			return
		}
		r := newSSEReader(bytes.NewReader(in), max)
		for range len(in) + 1 {
			ev, err := r.next()
			if err != nil {
				return
			}
			if len(ev.data) > max {
				t.Fatalf("event of %d bytes over the %d limit", len(ev.data), max)
			}
			for _, line := range bytes.Split(ev.data, []byte("\n")) {
				if !bytes.Contains(in, line) {
					t.Fatalf("data %q not in the input", line)
				}
			}
		}
		if _, err := r.next(); err == nil {
			t.Fatalf("more events than input bytes")
		}
	})
}
