package proxymgr

import (
	"bytes"
	"strings"

	"keyport/proxymgr/policy"
)

// toolsAnswer is a tools/list response message split so that tools can be
// removed from it: every kept byte stays the upstream's own.
type toolsAnswer struct {
	ms    []member // the message's members
	ri    int      // the index of "result" in ms
	rms   []member // the result's members
	lists []toolsList
}

// toolsList is one "tools" member of a result (a result has one; a result
// with case-variant duplicates is refused by scanObject).
type toolsList struct {
	at    int      // the index in rms
	tools [][]byte // the raw tool definitions
	keep  []bool   // whether each stays (all true after split)
}

// splitToolsAnswer splits a tools/list response. It returns nil (and no
// error) for an error response or one without a result object.
func splitToolsAnswer(msg []byte) (*toolsAnswer, error) {
	ms, err := scanObject(msg)
	if err != nil {
		return nil, err
	}
	ri := -1
	for i, m := range ms {
		if strings.EqualFold(m.key, "result") {
			ri = i
		}
	}
	if ri < 0 || len(ms[ri].val) == 0 || ms[ri].val[0] != '{' {
		return nil, nil // an error response, or no result to filter
	}
	rms, err := scanObject(ms[ri].val)
	if err != nil {
		return nil, err
	}
	a := &toolsAnswer{ms: ms, ri: ri, rms: rms}
	for i, m := range rms {
		if !strings.EqualFold(m.key, "tools") || len(m.val) == 0 || m.val[0] != '[' {
			continue
		}
		tools, err := scanArray(m.val)
		if err != nil {
			return nil, err
		}
		keep := make([]bool, len(tools))
		for j := range keep {
			keep[j] = true
		}
		a.lists = append(a.lists, toolsList{at: i, tools: tools, keep: keep})
	}
	return a, nil
}

// join writes the message back without the tools not kept. It returns
// orig unchanged (same slice) when every tool is kept, and how many were
// removed.
func (a *toolsAnswer) join(orig []byte) (out []byte, removed int) {
	for _, l := range a.lists {
		kept := make([][]byte, 0, len(l.tools))
		for j, t := range l.tools {
			if l.keep[j] {
				kept = append(kept, t)
			}
		}
		if len(kept) != len(l.tools) {
			removed += len(l.tools) - len(kept)
			a.rms[l.at].val = append(append([]byte{'['}, bytes.Join(kept, []byte{','})...), ']')
		}
	}
	if removed == 0 {
		return orig, 0
	}
	a.ms[a.ri].val = joinObject(a.rms)
	return joinObject(a.ms), removed
}

// filterToolsResult rewrites a tools/list response message, removing the
// tools the policy does not allow. It returns the message unchanged (same
// slice) when nothing is removed. Tools without a string name are removed
// too: they cannot be checked. Every kept byte is the upstream's own.
func filterToolsResult(msg []byte, pol *policy.Policy) (out []byte, removed int, err error) {
	a, err := splitToolsAnswer(msg)
	if err != nil || a == nil {
		return msg, 0, err
	}
	for _, l := range a.lists {
		for j, t := range l.tools {
			name, ok := paramString(t, "name")
			l.keep[j] = ok && pol.Allowed(name)
		}
	}
	out, removed = a.join(msg)
	return out, removed, nil
}

// joinObject writes members back as a JSON object, keys as written.
func joinObject(ms []member) []byte {
	n := 2
	for _, m := range ms {
		n += len(m.keyRaw) + len(m.val) + 2
	}
	out := make([]byte, 0, n)
	out = append(out, '{')
	for i, m := range ms {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, m.keyRaw...)
		out = append(out, ':')
		out = append(out, m.val...)
	}
	return append(out, '}')
}
