//go:build !unix && !windows

package clientcfg

import (
	"io/fs"
	"os"
)

func keepOwner(*os.File, fs.FileInfo) {}
func isSharingViolation(error) bool   { return false }
