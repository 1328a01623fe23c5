//go:build !unix

package peertest

import (
	"errors"
	"syscall"
)

// sysProcAttr: this system has no uid to switch to in tests.
func sysProcAttr(uid int) (*syscall.SysProcAttr, error) {
	if uid == Owner {
		return nil, nil
	}
	return nil, errors.New("skipping: clients as another user are started on Unix systems only")
}
