package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// methods on Linux: netlink sock_diag first (one hashed lookup in the
// kernel), the /proc tables (a scan of every TCP socket) when it is missing.
var methods = []method{
	{"netlink sock_diag", sockDiagLookup},
	{"/proc/net/tcp", procLookup},
}

// Layout of the sock_diag messages (linux/netlink.h, linux/inet_diag.h).
const (
	nlmsgHdrLen     = 16 // struct nlmsghdr
	inetDiagReqLen  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen  = 72 // struct inet_diag_msg
	diagMsgUID      = 64 // idiag_uid in inet_diag_msg
	diagMsgInode    = 68 // idiag_inode in inet_diag_msg
	diagSockIDStart = 4  // struct inet_diag_sockid in inet_diag_msg
)

var diagSeq atomic.Uint32

// sockDiagLookup asks the kernel for the socket whose local address is
// remote and whose remote address is local: the client's own socket.
func sockDiagLookup(local, remote netip.AddrPort) Verdict {
	uid, inode, err := sockDiag(remote, local)
	if err != nil {
		if errors.Is(err, syscall.ENOENT) {
			err = errNotFound
		}
		return unknown(fmt.Errorf("sock_diag: %w", err))
	}
	if inode == 0 {
		return unknown(ErrNoOwner)
	}
	return uidVerdict(uid, os.Geteuid())
}

// sockDiag sends one exact INET_DIAG lookup (no dump) for the TCP socket
// src -> dst and returns its owner's uid and its inode (0 when no file holds
// it any more: closed or in TIME_WAIT).
func sockDiag(src, dst netip.AddrPort) (uid, inode uint32, err error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, 0, fmt.Errorf("open a netlink socket: %w", err)
	}
	defer unix.Close(fd)
	// The kernel answers at once; the timeout only guards against a kernel
	// that never does.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
		return 0, 0, err
	}
	seq := diagSeq.Add(1)
	req := diagRequest(src, dst, seq)
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, err
	}
	var buf [2048]byte
	for {
		n, _, err := unix.Recvfrom(fd, buf[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		uid, inode, done, err := parseDiagReply(buf[:n], src, dst, seq)
		if done || err != nil {
			return uid, inode, err
		}
	}
}

// diagRequest builds an nlmsghdr and inet_diag_req_v2 asking for the TCP
// socket src -> dst.
func diagRequest(src, dst netip.AddrPort, seq uint32) [nlmsgHdrLen + inetDiagReqLen]byte {
	var req [nlmsgHdrLen + inetDiagReqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], seq)
	b := req[nlmsgHdrLen:]
	b[0] = unix.AF_INET6
	if src.Addr().Is4() {
		b[0] = unix.AF_INET
	}
	b[1] = unix.IPPROTO_TCP
	ne.PutUint32(b[4:], ^uint32(0)) // every state
	putSockID(b[8:56], src, dst)
	ne.PutUint32(b[48:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	ne.PutUint32(b[52:], ^uint32(0))
	return req
}

// putSockID writes the ports and addresses of a struct inet_diag_sockid
// (48 bytes: sport, dport, src[4], dst[4], if, cookie[2]).
func putSockID(id []byte, src, dst netip.AddrPort) {
	binary.BigEndian.PutUint16(id[0:], src.Port())
	binary.BigEndian.PutUint16(id[2:], dst.Port())
	putAddr(id[4:20], src.Addr())
	putAddr(id[20:36], dst.Addr())
}

func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
		return
	}
	v := a.As16()
	copy(b, v[:])
}

// parseDiagReply reads one netlink datagram: the inet_diag_msg of the
// socket src -> dst, or an error. done is false when the datagram holds
// nothing of this request (an old answer).
func parseDiagReply(buf []byte, src, dst netip.AddrPort, seq uint32) (uid, inode uint32, done bool, err error) {
	ne := binary.NativeEndian
	for len(buf) >= nlmsgHdrLen {
		l := int(ne.Uint32(buf[0:]))
		if l < nlmsgHdrLen || l > len(buf) {
			return 0, 0, true, fmt.Errorf("malformed netlink message of %d bytes", l)
		}
		typ, mseq := ne.Uint16(buf[4:]), ne.Uint32(buf[8:])
		msg := buf[nlmsgHdrLen:l]
		buf = buf[min((l+3)&^3, len(buf)):]
		if mseq != seq {
			continue
		}
		switch typ {
		case unix.NLMSG_ERROR:
			if len(msg) < 4 {
				return 0, 0, true, errors.New("short netlink error message")
			}
			if e := int32(ne.Uint32(msg)); e < 0 {
				return 0, 0, true, syscall.Errno(-e)
			}
			return 0, 0, true, errNotFound
		case unix.NLMSG_DONE:
			return 0, 0, true, errNotFound
		case unix.SOCK_DIAG_BY_FAMILY:
			if len(msg) < inetDiagMsgLen {
				return 0, 0, true, fmt.Errorf("short inet_diag_msg of %d bytes", len(msg))
			}
			var want [48]byte
			putSockID(want[:], src, dst)
			got := msg[diagSockIDStart : diagSockIDStart+36]
			if string(got) != string(want[:36]) {
				return 0, 0, true, errors.New("the kernel answered about another socket")
			}
			return ne.Uint32(msg[diagMsgUID:]), ne.Uint32(msg[diagMsgInode:]), true, nil
		}
	}
	return 0, 0, false, nil
}

// procLookup finds the client's socket in /proc/net/tcp (IPv4 sockets) or
// /proc/net/tcp6 (IPv6 sockets, and dual-stack ones talking IPv4).
func procLookup(local, remote netip.AddrPort) Verdict {
	files := []string{"/proc/net/tcp6"}
	if remote.Addr().Is4() {
		files = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	var firstErr error
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			firstErr = cmpOr(firstErr, err)
			continue
		}
		e, err := findProcNet(f, remote, local)
		f.Close()
		if err == nil {
			return procVerdict(e, os.Geteuid())
		}
		if !errors.Is(err, errNotFound) {
			return unknown(fmt.Errorf("%s: %w", name, err))
		}
		firstErr = cmpOr(firstErr, err)
	}
	return unknown(firstErr)
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
