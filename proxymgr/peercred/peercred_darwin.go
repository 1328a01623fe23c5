package peercred

import (
	"fmt"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// methods on macOS: the kernel's TCP table, whose socket records carry the
// uid of the socket's creator.
var methods = []method{
	{"sysctl net.inet.tcp.pcblist_n", pcbListLookup},
}

// pcbListLookup reads the TCP table (IPv4 and IPv6 sockets) and finds the
// client's socket: local address remote, foreign address local.
func pcbListLookup(local, remote netip.AddrPort) Verdict {
	buf, err := unix.SysctlRaw("net.inet.tcp.pcblist_n")
	if err != nil {
		return unknown(fmt.Errorf("sysctl net.inet.tcp.pcblist_n: %w", err))
	}
	uid, err := findPCB(buf, remote, local)
	if err != nil {
		return unknown(err)
	}
	return uidVerdict(uid, os.Geteuid())
}
