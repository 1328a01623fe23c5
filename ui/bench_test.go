package ui

import (
	"fmt"
	"testing"

	"fyne.io/fyne/v2/test"

	"keyport/ui/fakecore"
)

// BenchmarkFilterServers is the pure filter over n servers (a query that
// matches a tenth of them and a label filter).
func BenchmarkFilterServers(b *testing.B) {
	for _, n := range []int{10, 1000} {
		servers := fakecore.New(fakecore.Generate(n)...).Servers()
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			for b.Loop() {
				filterServers(servers, "number 1", "team=core")
			}
		})
	}
}

// BenchmarkSearchKeystroke measures what one keystroke in the search box
// costs the window end to end: filter, list refresh and re-layout of the
// visible rows, detail pane update. Each iteration types a query and clears
// it (two keystrokes' worth of work), over 10 servers (the baseline) and
// 1,000. The target is ≤ 50 ms per keystroke at 1,000 servers.
func BenchmarkSearchKeystroke(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("servers=%d", n), func(b *testing.B) {
			fa := test.NewTempApp(b)
			u := newUI(fa, fakecore.New(fakecore.Generate(n)...), options{do: func(f func()) { f() }, bg: func(f func()) { f() }})
			b.Cleanup(u.Close)
			u.Window.Resize(u.Window.Canvas().Size().Max(u.Window.Content().MinSize()))
			u.Window.Show()
			for b.Loop() {
				u.Search.SetText("server-01")
				u.Search.SetText("")
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/2/1000, "ms/keystroke")
		})
	}
}
