// Command preload-stand-in takes a Python plugin's place as the engine's child while the plugin
// itself is forked from a preloader (see toolchain/preload.py, which holds the other half of the
// protocol and explains why).
//
// Usage: preload-stand-in SOCKET PYTHON [-u] (-m MODULE | SCRIPT) ARGS...
//
// It sends the preloader at SOCKET its command, environment, working folder and its stdin, stdout
// and stderr, relays SIGINT, SIGTERM and SIGHUP to the plugin, and exits with the plugin's exit
// status. It leaves when its parent (the engine) exits; the plugin leaves when it does. When the
// preloader cannot take the command, it becomes PYTHON with the same arguments.
//
// A Python stand-in would cost each plugin 10 MB resident (4 MB of its own) and 15-30 ms of CPU;
// this one costs 2 MB and a millisecond.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 3 {
		os.Stderr.WriteString("usage: preload-stand-in SOCKET PYTHON [-u] (-m MODULE | SCRIPT) ARGS...\n")
		os.Exit(2)
	}
	socketPath, python, args := os.Args[1], os.Args[2], os.Args[3:]
	command := parse(args)
	if command == nil {
		become(python, args)
	}
	parent := os.Getppid()
	conn, pid, lines, err := fork(socketPath, command)
	if err != nil {
		become(python, args)
	}
	defer conn.Close()
	plugin, _ := unix.PidfdOpen(pid, 0)

	relayed := make(chan os.Signal, 4)
	signal.Notify(relayed, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for sig := range relayed {
			if plugin > 0 {
				_ = unix.PidfdSendSignal(plugin, sig.(syscall.Signal), nil, 0)
			}
		}
	}()

	engine, err := unix.PidfdOpen(parent, 0)
	if os.Getppid() != parent {
		os.Exit(1) // the engine is gone already
	}
	if err == nil {
		go func() {
			waitExit(engine) // the engine is gone: the plugin leaves with this process
			os.Exit(1)
		}()
	}

	for {
		line, err := lines.ReadString('\n')
		if err != nil { // the preloader is gone: the plugin's end is known from its pidfd
			if plugin > 0 {
				waitExit(plugin)
			}
			os.Exit(1)
		}
		fields := strings.Fields(line)
		if len(fields) == 2 && fields[0] == "exit" {
			code, _ := strconv.Atoi(fields[1])
			if code < 0 { // ended by a signal, reported as a shell would
				code = 128 - code
			}
			os.Exit(code)
		}
	}
}

// parse gives the preloader's form of the interpreter arguments, or nil if it cannot take them.
func parse(args []string) map[string]any {
	if len(args) > 0 && args[0] == "-u" { // a forked plugin's output is always unbuffered
		args = args[1:]
	}
	switch {
	case len(args) >= 2 && args[0] == "-m":
		return map[string]any{"module": args[1], "args": args[2:]}
	case len(args) >= 1 && !strings.HasPrefix(args[0], "-"):
		path, err := filepath.Abs(args[0])
		if err != nil {
			return nil
		}
		return map[string]any{"path": path, "args": args[1:]}
	}
	return nil
}

// fork asks the preloader for the plugin: its connection, the plugin's pid, and the connection's
// further lines (the plugin's end).
func fork(socketPath string, command map[string]any) (*net.UnixConn, int, *bufio.Reader, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: socketPath, Net: "unix"})
	if err != nil {
		return nil, 0, nil, err
	}
	env := map[string]string{}
	for _, item := range os.Environ() {
		if key, value, ok := strings.Cut(item, "="); ok {
			env[key] = value
		}
	}
	cwd, err := os.Getwd()
	if err != nil {
		conn.Close()
		return nil, 0, nil, err
	}
	command["env"], command["cwd"] = env, cwd
	body, err := json.Marshal(command)
	if err != nil {
		conn.Close()
		return nil, 0, nil, err
	}
	header := binary.BigEndian.AppendUint64(nil, uint64(len(body)))
	if _, _, err = conn.WriteMsgUnix(header, syscall.UnixRights(0, 1, 2), nil); err == nil {
		_, err = conn.Write(body)
	}
	lines := bufio.NewReader(conn)
	var line string
	if err == nil {
		line, err = lines.ReadString('\n')
	}
	fields := strings.Fields(line)
	if err != nil || len(fields) != 2 || fields[0] != "pid" {
		conn.Close()
		return nil, 0, nil, net.ErrClosed
	}
	pid, err := strconv.Atoi(fields[1])
	if err != nil {
		conn.Close()
		return nil, 0, nil, err
	}
	return conn, pid, lines, nil
}

// waitExit returns once the process of the pidfd has exited (the pidfd becomes readable).
func waitExit(pidfd int) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if n, err := unix.Poll(fds, -1); n > 0 || (err != nil && err != unix.EINTR) {
			return
		}
	}
}

// become replaces this process with the real interpreter.
func become(python string, args []string) {
	err := syscall.Exec(python, append([]string{python}, args...), os.Environ())
	os.Stderr.WriteString("preload-stand-in: cannot run " + python + ": " + err.Error() + "\n")
	os.Exit(127)
}
