package clientcfg

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// resolveLinks follows symlinks at p (links to links included, dangling
// ones too) and returns the file that holds the content: writing there keeps
// every link a link.
func resolveLinks(p string) (string, error) {
	p = filepath.Clean(p)
	for range 40 {
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return p, nil
		}
		if err != nil {
			return "", fmt.Errorf("inspect %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return p, nil
		}
		dst, err := os.Readlink(p)
		if err != nil {
			return "", fmt.Errorf("read symlink %s: %w", p, err)
		}
		if !filepath.IsAbs(dst) {
			dst = filepath.Join(filepath.Dir(p), dst)
		}
		p = filepath.Clean(dst)
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", p)
}

// readFile returns the file's bytes and info; a missing file is (nil, nil,
// nil).
func readFile(p string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory, not a config file", p)
	}
	buf := bytes.NewBuffer(make([]byte, 0, fi.Size()+bytes.MinRead))
	_, err = buf.ReadFrom(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", p, err)
	}
	return buf.Bytes(), fi, nil
}

// errConflict means the file changed between Keyport's read and its rename.
var errConflict = errors.New("the file changed while Keyport was editing it")

// writeAtomic replaces real with data: a temp file in the same directory,
// written, given the old file's mode (and owner, when running as root),
// fsynced, then renamed over real. (The directory is not fsynced: after a
// crash the file is the old or the new version, both complete; only the
// durability of the new one is not waited for.) Missing
// directories are created 0700; a new file is 0600. precommit runs just
// before the rename; if it fails nothing is replaced.
func writeAtomic(real string, data []byte, old fs.FileInfo, precommit func() error) (err error) {
	dir := filepath.Dir(real)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".keyport-*.tmp")
	if err != nil {
		return fmt.Errorf("create a temporary file next to %s: %w", real, err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(name)
		}
	}()
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	perm := fs.FileMode(0o600)
	if old != nil {
		perm = old.Mode().Perm()
	}
	if err = tmp.Chmod(perm); err != nil {
		return fmt.Errorf("set the mode of %s: %w", name, err)
	}
	keepOwner(tmp, old)
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("flush %s to disk: %w", name, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	if precommit != nil {
		if err = precommit(); err != nil {
			return err
		}
	}
	if err = renameRetry(name, real, os.Rename, isSharingViolation, time.Sleep); err != nil {
		return fmt.Errorf("replace %s: %w", real, err)
	}
	return nil
}

// renameRetry renames, retrying for about two seconds while the OS reports
// that another process holds the file open (Windows: Claude Desktop may).
func renameRetry(from, to string, rename func(string, string) error, retryable func(error) bool, sleep func(time.Duration)) error {
	delay := 10 * time.Millisecond
	var err error
	for range 10 {
		if err = rename(from, to); err == nil || !retryable(err) {
			return err
		}
		sleep(delay)
		delay = min(delay*2, 500*time.Millisecond)
	}
	return fmt.Errorf("%w (another program keeps the file open; close it and retry)", err)
}

// removeFile deletes real (for an undo of a file Keyport created).
func removeFile(real string) error {
	err := os.Remove(real)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
