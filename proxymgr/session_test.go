package proxymgr

import (
	"testing"
	"time"
)

func TestSessionSweep(t *testing.T) {
	t.Parallel()
	var tab sessionTable
	now := time.Now()
	old := &session{id: "old", lastSeen: now.Add(-2 * sessionIdle)}
	streaming := &session{id: "streaming", lastSeen: now.Add(-2 * sessionIdle)}
	streaming.streams.Add(1)
	fresh := &session{id: "fresh", lastSeen: now}
	for _, s := range []*session{old, streaming, fresh} {
		tab.put(s, now)
	}
	gone := tab.sweep(now)
	if len(gone) != 1 || gone[0] != old || tab.len() != 2 || tab.get("streaming") == nil || tab.get("fresh") == nil {
		t.Fatalf("sweep removed %v; left %d", gone, tab.len())
	}
}

func TestTracker(t *testing.T) {
	t.Parallel()
	var tr tracker
	now := time.Now()
	tr.add("n1", &pendingReq{method: "tools/list", filter: true, start: now.Add(-time.Hour)})
	tr.add("n2", &pendingReq{method: "tools/call", start: now})
	if tr.filters.Load() != 1 || !tr.peekFilter("n1") || tr.peekFilter("n2") {
		t.Fatal("filter bookkeeping")
	}
	tr.add("n1", &pendingReq{method: "ping", start: now}) // a reused id replaces the old request
	if tr.filters.Load() != 0 {
		t.Fatal("replacing a filtered request must drop its filter count")
	}
	if got := tr.expire(now, time.Minute); len(got) != 0 {
		t.Fatalf("expired %d fresh requests", len(got))
	}
	if tr.take("n2") == nil || tr.take("n2") != nil || tr.size() != 1 {
		t.Fatal("take")
	}
	for i := range maxPending + 10 {
		tr.add(string(rune(i))+"k", &pendingReq{start: now})
	}
	if tr.size() > maxPending {
		t.Fatalf("tracker grew to %d, above %d", tr.size(), maxPending)
	}
}
