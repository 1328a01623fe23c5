package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
	"go.yaml.in/yaml/v3"

	"keyport/app/internal/atomicfile"
)

// EnvConfigDir overrides Keyport's config dir (tests, portable setups).
const EnvConfigDir = "KEYPORT_CONFIG_DIR"

// ConfigDir is Keyport's config dir: $KEYPORT_CONFIG_DIR, else
// os.UserConfigDir()/keyport (~/.config/keyport on Linux, ~/Library/
// Application Support/keyport on macOS, %AppData%\keyport on Windows).
func ConfigDir() (string, error) {
	if d := os.Getenv(EnvConfigDir); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("%s=%q: %w", EnvConfigDir, d, err)
		}
		return abs, nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config dir: %w (set %s to choose one)", err, EnvConfigDir)
	}
	return filepath.Join(d, "keyport"), nil
}

// DefaultPath is ConfigDir()/servers.yaml.
func DefaultPath() (string, error) {
	d, err := ConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, FileName), nil
}

// ErrNotFound reports a server name that is not in servers.yaml.
var ErrNotFound = errors.New("no such server in servers.yaml")

// LockTimeout bounds the wait for another Keyport process editing the file.
const LockTimeout = 10 * time.Second

// File is servers.yaml on disk: load it, edit it, watch it. Edits rewrite
// the file atomically under a cross-process lock, keeping the user's
// comments and order, and never touch a file that does not parse.
type File struct {
	path string
	mu   sync.Mutex   // the flock is per File, not per goroutine
	lock *flock.Flock // across processes

	managedMu   sync.Mutex
	managedPath string   // the organization's managed file ("" none)
	lastGood    *Managed // the last valid managed file this process read
}

// NewFile returns the servers file at path (usually DefaultPath()), with
// the organization's managed settings (ManagedPath) merged over it.
func NewFile(path string) *File {
	return &File{path: path, lock: flock.New(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".lock")),
		managedPath: ManagedPath()}
}

// SetManagedPath reads the managed settings from p instead ("" for none).
func (f *File) SetManagedPath(p string) {
	f.managedMu.Lock()
	defer f.managedMu.Unlock()
	f.managedPath, f.lastGood = p, nil
}

// ManagedPath is the managed settings file this File merges ("" none).
func (f *File) ManagedPath() string {
	f.managedMu.Lock()
	defer f.managedMu.Unlock()
	return f.managedPath
}

// Open returns the servers file in ConfigDir().
func Open() (*File, error) {
	p, err := DefaultPath()
	if err != nil {
		return nil, err
	}
	return NewFile(p), nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Init writes the commented example file (no server enabled) when there is
// no servers file yet; created reports whether it did.
func (f *File) Init() (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return false, fmt.Errorf("create the config dir: %w", err)
	}
	unlock, err := f.lockFile()
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := os.Lstat(f.path); err == nil {
		return false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("check %s: %w", f.path, err)
	}
	if err := atomicfile.WriteFile(f.path, []byte(exampleFile), 0o600); err != nil {
		return false, err
	}
	return true, nil
}

// Load reads and validates the file and merges the organization's managed
// settings over it (Merge). A missing file is an empty catalog. An invalid
// managed file never means "unmanaged": the last good one stays in effect
// (Catalog.Managed.Err says why), and with none known Load fails.
func (f *File) Load() (*Catalog, error) {
	m, merr := f.loadManaged()
	if m == nil && merr != nil {
		return nil, merr
	}
	user, err := f.loadUser()
	if err != nil {
		return nil, err
	}
	cat := Merge(user, m)
	if merr != nil {
		cat.Managed.Err = merr.Error()
	}
	return cat, nil
}

// LoadUser reads servers.yaml alone, without the managed settings.
func (f *File) loadUser() (*Catalog, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return &Catalog{Path: f.path}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.path, err)
	}
	return Parse(f.path, data)
}

// lastGoodName keeps, in the config dir, a copy of the last valid managed
// file, so a process started while the file is invalid still applies it.
const lastGoodName = ".managed.last-good.yaml"

// loadManaged reads the managed file. It returns the settings in effect
// (nil: unmanaged) and, when the file is invalid, why: then the settings
// are the last good ones (of this process, else the copy in the config
// dir), or nil when none is known.
func (f *File) loadManaged() (*Managed, error) {
	f.managedMu.Lock()
	defer f.managedMu.Unlock()
	cache := filepath.Join(filepath.Dir(f.path), lastGoodName)
	if f.managedPath == "" {
		return nil, nil
	}
	data, err := readSmallFile(f.managedPath, 4<<20)
	if errors.Is(err, os.ErrNotExist) {
		f.lastGood = nil
		_ = os.Remove(cache) // the administrator removed it: unmanaged
		return nil, nil
	}
	var m *Managed
	if err == nil {
		m, err = ParseManaged(f.managedPath, data)
	} else {
		err = fmt.Errorf("read the managed settings %s: %w", f.managedPath, err)
	}
	if err == nil {
		f.lastGood = m
		if old, rerr := os.ReadFile(cache); rerr != nil || !bytes.Equal(old, data) {
			_ = atomicfile.WriteFile(cache, data, 0o600)
		}
		return m, nil
	}
	last := f.lastGood
	if last == nil {
		if old, rerr := os.ReadFile(cache); rerr == nil {
			if cm, perr := ParseManaged(f.managedPath, old); perr == nil {
				last = cm
			}
		}
	}
	if last == nil {
		return nil, fmt.Errorf("the managed settings (%s) are invalid and no earlier valid version is known, so Keyport serves no server until they are fixed (ask your administrator):\n%w", f.managedPath, err)
	}
	return last, fmt.Errorf("the managed settings (%s) are invalid; Keyport keeps applying their last valid version (ask your administrator):\n%w", f.managedPath, err)
}

// Add appends a server. It fails if the name is taken or the server is
// invalid.
func (f *File) Add(s Server) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	return f.edit(func(seq *yaml.Node) error {
		if i := findServer(seq, s.Name); i >= 0 {
			return fmt.Errorf("a server named %q is already in %s (line %d); choose another name or update it", s.Name, f.path, deref(seq.Content[i]).Line)
		}
		n, err := serverNode(s)
		if err != nil {
			return err
		}
		seq.Content = append(seq.Content, n)
		return nil
	})
}

// Update replaces the server with the same name, keeping the comments and
// the key order of its entry.
func (f *File) Update(s Server) error {
	if err := s.Check(); err != nil {
		return fmt.Errorf("server %q: %w", s.Name, err)
	}
	return f.edit(func(seq *yaml.Node) error {
		i := findServer(seq, s.Name)
		if i < 0 {
			return fmt.Errorf("update %q: %w", s.Name, ErrNotFound)
		}
		n, err := serverNode(s)
		if err != nil {
			return err
		}
		mergeMapping(deref(seq.Content[i]), n)
		return nil
	})
}

// Remove deletes the server called name, and takes it out of every
// profile (a profile left without a server goes too), so the file stays
// valid.
func (f *File) Remove(name string) error {
	return f.edit(func(seq *yaml.Node) error {
		i := findServer(seq, name)
		if i < 0 {
			return fmt.Errorf("remove %q: %w", name, ErrNotFound)
		}
		seq.Content = append(seq.Content[:i], seq.Content[i+1:]...)
		return nil
	}, func(doc *yaml.Node) { dropFromProfiles(doc, name) })
}

// edit runs change on the servers list of the current file and writes the
// result, all under the file lock.
func (f *File) edit(change func(seq *yaml.Node) error, also ...func(doc *yaml.Node)) error {
	return f.editList("servers", func(seq, doc *yaml.Node) error {
		if err := change(seq); err != nil {
			return err
		}
		for _, a := range also {
			a(doc)
		}
		return nil
	})
}

// editList is edit for the top-level list key (servers, profiles); change
// also gets the document.
func (f *File) editList(key string, change func(seq, doc *yaml.Node) error) error {
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("create the config dir: %w", err)
	}
	unlock, err := f.lockFile()
	if err != nil {
		return err
	}
	defer unlock()

	perm := os.FileMode(0o600)
	data, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		data = []byte(exampleFile)
	case err != nil:
		return fmt.Errorf("read %s: %w", f.path, err)
	default:
		if fi, err := os.Stat(f.path); err == nil {
			perm = fi.Mode().Perm()
		}
	}
	_, doc, perr := parse(f.path, data)
	var le *LoadError
	if errors.As(perr, &le) && le.syntax {
		return fmt.Errorf("%s cannot be changed until it parses (Keyport never overwrites a file it cannot read); fix it first:\n%w", f.path, perr)
	}
	seq := listSeq(doc, key)
	if err := change(seq, doc); err != nil {
		return err
	}
	if len(seq.Content) > 0 {
		seq.Style &^= yaml.FlowStyle // "servers: []" becomes a block list
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode %s: %w", f.path, err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode %s: %w", f.path, err)
	}
	// Belt and braces: never write what we could not read back.
	if _, _, err := parse(f.path, buf.Bytes()); errors.As(err, &le) && le.syntax {
		return fmt.Errorf("internal error: the edited %s would not parse; left it unchanged: %w", f.path, err)
	}
	// Write through a symlink (dotfile managers): replace its target, not
	// the link.
	target := f.path
	if t, err := filepath.EvalSymlinks(f.path); err == nil {
		target = t
	} else if l, lerr := os.Readlink(f.path); lerr == nil { // a dangling link
		if !filepath.IsAbs(l) {
			l = filepath.Join(filepath.Dir(f.path), l)
		}
		target = l
	}
	return atomicfile.WriteFile(target, buf.Bytes(), perm)
}

func (f *File) lockFile() (unlock func(), err error) {
	f.mu.Lock()
	ctx, cancel := context.WithTimeout(context.Background(), LockTimeout)
	defer cancel()
	ok, err := f.lock.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		f.mu.Unlock()
		return nil, fmt.Errorf("lock %s: another Keyport process is editing it (%v); try again", f.path, err)
	}
	return func() { _ = f.lock.Unlock(); f.mu.Unlock() }, nil
}

// serversSeq returns the document's servers list, creating the document,
// the top-level mapping or the list as needed.
func serversSeq(doc *yaml.Node) *yaml.Node { return listSeq(doc, "servers") }

// listSeq returns the document's top-level list key, creating the
// document, the top-level mapping or the list as needed.
func listSeq(doc *yaml.Node, key string) *yaml.Node {
	if doc.Kind == 0 {
		*doc = yaml.Node{Kind: yaml.DocumentNode}
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		old := doc.Content
		root := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		if len(old) > 0 { // keep comments of an empty document
			root.HeadComment, root.FootComment = old[0].HeadComment, old[0].FootComment
		}
		doc.Content = []*yaml.Node{root}
	}
	root := deref(doc.Content[0])
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			v := deref(root.Content[i+1])
			if isNull(v) {
				seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", LineComment: v.LineComment, FootComment: v.FootComment}
				root.Content[i+1] = seq
				return seq
			}
			return v
		}
	}
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, seq)
	return seq
}

// findServer is the index of the entry whose name is name, or -1.
func findServer(seq *yaml.Node, name string) int {
	for i, item := range seq.Content {
		item = deref(item)
		if item.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(item.Content); j += 2 {
			if item.Content[j].Value == "name" && deref(item.Content[j+1]).Value == name {
				return i
			}
		}
	}
	return -1
}

// serverNode encodes s as a mapping, leaving defaults out and writing short
// lists in flow style ([a, b]).
func serverNode(s Server) (*yaml.Node, error) {
	if s.Auth.Type == AuthNone {
		s.Auth.Type = ""
	}
	if s.Audit.Params == AuditRedacted {
		s.Audit.Params = ""
	}
	if s.Tools.Pinning == PinHold {
		s.Tools.Pinning = ""
	}
	var n yaml.Node
	if err := n.Encode(s); err != nil {
		return nil, fmt.Errorf("encode server %q: %w", s.Name, err)
	}
	flowScalarLists(&n)
	return &n, nil
}

func flowScalarLists(n *yaml.Node) {
	if n.Kind == yaml.SequenceNode {
		flow := true
		for _, c := range n.Content {
			flow = flow && c.Kind == yaml.ScalarNode
		}
		if flow {
			n.Style |= yaml.FlowStyle
		}
	}
	for _, c := range n.Content {
		flowScalarLists(c)
	}
}

// mergeMapping makes dst hold src's keys and values while keeping dst's
// key order and comments: keys in both are updated in place (nested
// mappings recursively), keys only in src are appended, keys only in dst
// are removed.
func mergeMapping(dst, src *yaml.Node) {
	if dst.Kind != yaml.MappingNode || src.Kind != yaml.MappingNode {
		*dst = *src
		return
	}
	srcVal := map[string]*yaml.Node{}
	var order []string
	for i := 0; i+1 < len(src.Content); i += 2 {
		srcVal[src.Content[i].Value] = src.Content[i+1]
		order = append(order, src.Content[i].Value)
	}
	kept := dst.Content[:0]
	present := map[string]bool{}
	for i := 0; i+1 < len(dst.Content); i += 2 {
		k, v := dst.Content[i], dst.Content[i+1]
		nv, ok := srcVal[k.Value]
		if !ok {
			continue
		}
		present[k.Value] = true
		old := deref(v)
		if old.Kind == yaml.MappingNode && nv.Kind == yaml.MappingNode {
			mergeMapping(old, nv)
			kept = append(kept, k, v)
			continue
		}
		if old.Kind == nv.Kind && old.Kind == yaml.ScalarNode && old.Value == nv.Value {
			kept = append(kept, k, v) // unchanged: keep the user's quoting
			continue
		}
		nv.HeadComment, nv.LineComment, nv.FootComment = old.HeadComment, old.LineComment, old.FootComment
		if old.Kind == nv.Kind && old.Kind == yaml.SequenceNode {
			if old.Style&yaml.FlowStyle == 0 {
				nv.Style &^= yaml.FlowStyle // the user wrote a block list
			}
			reuseItems(old, nv)
		}
		kept = append(kept, k, nv)
	}
	// New keys go right after the closest preceding key of src's order, so
	// "description" lands next to "name", not at the end.
	for idx, k := range order {
		if present[k] {
			continue
		}
		at := 0
		for p := idx - 1; p >= 0; p-- {
			if j := keyIndex(kept, order[p]); j >= 0 {
				at = j + 2
				break
			}
		}
		pair := []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: k}, srcVal[k]}
		kept = append(kept[:at], append(pair, kept[at:]...)...)
		present[k] = true
	}
	dst.Content = kept
}

// reuseItems puts the old nodes of unchanged scalar items into the new
// list, so their comments and quoting survive.
func reuseItems(old, nv *yaml.Node) {
	used := make([]bool, len(old.Content))
	for i, item := range nv.Content {
		if item.Kind != yaml.ScalarNode {
			continue
		}
		for j, o := range old.Content {
			if !used[j] && o.Kind == yaml.ScalarNode && o.Value == item.Value {
				nv.Content[i], used[j] = o, true
				break
			}
		}
	}
}

// keyIndex is the position of key in a mapping's Content, or -1.
func keyIndex(content []*yaml.Node, key string) int {
	for i := 0; i+1 < len(content); i += 2 {
		if content[i].Value == key {
			return i
		}
	}
	return -1
}
