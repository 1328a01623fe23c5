package clientcfg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// Options configure an Editor.
type Options struct {
	// StateDir holds backups, the undo journal and lock files; default
	// <user config dir>/keyport/clientcfg (e.g. ~/.config/keyport/clientcfg).
	StateDir string
	// Format lays out the entries Keyport writes (default auto: match the
	// file). The rest of the file is never reformatted.
	Format JSONFormat
	// Keep is how many versions of each file are kept as backups (default 5).
	Keep int
	// LockTimeout bounds the wait for another Keyport process editing the
	// same file (default 10s).
	LockTimeout time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// Logger gets debug logs; default slog.Default().
	Logger *slog.Logger
}

// DefaultStateDir is where an Editor keeps backups by default.
func DefaultStateDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory (set HOME or XDG_CONFIG_HOME): %w", err)
	}
	return filepath.Join(d, "keyport", "clientcfg"), nil
}

// Editor edits client config files safely. It is safe for concurrent use,
// also by several processes (they coordinate through lock files).
type Editor struct {
	opts Options
	st   *store
	log  *slog.Logger

	mu  sync.Mutex
	own map[string][]string // file → sums of what this Editor wrote recently

	// beforeCommit, when set (tests), runs after the new text is written to
	// the temp file and before the final check and rename.
	beforeCommit func(file string)
}

// NewEditor returns an Editor.
func NewEditor(opts Options) (*Editor, error) {
	if opts.StateDir == "" {
		d, err := DefaultStateDir()
		if err != nil {
			return nil, err
		}
		opts.StateDir = d
	}
	if opts.Format == "" {
		opts.Format = FormatAuto
	}
	if _, err := ParseJSONFormat(string(opts.Format)); err != nil {
		return nil, err
	}
	if opts.Keep <= 0 {
		opts.Keep = 5
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Editor{
		opts: opts,
		st:   &store{dir: opts.StateDir, keep: opts.Keep, now: opts.Now},
		log:  opts.Logger,
		own:  map[string][]string{},
	}, nil
}

// Change is what an operation did (or, from Preview, would do) to a file.
type Change struct {
	// Path is the target's path; File is the file holding the content
	// (different when Path is a symlink).
	Path, File string
	// Before and After are the whole file (nil Before: it did not exist).
	Before, After []byte
	// Diff is a unified diff of Before and After with header and env
	// values redacted; "" when nothing changes.
	Diff string
	// Wrote reports whether the file was written (false for Preview and
	// when it was already as wanted).
	Wrote bool
	// Created reports that the file did not exist before.
	Created bool
	// Backup is the saved copy of Before, when one was made.
	Backup string
	// Skipped lists servers Sync left alone because their key holds a
	// foreign entry.
	Skipped []EntryStatus
}

// Changed reports whether the operation changes the file.
func (c Change) Changed() bool {
	return !bytes.Equal(c.Before, c.After) || (c.Created && c.After != nil)
}

// load reads and parses the file. A parse failure is retried briefly while
// the content keeps changing (another program may be half-way through
// writing it); a stable invalid file is a *ConfigError.
func (e *Editor) load(file string) ([]byte, fs.FileInfo, *doc, error) {
	var lastErr error
	var prev []byte
	for attempt := 0; attempt < 5; attempt++ {
		raw, info, err := readFile(file)
		if err != nil {
			return nil, nil, nil, err
		}
		d, err := parseDoc(file, raw)
		if err == nil {
			return raw, info, d, nil
		}
		if attempt > 0 && bytes.Equal(raw, prev) {
			return nil, nil, nil, err
		}
		prev, lastErr = raw, err
		time.Sleep(20 * time.Millisecond)
	}
	return nil, nil, nil, lastErr
}

// Status reports the state of each wanted server's entry in the target's
// file, then the Keyport entries of servers not in wants (orphans) and
// other "keyport-*" keys (foreign). A missing file means every want is
// missing.
func (e *Editor) Status(t Target, wants []Want) ([]EntryStatus, error) {
	file, err := resolveLinks(t.Path)
	if err != nil {
		return nil, err
	}
	_, _, d, err := e.load(file)
	if err != nil {
		return nil, err
	}
	return statusOf(d, t.Client, wants)
}

// Entries lists every server entry of the target's file (for import).
func (e *Editor) Entries(t Target) ([]Entry, error) {
	file, err := resolveLinks(t.Path)
	if err != nil {
		return nil, err
	}
	_, _, d, err := e.load(file)
	if err != nil {
		return nil, err
	}
	return entriesOf(d, t.Client)
}

// Install makes w's entry present and up to date. Installing twice writes
// once. A "keyport-NAME" key holding a foreign entry is a *ForeignError.
func (e *Editor) Install(t Target, w Want) (Change, error) { return e.Apply(t, InstallOp(w)) }

// Remove removes server's Keyport entry (nothing to do if there is none).
func (e *Editor) Remove(t Target, server string) (Change, error) {
	return e.Apply(t, RemoveOp(server))
}

// RemoveKey removes the entry named key, whoever wrote it: for a removal the
// user asked for by name.
func (e *Editor) RemoveKey(t Target, key string) (Change, error) {
	return e.Apply(t, RemoveKeyOp(key))
}

// Sync makes every want's entry ok and removes the Keyport entries of
// servers not in wants; foreign keys are left alone and listed in
// Change.Skipped.
func (e *Editor) Sync(t Target, wants []Want) (Change, error) { return e.Apply(t, SyncOp(wants)) }

// Preview returns the change op would make, without writing anything.
func (e *Editor) Preview(t Target, op Op) (Change, error) { return e.run(t, op, false) }

// Apply performs op on the target's file.
func (e *Editor) Apply(t Target, op Op) (Change, error) { return e.run(t, op, true) }

// lock takes the cross-process lock of a file.
func (e *Editor) lock(file string) (func(), error) {
	p := e.st.lockPath(file)
	if err := e.st.ensure(filepath.Dir(p)); err != nil {
		return nil, err
	}
	fl := flock.New(p)
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.LockTimeout)
	defer cancel()
	ok, err := fl.TryLockContext(ctx, 20*time.Millisecond)
	if err != nil || !ok {
		if err == nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("another Keyport process is editing %s (lock %s): %w", file, p, err)
	}
	return func() { _ = fl.Unlock() }, nil
}

// ErrKeptChanging: the file changed under Keyport on every attempt.
var ErrKeptChanging = errors.New("the file kept changing while Keyport tried to edit it")

func (e *Editor) run(t Target, op Op, write bool) (Change, error) {
	ch := Change{Path: t.Path}
	if err := op.check(); err != nil {
		return ch, err
	}
	file, err := resolveLinks(t.Path)
	if err != nil {
		return ch, err
	}
	ch.File = file
	if write {
		unlock, err := e.lock(file)
		if err != nil {
			return ch, err
		}
		defer unlock()
	}
	for attempt := 0; attempt < 8; attempt++ {
		raw, info, d, err := e.load(file)
		if err != nil {
			return ch, err
		}
		p, err := planOp(d, t.Client, op, e.opts.Format)
		if err != nil {
			return ch, err
		}
		ch.Before, ch.After, ch.Skipped, ch.Created = raw, p.out, p.skipped, info == nil
		if bytes.Equal(p.out, raw) && (info != nil || p.out == nil) {
			ch.After, ch.Created = raw, false
			return ch, nil
		}
		if !write {
			if err := p.verify(); err != nil {
				return ch, err
			}
			ch.Diff = unifiedDiff(t.Path, raw, p.out, p.secrets)
			return ch, nil
		}
		backup, err := e.commit(file, raw, info, p, op)
		if errors.Is(err, errConflict) {
			e.log.Debug("config changed during edit; re-reading", "file", file, "attempt", attempt+1)
			continue
		}
		if err != nil {
			return ch, err
		}
		ch.Diff = unifiedDiff(t.Path, raw, p.out, p.secrets)
		ch.Wrote = true
		if backup != "" {
			ch.Backup = filepath.Join(e.st.fileDir(file), backup)
		}
		e.log.Debug("updated client config", "file", file, "op", op.String())
		return ch, nil
	}
	return ch, fmt.Errorf("%s: %w; retry when the client is idle", file, ErrKeptChanging)
}

// commit replaces file with p.out if the file still holds raw (errConflict
// otherwise), backing raw up first, and records the change for Undo. The
// check of the new text and the backup run while the temp file is written
// and fsynced; nothing is renamed until both are done.
func (e *Editor) commit(file string, raw []byte, info fs.FileInfo, p planned, op Op) (backup string, err error) {
	verified := make(chan error, 1)
	var after string
	go func() {
		err := p.verify()
		after = sum(p.out)
		verified <- err
	}()
	type backupResult struct {
		name string
		err  error
	}
	backedUp := make(chan backupResult, 1)
	go func() {
		if info == nil {
			backedUp <- backupResult{}
			return
		}
		name, err := e.st.backup(file, raw)
		backedUp <- backupResult{name, err}
	}()
	if e.beforeCommit != nil {
		e.beforeCommit(file)
	}
	waited := false
	wait := func() error {
		waited = true
		verr := <-verified
		b := <-backedUp
		backup = b.name
		if verr != nil {
			return verr
		}
		return b.err
	}
	err = writeAtomic(file, p.out, info, func() error {
		if err := wait(); err != nil {
			return err
		}
		cur, curInfo, err := readFile(file)
		if err != nil {
			return err
		}
		if (curInfo == nil) != (info == nil) || !bytes.Equal(cur, raw) {
			return errConflict
		}
		// Known before the rename, so the watcher never mistakes it.
		e.remember(file, after)
		return nil
	})
	if !waited {
		_ = wait()
	}
	if err != nil {
		if backup != "" {
			os.Remove(filepath.Join(e.st.fileDir(file), backup))
		}
		return "", err
	}
	if err := e.st.record(file, &journalEntry{Time: e.opts.Now().UTC(), Op: op.String(), Backup: backup, After: after}); err != nil {
		e.log.Warn("could not record the change for undo", "file", file, "err", err)
	}
	return backup, nil
}

// remember records a sum of content this Editor wrote to file, so the
// watcher does not report it as an outside edit.
func (e *Editor) remember(file, s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := append(e.own[file], s)
	if len(l) > 8 {
		l = l[len(l)-8:]
	}
	e.own[file] = l
}

// wroteByUs reports whether this Editor wrote content with sum s to file,
// and whether any Keyport process did as its last change (journal).
func (e *Editor) wroteByUs(file, s string) (inProcess, keyport bool) {
	e.mu.Lock()
	for _, x := range e.own[file] {
		if x == s {
			inProcess = true
		}
	}
	e.mu.Unlock()
	if inProcess {
		return true, true
	}
	if j, err := e.st.journal(file); err == nil && len(j) > 0 && j[len(j)-1].After == s {
		return false, true
	}
	return false, false
}

// ErrNothingToUndo: Keyport has no recorded change of the file.
var ErrNothingToUndo = errors.New("Keyport has made no change to this file that it can undo")

// ErrChangedSince: the file was edited after Keyport's last change, so an
// undo would throw those edits away.
var ErrChangedSince = errors.New("the file changed after Keyport's last change")

// Undo restores the version before the last change Keyport made to the
// target's file (deleting the file if Keyport created it). It refuses when
// the file was edited since, so no one's edits are lost; the backups stay
// available (Backups) in that case. Repeated Undo steps further back.
func (e *Editor) Undo(t Target) (Change, error) {
	ch := Change{Path: t.Path}
	file, err := resolveLinks(t.Path)
	if err != nil {
		return ch, err
	}
	ch.File = file
	unlock, err := e.lock(file)
	if err != nil {
		return ch, err
	}
	defer unlock()
	j, err := e.st.journal(file)
	if err != nil {
		return ch, err
	}
	if len(j) == 0 {
		return ch, fmt.Errorf("%s: %w", t.Path, ErrNothingToUndo)
	}
	last := j[len(j)-1]
	raw, info, err := readFile(file)
	if err != nil {
		return ch, err
	}
	if info == nil || sum(raw) != last.After {
		hint := ""
		if last.Backup != "" {
			hint = fmt.Sprintf("; the version before it is kept at %s", filepath.Join(e.st.fileDir(file), last.Backup))
		}
		return ch, fmt.Errorf("%s: %w (%s at %s); not undoing, so those edits are kept%s", t.Path, ErrChangedSince, last.Op, last.Time.Local().Format(time.DateTime), hint)
	}
	var restored []byte
	if last.Backup != "" {
		restored, err = os.ReadFile(filepath.Join(e.st.fileDir(file), last.Backup))
		if err != nil {
			return ch, fmt.Errorf("%s: the backup to restore is gone: %w", t.Path, err)
		}
	}
	ch.Before, ch.After = raw, restored
	ch.Diff = unifiedDiff(t.Path, raw, restored, nil)
	backup, err := e.st.backup(file, raw)
	if err != nil {
		return ch, err
	}
	ch.Backup = filepath.Join(e.st.fileDir(file), backup)
	check := func() error {
		cur, _, err := readFile(file)
		if err != nil {
			return err
		}
		if !bytes.Equal(cur, raw) {
			return fmt.Errorf("%s: %w just now; not undoing", t.Path, ErrChangedSince)
		}
		return nil
	}
	if last.Backup == "" {
		if err := check(); err != nil {
			return ch, err
		}
		e.remember(file, "absent")
		if err := removeFile(file); err != nil {
			return ch, fmt.Errorf("remove %s (Keyport created it): %w", file, err)
		}
	} else {
		restoredSum := sum(restored)
		if err := writeAtomic(file, restored, info, func() error {
			if err := check(); err != nil {
				return err
			}
			e.remember(file, restoredSum)
			return nil
		}); err != nil {
			return ch, err
		}
	}
	ch.Wrote = true
	if err := e.st.saveJournal(file, j[:len(j)-1]); err != nil {
		e.log.Warn("could not update the undo journal", "file", file, "err", err)
	}
	if err := e.st.prune(file); err != nil {
		e.log.Warn("could not prune old backups", "file", file, "err", err)
	}
	return ch, nil
}

// CanUndo reports whether Undo would succeed now: Keyport changed the file
// and nobody edited it since.
func (e *Editor) CanUndo(t Target) bool {
	file, err := resolveLinks(t.Path)
	if err != nil {
		return false
	}
	j, err := e.st.journal(file)
	if err != nil || len(j) == 0 {
		return false
	}
	raw, info, err := readFile(file)
	return err == nil && info != nil && sum(raw) == j[len(j)-1].After
}

// Backups lists the kept versions of the target's file, newest first.
func (e *Editor) Backups(t Target) ([]Backup, error) {
	file, err := resolveLinks(t.Path)
	if err != nil {
		return nil, err
	}
	return e.st.backups(file)
}
