package tray

import "keyport/app"

// Notice is a desktop notification to send about a server.
type Notice struct{ Server, Title, Body string }

// Transitions compares two snapshots and returns the notifications the
// change deserves: a proxy failed, an upstream became unreachable, or a
// server in trouble recovered. A server seen for the first time never
// notifies (no burst at start-up), and neither does a user stopping a proxy.
func Transitions(prev, next []app.ServerView) []Notice {
	before := make(map[string]app.ProxyState, len(prev))
	for _, s := range prev {
		before[s.Name] = s.State
	}
	var out []Notice
	for _, s := range next {
		old, known := before[s.Name]
		if !known || old == s.State {
			continue
		}
		troubled := old == app.ProxyError || old == app.ProxyUnreachable
		switch s.State {
		case app.ProxyError:
			out = append(out, Notice{
				Server: s.Name,
				Title:  s.Name + ": proxy failed",
				Body:   orDefault(s.LastError, "The local proxy stopped with an error. Open Keyport for details."),
			})
		case app.ProxyUnreachable:
			out = append(out, Notice{
				Server: s.Name,
				Title:  s.Name + ": upstream unreachable",
				Body:   orDefault(s.LastError, "The proxy runs but "+s.UpstreamURL+" does not answer."),
			})
		case app.ProxyRunning:
			if troubled {
				out = append(out, Notice{Server: s.Name, Title: s.Name + ": recovered", Body: "The proxy is running again."})
			}
		}
	}
	return out
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
