package instance

import (
	"bufio"
	"net"
	"time"
)

// dialRaw sends req and returns the one-line answer.
func dialRaw(sock, req string) (string, error) {
	c, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}
