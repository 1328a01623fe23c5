package clientcfg

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// store keeps, under Keyport's state directory, per config file: the last
// versions before each Keyport write (backups), a journal of Keyport's
// changes (for Undo and for recognising Keyport's own writes), and the lock
// file. Nothing is put next to the user's config file but the short-lived
// temp file of an atomic write.
type store struct {
	dir  string
	keep int
	now  func() time.Time
}

// Backup is one kept version of a config file.
type Backup struct {
	// Path is the backup file.
	Path string
	// Time is when Keyport replaced this version.
	Time time.Time
	Size int64
}

type journalEntry struct {
	Time   time.Time `json:"time"`
	Op     string    `json:"op"`
	Backup string    `json:"backup"` // file name in the backup dir; "" if the file did not exist
	After  string    `json:"after"`  // sha256 of what Keyport wrote
}

const backupTimeFormat = "20060102T150405.000000000Z"

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// id names a config file inside the state directory.
func fileID(real string) string {
	h := sha256.Sum256([]byte(real))
	base := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r < ' ' {
			return '_'
		}
		return r
	}, filepath.Base(real))
	return base + "-" + hex.EncodeToString(h[:6])
}

func (s *store) fileDir(real string) string {
	return filepath.Join(s.dir, "backups", fileID(real))
}

func (s *store) lockPath(real string) string {
	return filepath.Join(s.dir, "locks", fileID(real)+".lock")
}

func (s *store) ensure(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create Keyport's state directory %s: %w", dir, err)
	}
	return nil
}

// backup saves content (the version about to be replaced) and returns the
// backup's file name.
func (s *store) backup(real string, content []byte) (string, error) {
	dir := s.fileDir(real)
	if err := s.ensure(dir); err != nil {
		return "", err
	}
	_ = os.WriteFile(filepath.Join(dir, "path"), []byte(real+"\n"), 0o600)
	t := s.now().UTC()
	for {
		name := t.Format(backupTimeFormat) + ".json"
		p := filepath.Join(dir, name)
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			t = t.Add(time.Nanosecond)
			continue
		}
		if err != nil {
			return "", fmt.Errorf("back up %s: %w", real, err)
		}
		// Not fsynced: a backup lost in a crash costs an undo step, never
		// the config file, which is fsynced before it replaces the old one.
		_, err = f.Write(content)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(p)
			return "", fmt.Errorf("back up %s to %s: %w", real, p, err)
		}
		return name, nil
	}
}

// backups lists the kept versions of real, newest first.
func (s *store) backups(real string) ([]Backup, error) {
	dir := s.fileDir(real)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	var out []Backup
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || name == "journal.json" {
			continue
		}
		t, err := time.Parse(backupTimeFormat, strings.TrimSuffix(name, ".json"))
		if err != nil {
			continue
		}
		var size int64
		if fi, err := e.Info(); err == nil {
			size = fi.Size()
		}
		out = append(out, Backup{Path: filepath.Join(dir, name), Time: t, Size: size})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path > out[j].Path })
	return out, nil
}

// prune keeps the newest s.keep backups and drops journal entries whose
// backup is gone.
func (s *store) prune(real string) error { return s.record(real, nil) }

func (s *store) journal(real string) ([]journalEntry, error) {
	p := filepath.Join(s.fileDir(real), "journal.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	var j []journalEntry
	if err := json.Unmarshal(b, &j); err != nil {
		// A damaged journal only costs the undo history.
		return nil, nil
	}
	return j, nil
}

func (s *store) saveJournal(real string, j []journalEntry) error {
	dir := s.fileDir(real)
	if err := s.ensure(dir); err != nil {
		return err
	}
	if len(j) > 2*s.keep+5 {
		j = j[len(j)-(2*s.keep+5):]
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, "journal.json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	return os.Rename(tmp, p)
}

// record prunes old backups and appends e to the journal (one write).
func (s *store) record(real string, e *journalEntry) error {
	bs, err := s.backups(real)
	if err != nil {
		return err
	}
	for _, b := range bs[min(len(bs), s.keep):] {
		os.Remove(b.Path)
	}
	kept := map[string]bool{}
	for _, b := range bs[:min(len(bs), s.keep)] {
		kept[filepath.Base(b.Path)] = true
	}
	j, err := s.journal(real)
	if err != nil {
		return err
	}
	out := j[:0]
	for _, x := range j {
		if x.Backup == "" || kept[x.Backup] {
			out = append(out, x)
		}
	}
	if e != nil {
		out = append(out, *e)
	}
	return s.saveJournal(real, out)
}
