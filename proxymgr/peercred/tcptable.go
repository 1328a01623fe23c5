package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Layout of Windows' TCP tables with owning processes (GetExtendedTcpTable,
// TCP_TABLE_OWNER_PID_ALL; iprtrmib.h, tcpmib.h): a DWORD row count, then
// rows of DWORDs. Addresses are in network order (their bytes as on the
// wire) and so are ports, in the low 16 bits of a DWORD (its first two bytes
// in memory).
const (
	tcpRowLen  = 24 // MIB_TCPROW_OWNER_PID: state, local addr, local port, remote addr, remote port, pid
	tcp6RowLen = 56 // MIB_TCP6ROW_OWNER_PID: local addr[16], scope, port, remote addr[16], scope, port, state, pid

	mibTCPStateTimeWait = 11 // MIB_TCP_STATE_TIME_WAIT
)

// findTCPRow returns the owning process id of the TCP socket src -> dst in
// a table of GetExtendedTcpTable (IPv6 rows when six). A connection in
// TIME_WAIT, or one without a process, has no owner (ErrNoOwner unless a
// live row matches); two live rows with different processes are not
// believed.
func findTCPRow(buf []byte, six bool, src, dst netip.AddrPort) (uint32, error) {
	ne := binary.NativeEndian
	if len(buf) < 4 {
		return 0, errors.New("TCP table: no row count")
	}
	n := int(ne.Uint32(buf))
	size := tcpRowLen
	if six {
		size = tcp6RowLen
	}
	if n < 0 || n > (len(buf)-4)/size {
		return 0, fmt.Errorf("TCP table: %d rows do not fit in %d bytes", n, len(buf))
	}
	var (
		found, closed bool
		pid           uint32
	)
	for i := range n {
		row := buf[4+i*size : 4+(i+1)*size]
		var (
			lport, rport uint16
			laddr, raddr netip.Addr
			state, p     uint32
		)
		if six {
			laddr = netip.AddrFrom16([16]byte(row[0:16])).Unmap()
			lport = binary.BigEndian.Uint16(row[20:])
			raddr = netip.AddrFrom16([16]byte(row[24:40])).Unmap()
			rport = binary.BigEndian.Uint16(row[44:])
			state, p = ne.Uint32(row[48:]), ne.Uint32(row[52:])
		} else {
			state = ne.Uint32(row[0:])
			laddr = netip.AddrFrom4([4]byte(row[4:8]))
			lport = binary.BigEndian.Uint16(row[8:])
			raddr = netip.AddrFrom4([4]byte(row[12:16]))
			rport = binary.BigEndian.Uint16(row[16:])
			p = ne.Uint32(row[20:])
		}
		if netip.AddrPortFrom(laddr, lport) != src || netip.AddrPortFrom(raddr, rport) != dst {
			continue
		}
		if state == mibTCPStateTimeWait || p == 0 {
			closed = true
			continue
		}
		if found && p != pid {
			return 0, errAmbiguous
		}
		found, pid = true, p
	}
	switch {
	case found:
		return pid, nil
	case closed:
		return 0, ErrNoOwner
	}
	return 0, errNotFound
}
