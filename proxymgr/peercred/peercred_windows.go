package peercred

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// methods on Windows: the TCP tables with owning processes, then the user
// SID of that process's token, compared with this process's.
var methods = []method{
	{"GetExtendedTcpTable", tcpTableLookup},
}

var (
	iphlpapi            = windows.NewLazySystemDLL("iphlpapi.dll")
	getExtendedTcpTable = iphlpapi.NewProc("GetExtendedTcpTable")
)

const tcpTableOwnerPIDAll = 5 // TCP_TABLE_OWNER_PID_ALL

// ourSID is this process's user.
var ourSID = sync.OnceValues(func() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read this process's user: %w", err)
	}
	return tu.User.Sid.Copy()
})

// tcpTableLookup finds the client's socket (local address remote, remote
// address local) in the TCP table and compares the user of its process with
// ours. A process that cannot be opened (another user's, as a standard user
// sees it) is unknown, so refused.
//
// Between the table and the process, the client could exit and its pid be
// given to a new process; the window is the time of one lookup, and the
// connection of an exited client is closed anyway.
func tcpTableLookup(local, remote netip.AddrPort) Verdict {
	six := !remote.Addr().Is4()
	buf, err := tcpTable(six)
	if err != nil {
		return unknown(err)
	}
	pid, err := findTCPRow(buf, six, remote, local)
	if err != nil {
		return unknown(err)
	}
	if int(pid) == os.Getpid() {
		return Verdict{Kind: Same, UID: -1, Owner: "this process"}
	}
	sid, err := processUser(pid)
	if err != nil {
		return unknown(err)
	}
	mine, err := ourSID()
	if err != nil {
		return unknown(err)
	}
	if windows.EqualSid(sid, mine) {
		return Verdict{Kind: Same, UID: -1, Owner: sid.String()}
	}
	return Verdict{Kind: Other, UID: -1, Owner: sid.String()}
}

// tcpTable reads the IPv4 or IPv6 TCP table with owning processes.
func tcpTable(six bool) ([]byte, error) {
	af := uint32(windows.AF_INET)
	if six {
		af = windows.AF_INET6
	}
	size := uint32(64 << 10)
	for range 8 {
		buf := make([]byte, size)
		r, _, _ := getExtendedTcpTable.Call(uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&size)), 0, uintptr(af), tcpTableOwnerPIDAll, 0)
		switch windows.Errno(r) {
		case 0:
			return buf, nil
		case windows.ERROR_INSUFFICIENT_BUFFER:
			size += 16 << 10 // sockets may open meanwhile
			continue
		default:
			return nil, fmt.Errorf("GetExtendedTcpTable: %w", windows.Errno(r))
		}
	}
	return nil, errors.New("GetExtendedTcpTable: the table keeps growing")
}

// processUser returns the user SID of process pid's token.
func processUser(pid uint32) (*windows.SID, error) {
	h, err := windows.OpenProcess(windows.PROCESS_QUERY_LIMITED_INFORMATION, false, pid)
	if err != nil {
		return nil, fmt.Errorf("open the client's process (pid %d): %w", pid, err)
	}
	defer windows.CloseHandle(h)
	var tok windows.Token
	if err := windows.OpenProcessToken(h, windows.TOKEN_QUERY, &tok); err != nil {
		return nil, fmt.Errorf("open the token of the client's process (pid %d): %w", pid, err)
	}
	defer tok.Close()
	tu, err := tok.GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read the user of the client's process (pid %d): %w", pid, err)
	}
	return tu.User.Sid.Copy()
}
