package remote

import (
	"bufio"
	"encoding/json"
	"net"
	"testing"
	"time"
)

// FuzzServerInput: whatever a peer sends, the server neither panics nor
// stops answering: a well-formed request sent after it on its own line is
// still answered.
func FuzzServerInput(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"method":"SetSecret","params":{"name":"a","kind":"bearer","value":"v"}}`,
		`{"id":2,"method":"Tools","params":{"name":"acme"}}` + "\n" + `{"cancel":2}`,
		`{"id":3,"method":"AddServer","params":{"Name":"x","Labels":{"a":"b"},"Secrets":null}}`,
		`{"id":4,"method":"Quit"}`,
		`{"id":5,"method":"CheckPolicy","params":{"allow":["[x"]}}`,
		`{"id":6,"method":"Tools","params":{"name":"panic"}}`,
		`{"id":0,"method":""}`, `{"cancel":99}`, `[]`, `null`, `{"id":-1}`, `{"id":1e30,"method":"Audit"}`,
		"\x00\x01\x02", `{"id":7,"method":"ImportFromRegistry","params":{"result":{"Questions":[{}]},"secrets":{}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{b: newFake(), log: quietLog, openURL: func(string) error { return nil },
			conns: map[*serverConn]struct{}{}}
		cli, srv := net.Pipe()
		defer cli.Close()
		sc := newServerConn(s, srv)
		served := make(chan struct{})
		go func() { sc.serve(); close(served) }()

		const probe = 1 << 40
		answered := make(chan bool, 1)
		go func() {
			in := bufio.NewScanner(cli)
			in.Buffer(nil, maxResponse)
			for in.Scan() {
				var f frame
				if json.Unmarshal(in.Bytes(), &f) == nil && f.ID == probe {
					answered <- true
					return
				}
			}
			answered <- false
		}()
		_ = cli.SetWriteDeadline(time.Now().Add(5 * time.Second))
		cli.Write(append(data, '\n'))
		cli.Write([]byte(`{"id":1099511627776,"method":"CheckPolicy","params":{"allow":["*"],"tools":["a"]}}` + "\n"))
		select {
		case ok := <-answered:
			if !ok {
				t.Fatalf("the server hung up after %q", data)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the server stopped answering after %q", data)
		}
		cli.Close()
		<-served
	})
}
