package proxymgr

import (
	"bytes"
	"strings"

	"keyport/proxymgr/policy"
)

// filterToolsResult rewrites a tools/list response message, removing the
// tools the policy does not allow. It returns the message unchanged (same
// slice) when nothing is removed. Tools without a string name are removed
// too: they cannot be checked. Every kept byte is the upstream's own.
func filterToolsResult(msg []byte, pol *policy.Policy) (out []byte, removed int, err error) {
	ms, err := scanObject(msg)
	if err != nil {
		return nil, 0, err
	}
	ri := -1
	for i, m := range ms {
		if strings.EqualFold(m.key, "result") {
			ri = i
		}
	}
	if ri < 0 || len(ms[ri].val) == 0 || ms[ri].val[0] != '{' {
		return msg, 0, nil // an error response, or no result to filter
	}
	rms, err := scanObject(ms[ri].val)
	if err != nil {
		return nil, 0, err
	}
	changed := false
	for i, m := range rms {
		if !strings.EqualFold(m.key, "tools") || len(m.val) == 0 || m.val[0] != '[' {
			continue
		}
		tools, err := scanArray(m.val)
		if err != nil {
			return nil, 0, err
		}
		kept := make([][]byte, 0, len(tools))
		for _, t := range tools {
			name, ok := paramString(t, "name")
			if ok && pol.Allowed(name) {
				kept = append(kept, t)
			} else {
				removed++
			}
		}
		if len(kept) != len(tools) {
			rms[i].val = append(append([]byte{'['}, bytes.Join(kept, []byte{','})...), ']')
			changed = true
		}
	}
	if !changed {
		return msg, 0, nil
	}
	ms[ri].val = joinObject(rms)
	return joinObject(ms), removed, nil
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
