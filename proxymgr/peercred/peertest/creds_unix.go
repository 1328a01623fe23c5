//go:build unix

package peertest

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr runs a process as uid (and the same gid, no supplementary
// groups); Owner keeps this process's user.
func sysProcAttr(uid int) (*syscall.SysProcAttr, error) {
	if uid == Owner {
		return nil, nil
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("skipping: starting a client as another OS user needs root")
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}, nil
}
