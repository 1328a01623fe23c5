//go:build !cgo

package main

import (
	"fmt"
	"os"
)

// Without cgo there is no GL driver: say so (the package still builds, so
// the repository's cgo-free vet covers it).
func main() {
	fmt.Fprintln(os.Stderr, "hello: the window needs cgo (CGO_ENABLED=1) and a C compiler")
	os.Exit(1)
}
