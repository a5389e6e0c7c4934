//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// listeningSockets counts the TCP sockets in LISTEN state that process pid holds.
func listeningSockets(t *testing.T, pid int) int {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot read the process's descriptors: %v", err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	n := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			if len(fields) > 9 && fields[3] == "0A" && inodes[fields[9]] {
				n++
			}
		}
		f.Close()
	}
	return n
}

// TestServeListensOnlyOnHTTP: the embedded NATS server of `fincore serve` takes no TCP port
// unless --nats-listen asks for one.
func TestServeListensOnlyOnHTTP(t *testing.T) {
	srv := startServer(t, "--data", t.TempDir())
	defer srv.kill()
	if n := listeningSockets(t, srv.cmd.Process.Pid); n != 1 {
		t.Fatalf("serve holds %d listening TCP sockets, want 1 (HTTP only)", n)
	}
	srv.kill()

	srv2 := startServer(t, "--data", t.TempDir(), "--nats-listen", freeAddr(t))
	defer srv2.kill()
	if n := listeningSockets(t, srv2.cmd.Process.Pid); n != 2 {
		t.Fatalf("serve --nats-listen holds %d listening TCP sockets, want 2", n)
	}
}
