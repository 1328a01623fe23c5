// Package pins is the pure part of tool pinning: the canonical form and
// hash of a tool definition, the verdict on a listed tool against the
// definitions the user approved, line diffs for the review, and the flags
// of suspicious text. It does no I/O: the proxy (proxymgr) applies the
// verdicts to tools/list answers and tools/call requests, and the core
// (app/pinstore) keeps the approved definitions in files.
//
// A pin covers the members of a tool definition that reach the model or
// decide what it sends: name, title, description, inputSchema,
// outputSchema and annotations. Other members (_meta, icons...) may change
// freely.
package pins

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Fields are the members of a tool definition a pin covers, as the MCP
// specification spells them.
var Fields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Hash identifies a canonical definition: "sha256:" and 64 hex digits.
type Hash string

// Short is the hash's first 12 hex digits, for people.
func (h Hash) Short() string {
	s := strings.TrimPrefix(string(h), "sha256:")
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// Sum hashes a canonical definition.
func Sum(canonical []byte) Hash {
	s := sha256.Sum256(canonical)
	return Hash("sha256:" + hex.EncodeToString(s[:]))
}

// errDuplicate: a definition names a member twice, so readers may disagree
// on its value.
var errDuplicate = errors.New("a key appears twice")

// Canonical returns the canonical JSON of the pinned members of the tool
// definition def (a JSON object): only the members in Fields, keys sorted
// at every depth, no insignificant whitespace, numbers in one spelling (1,
// 1.0 and 1e0 are 1) and strings as encoding/json writes them (without HTML
// escaping). Top-level members are matched ignoring case, as JSON decoders
// of MCP clients do, and written with the specification's spelling; a
// definition whose members collide ignoring case, or whose objects name a
// key twice at any depth, is an error: clients may read it differently.
func Canonical(def []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(def))
	dec.UseNumber()
	var top map[string]json.RawMessage
	if err := decodeObject(dec, &top); err != nil {
		return nil, fmt.Errorf("tool definition: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("tool definition: data after the object")
	}
	picked := map[string]json.RawMessage{}
	for k, v := range top {
		for _, f := range Fields {
			if strings.EqualFold(k, f) {
				if _, dup := picked[f]; dup {
					return nil, fmt.Errorf("tool definition: %q: %w (ignoring case)", f, errDuplicate)
				}
				picked[f] = v
			}
		}
	}
	var out bytes.Buffer
	out.WriteByte('{')
	first := true
	for _, f := range sortedFields {
		v, ok := picked[f]
		if !ok || string(v) == "null" {
			continue // absent and null read the same to clients
		}
		if !first {
			out.WriteByte(',')
		}
		first = false
		writeString(&out, f)
		out.WriteByte(':')
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		if err := canonValue(d, &out, 0); err != nil {
			return nil, fmt.Errorf("tool definition: %s: %w", f, err)
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

var sortedFields = func() []string {
	s := slices.Clone(Fields)
	slices.Sort(s)
	return s
}()

// decodeObject reads one JSON object into members, rejecting keys that are
// equal ignoring case.
func decodeObject(dec *json.Decoder, out *map[string]json.RawMessage) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	folded := map[string]string{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return err
		}
		k := kt.(string)
		if prev, ok := folded[strings.ToLower(k)]; ok {
			return fmt.Errorf("%q and %q: %w (ignoring case)", prev, k, errDuplicate)
		}
		folded[strings.ToLower(k)] = k
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return err
		}
		m[k] = v
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*out = m
	return nil
}

// maxDepth bounds the nesting of a definition (schemas are shallow; this
// only stops a hostile one from exhausting the stack).
const maxDepth = 200

// canonValue writes the next JSON value of dec in canonical form.
func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deeply")
	}
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := t.(type) {
	case json.Delim:
		switch v {
		case '{':
			type kv struct {
				k string
				v []byte
			}
			var members []kv
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				if seen[k] {
					return fmt.Errorf("%q: %w", k, errDuplicate)
				}
				seen[k] = true
				var b bytes.Buffer
				if err := canonValue(dec, &b, depth+1); err != nil {
					return err
				}
				members = append(members, kv{k, b.Bytes()})
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			slices.SortFunc(members, func(a, b kv) int { return strings.Compare(a.k, b.k) })
			out.WriteByte('{')
			for i, m := range members {
				if i > 0 {
					out.WriteByte(',')
				}
				writeString(out, m.k)
				out.WriteByte(':')
				out.Write(m.v)
			}
			out.WriteByte('}')
		case '[':
			out.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
			out.WriteByte(']')
		default:
			return fmt.Errorf("unexpected %v", v)
		}
	case string:
		writeString(out, v)
	case json.Number:
		out.WriteString(canonNumber(v))
	case bool:
		out.WriteString(strconv.FormatBool(v))
	case nil:
		out.WriteString("null")
	}
	return nil
}

// canonNumber spells a JSON number one way: integers as integers (without
// a fraction or exponent), others as the shortest float64 spelling.
func canonNumber(n json.Number) string {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// writeString writes s as encoding/json does, without HTML escaping.
func writeString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	out.Truncate(out.Len() - 1) // Encode's newline
}

// Verdict is what pinning says about one listed tool.
type Verdict int

// Verdicts.
const (
	// Trusted: the server has no pins yet; this list is trusted on first
	// use and pinned.
	Trusted Verdict = iota
	// Approved: the definition is the one the user approved.
	Approved
	// New: no definition of this name was approved.
	New
	// Changed: the definition differs from the approved one.
	Changed
)

func (v Verdict) String() string {
	switch v {
	case Trusted:
		return "trusted"
	case Approved:
		return "approved"
	case New:
		return "new"
	case Changed:
		return "changed"
	}
	return "?"
}

// Held is a definition seen but not approved, awaiting the user's review.
type Held struct {
	Hash    Hash
	Blocked bool // the user chose to keep it blocked
}

// Set is a server's pins as the proxy consults them: a snapshot that is
// never modified once made.
type Set struct {
	// Trusting: nothing is pinned yet, so the next list is trusted.
	Trusting bool
	// Approved maps a tool name to its approved definition's hash.
	Approved map[string]Hash
	// Held maps a tool name to the definition held for review.
	Held map[string]Held
	// Problem says why the pins could not be read (the file was corrupt
	// and set aside): everything is held until reviewed. "" when fine.
	Problem string
}

// Check is the verdict on a tool called name whose definition hashes to h.
func (s *Set) Check(name string, h Hash) Verdict {
	if s == nil || s.Trusting {
		return Trusted
	}
	old, ok := s.Approved[name]
	switch {
	case !ok:
		return New
	case old != h:
		return Changed
	}
	return Approved
}

// Recorded reports whether the definition h of name is already held (so
// it needs no new record).
func (s *Set) Recorded(name string, h Hash) bool {
	if s == nil {
		return false
	}
	hd, ok := s.Held[name]
	return ok && hd.Hash == h
}

// Observed is one tool of a tools/list answer, as pinning sees it.
type Observed struct {
	Name       string
	Hash       Hash
	Definition json.RawMessage // canonical (see Canonical)
}

// Observe canonicalizes a tool definition.
func Observe(def []byte) (Observed, error) {
	c, err := Canonical(def)
	if err != nil {
		return Observed{}, err
	}
	var name struct {
		Name *string `json:"name"`
	}
	if err := json.Unmarshal(c, &name); err != nil || name.Name == nil {
		return Observed{}, errors.New("tool definition: no name")
	}
	return Observed{Name: *name.Name, Hash: Sum(c), Definition: c}, nil
}

// Record is what one tools/list answer tells the pin store.
type Record struct {
	// Trust: the server had no pins (or this page continues the first
	// list): approve these as they are.
	Trust []Observed
	// Hold: new or changed definitions not recorded yet.
	Hold []Observed
	// Resolved: tools held for review whose server lists the approved
	// definition again; their held entry is dropped.
	Resolved []string
}

// Empty reports whether there is nothing to record.
func (r Record) Empty() bool { return len(r.Trust)+len(r.Hold)+len(r.Resolved) == 0 }

// Evaluate applies set to the tools of one answer: visible[i] says whether
// tools[i] may reach the client (when hold is false, changed tools pass
// too), verdicts[i] is its verdict, and rec is what to record. trust makes
// every tool trusted (the first list, or a page that continues it).
func Evaluate(set *Set, tools []Observed, trust, hold bool) (visible []bool, verdicts []Verdict, rec Record) {
	visible = make([]bool, len(tools))
	verdicts = make([]Verdict, len(tools))
	for i, t := range tools {
		v := set.Check(t.Name, t.Hash)
		if trust {
			v = Trusted
		}
		verdicts[i] = v
		switch v {
		case Trusted:
			visible[i] = true
			rec.Trust = append(rec.Trust, t)
		case Approved:
			visible[i] = true
			if _, held := set.Held[t.Name]; held {
				rec.Resolved = append(rec.Resolved, t.Name)
			}
		default:
			visible[i] = !hold
			if !set.Recorded(t.Name, t.Hash) {
				rec.Hold = append(rec.Hold, t)
			}
		}
	}
	return visible, verdicts, rec
}

// Visible reports whether a client of a proxy in hold mode sees the tool
// name (with any definition) under s: it is approved and no other
// definition of it is held. The proxy compares two snapshots with it to
// tell clients when their list changed.
func (s *Set) Visible(name string) (Hash, bool) {
	if s == nil {
		return "", false
	}
	h, ok := s.Approved[name]
	if !ok {
		return "", false
	}
	if hd, held := s.Held[name]; held && hd.Hash != h {
		return "", false
	}
	return h, true
}

// VisibleChanged reports whether a client would see a different list
// under next than under prev (a tool approved, or an approved tool now
// held). Moving from trusting to pinned changes nothing the client saw;
// a reset (back to trusting) shows the tools that were held.
func VisibleChanged(prev, next *Set) bool {
	if prev == nil || next == nil || prev.Trusting {
		return false
	}
	if next.Trusting {
		return len(prev.Held) > 0
	}
	names := map[string]bool{}
	for n := range prev.Approved {
		names[n] = true
	}
	for n := range next.Approved {
		names[n] = true
	}
	for n := range next.Held {
		names[n] = true
	}
	for n := range prev.Held {
		names[n] = true
	}
	for n := range names {
		h1, v1 := prev.Visible(n)
		h2, v2 := next.Visible(n)
		if v1 != v2 || h1 != h2 {
			return true
		}
	}
	return false
}
