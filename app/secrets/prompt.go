package secrets

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/term"
)

// MaxSecretLen bounds one secret value read by a Prompter.
const MaxSecretLen = 64 << 10

// Prompter reads secret values for the CLI: from a no-echo prompt when its
// input is a terminal, otherwise one value per line from the input (so
// `printf 'tok\n' | keyport secret set NAME bearer` works in scripts).
// Secrets are never taken from argv, where other users of the machine can
// read them.
type Prompter struct {
	in  io.Reader
	out io.Writer
	fd  int           // terminal file descriptor, or -1
	buf *bufio.Reader // line reader for a non-terminal input
}

type fder interface{ Fd() uintptr }

// NewPrompter reads from in (typically os.Stdin) and writes prompts to out
// (typically os.Stderr: stdout may be a pipe to a script or an MCP client).
func NewPrompter(in io.Reader, out io.Writer) *Prompter {
	p := &Prompter{in: in, out: out, fd: -1}
	if f, ok := in.(fder); ok && term.IsTerminal(int(f.Fd())) {
		p.fd = int(f.Fd())
	} else {
		p.buf = bufio.NewReaderSize(in, 4096)
	}
	return p
}

// IsTerminal reports whether values are read from a no-echo prompt.
func (p *Prompter) IsTerminal() bool { return p.fd >= 0 }

// Read asks for the value named label (e.g. `bearer token for "github"`)
// and returns it without its line ending. An empty value is an error.
func (p *Prompter) Read(label string) (string, error) {
	var v string
	if p.fd >= 0 {
		fmt.Fprintf(p.out, "%s: ", label)
		b, err := term.ReadPassword(p.fd)
		fmt.Fprintln(p.out)
		if err != nil {
			return "", fmt.Errorf("read %s from the terminal: %w", label, err)
		}
		v = string(b)
	} else {
		line, err := p.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read %s from stdin: %w", label, err)
		}
		if errors.Is(err, io.EOF) && line == "" {
			return "", fmt.Errorf("read %s from stdin: no input (pipe the value in, one per line, or run in a terminal)", label)
		}
		v = line
	}
	v = strings.TrimRight(v, "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("empty value for %s", label)
	}
	return v, nil
}

// readLine reads one line of at most MaxSecretLen bytes.
func (p *Prompter) readLine() (string, error) {
	var b strings.Builder
	for {
		chunk, err := p.buf.ReadSlice('\n')
		b.Write(chunk)
		if b.Len() > MaxSecretLen+2 {
			return "", fmt.Errorf("value longer than %d bytes", MaxSecretLen)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return b.String(), err
	}
}

// ReadVisible asks for a value that is not secret (a registry import's
// tenant id, say): it echoes on a terminal, reads one line otherwise, and
// returns def for an empty answer.
func (p *Prompter) ReadVisible(label, def string) (string, error) {
	if p.buf == nil {
		p.buf = bufio.NewReaderSize(p.in, 4096)
	}
	if p.fd >= 0 {
		if def != "" {
			fmt.Fprintf(p.out, "%s [%s]: ", label, def)
		} else {
			fmt.Fprintf(p.out, "%s: ", label)
		}
	}
	line, err := p.readLine()
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", label, err)
	}
	if v := strings.TrimSpace(line); v != "" {
		return v, nil
	}
	return def, nil
}
