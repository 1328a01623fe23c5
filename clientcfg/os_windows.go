//go:build windows

package clientcfg

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
)

func keepOwner(*os.File, fs.FileInfo) {}

// Windows error codes returned while another process holds the file open
// without FILE_SHARE_DELETE.
const (
	errorAccessDenied     = syscall.Errno(5)
	errorSharingViolation = syscall.Errno(32)
	errorLockViolation    = syscall.Errno(33)
)

func isSharingViolation(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	return errno == errorAccessDenied || errno == errorSharingViolation || errno == errorLockViolation
}
