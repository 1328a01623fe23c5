package gateway

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"keyport/proxymgr"
	"keyport/proxymgr/internal/suite"
)

// TestConformanceThroughProfile runs the official MCP conformance suite
// against go-sdk's everything-server directly and through a one-member
// profile (the server behind its Keyport proxy behind the gateway), in
// the same run, for both protocol eras, and requires the same results.
func TestConformanceThroughProfile(t *testing.T) {
	node, peers := suite.NodePeers(t)
	t.Parallel()
	bin := suite.BuildEverythingServer(t)
	type run struct {
		requirements string
		stateless    bool
		profile      bool
		res          suite.Result
	}
	runs := []*run{
		{requirements: "2025-11-25"}, {requirements: "2025-11-25", profile: true},
		{requirements: "2026-07-28", stateless: true}, {requirements: "2026-07-28", stateless: true, profile: true},
	}
	var wg sync.WaitGroup
	for _, r := range runs {
		url := suite.StartEverythingServer(t, bin, r.stateless)
		if r.profile {
			p, err := proxymgr.New(proxymgr.Config{Name: "everything", Upstream: url, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = p.Shutdown(t.Context()) })
			g := startGateway(t, Config{Name: "conformance", Members: []Member{{Server: "everything", URL: p.URL()}}})
			url = g.URL()
		}
		wg.Go(func() { r.res = suite.Run(t, node, peers, url, r.requirements) })
	}
	wg.Wait()
	for i := 0; i < len(runs); i += 2 {
		direct, prof := runs[i].res, runs[i+1].res
		req := runs[i].requirements
		t.Logf("%s: direct %d passed / %d failed (exit %d); through a profile %d passed / %d failed (exit %d)",
			req, direct.Passed, direct.Failed, direct.Exit, prof.Passed, prof.Failed, prof.Exit)
		if direct.Passed < 50 {
			t.Fatalf("%s: the direct run passed only %d checks; the suite did not run properly:\n%s", req, direct.Passed, suite.Tail(direct.Output, 4000))
		}
		var diffs []string
		for name, d := range direct.Scenarios {
			if p := prof.Scenarios[name]; p != d {
				diffs = append(diffs, fmt.Sprintf("%s: direct %q, profile %q", name, d, p))
			}
		}
		for name, p := range prof.Scenarios {
			if _, ok := direct.Scenarios[name]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s: only through the profile (%q)", name, p))
			}
		}
		slices.Sort(diffs)
		if len(diffs) > 0 || direct.Passed != prof.Passed || direct.Failed != prof.Failed || direct.Exit != prof.Exit {
			t.Errorf("%s: the profile changes conformance results:\n  %s\nprofile output:\n%s", req, strings.Join(diffs, "\n  "), suite.Tail(prof.Output, 8000))
		}
	}
}
