package telemetry

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"keyport/app/internal/atomicfile"
)

// auditFile is one audit log file on disk: NAME.jsonl or a rotation of it
// (NAME.jsonl.1 is older than NAME.jsonl, .2 older still).
type auditFile struct {
	server string
	path   string
	gen    int    // 0 for NAME.jsonl, N for NAME.jsonl.N
	fp     string // identity: a hash of its first line, which rotation keeps
	size   int64
}

// fpBytes is how much of a file's first line identifies it: it holds the
// event's time (to the nanosecond) and id.
const fpBytes = 512

// listAudit finds the audit files of every server in dir, oldest first per
// server. Files without a complete first line yet are left out.
func listAudit(dir string) ([]auditFile, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the audit dir: %w", err)
	}
	var files []auditFile
	for _, e := range entries {
		name := e.Name()
		i := strings.Index(name, ".jsonl")
		if i <= 0 || strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		gen := 0
		if rest := name[i+len(".jsonl"):]; rest != "" {
			n, err := strconv.Atoi(strings.TrimPrefix(rest, "."))
			if err != nil || !strings.HasPrefix(rest, ".") || n <= 0 {
				continue
			}
			gen = n
		}
		f := auditFile{server: name[:i], path: filepath.Join(dir, name), gen: gen}
		if f.fp, f.size, err = fingerprint(f.path); err != nil || f.fp == "" {
			continue
		}
		files = append(files, f)
	}
	sort.Slice(files, func(a, b int) bool {
		if files[a].server != files[b].server {
			return files[a].server < files[b].server
		}
		return files[a].gen > files[b].gen
	})
	return files, nil
}

// fingerprint hashes the start of a file's first line ("" while it has no
// complete line) and returns its size.
func fingerprint(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return fingerprintOf(f)
}

func fingerprintOf(f *os.File) (string, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	buf := make([]byte, fpBytes)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
	if i := bytes.IndexByte(buf, '\n'); i >= 0 {
		buf = buf[:i]
	} else if n < fpBytes {
		return "", st.Size(), nil
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:12]), st.Size(), nil
}

// cursor is how far a signal's export got: per server, per file identity,
// the offset of the first byte not yet exported. It lives in
// StateDir/cursor-SIGNAL.json, written atomically after every export.
type cursor struct {
	path    string
	Servers map[string]map[string]int64 `json:"servers"`
}

func loadCursor(path string) (*cursor, error) {
	c := &cursor{path: path, Servers: map[string]map[string]int64{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the export cursor: %w", err)
	}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("the export cursor %s is damaged (%v); remove it to export the audit log again from the start", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]map[string]int64{}
	}
	return c, nil
}

func (c *cursor) offset(f auditFile) int64 { return c.Servers[f.server][f.fp] }

func (c *cursor) set(f auditFile, off int64) {
	m := c.Servers[f.server]
	if m == nil {
		m = map[string]int64{}
		c.Servers[f.server] = m
	}
	m[f.fp] = off
}

// prune forgets files no longer on disk; it returns the bytes that were
// never exported from them (rotated away: lost to the export).
func (c *cursor) prune(files []auditFile, lastSize map[string]int64) (lost int64) {
	on := map[string]bool{}
	for _, f := range files {
		on[f.server+"/"+f.fp] = true
	}
	for server, m := range c.Servers {
		for fp, off := range m {
			if !on[server+"/"+fp] {
				if sz := lastSize[server+"/"+fp]; sz > off {
					lost += sz - off
				}
				delete(m, fp)
			}
		}
		if len(m) == 0 {
			delete(c.Servers, server)
		}
	}
	return lost
}

func (c *cursor) save() error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(c.path, data, 0o600)
}

// backlog is how many bytes of the audit files are not exported yet.
func backlog(files []auditFile, c *cursor) int64 {
	var n int64
	for _, f := range files {
		if d := f.size - c.offset(f); d > 0 {
			n += d
		}
	}
	return n
}

// maxBatchBytes bounds the lines one batch reads into memory (a single
// longer line is still read whole).
const maxBatchBytes = 4 << 20

// batch is a run of complete audit lines read from one file. Its buffers
// are reused from one read to the next.
type batch struct {
	buf   []byte
	lines [][]byte // into buf, without their newline
	end   int64    // the offset just after the last line
	full  bool     // stopped at a limit: more complete lines may follow
}

// read fills b with up to max complete lines of f from off. A last line
// without its newline (being written) is left for later.
func (b *batch) read(f auditFile, off int64, max int) error {
	b.lines, b.end, b.full = b.lines[:0], off, false
	avail := f.size - off
	if avail <= 0 {
		return nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	// The file may have rotated since it was listed: its path now names
	// a newer file, which must not be read at this file's offset.
	if fp, _, err := fingerprintOf(fh); err != nil || fp != f.fp {
		return errRotated
	}
	n := min(avail, maxBatchBytes)
	var data []byte
	for {
		if int64(cap(b.buf)) < n {
			b.buf = make([]byte, n)
		}
		got, err := fh.ReadAt(b.buf[:n], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		data = b.buf[:got]
		// A single line longer than the buffer: read more of it.
		if bytes.IndexByte(data, '\n') >= 0 || int64(got) < n || n >= avail {
			break
		}
		n = min(avail, 2*n)
	}
	read := int64(len(data))
	for len(b.lines) < max {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		b.lines = append(b.lines, bytes.TrimRight(data[:i], "\r"))
		b.end += int64(i + 1)
		data = data[i+1:]
	}
	b.full = len(b.lines) == max || (read < avail && len(b.lines) > 0)
	return nil
}

var errRotated = errors.New("the audit file rotated since it was listed")

// release drops buffers grown for a backlog, once it is exported.
func (b *batch) release() {
	if cap(b.buf) > 256<<10 {
		b.buf = nil
	}
	if cap(b.lines) > 1024 {
		b.lines = nil
	}
}
