package main

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/anyops/anyops"
	"github.com/anyops/anyops/sandboxd/client"
	"github.com/anyops/anyops/sandboxd/token"
	"github.com/anyops/anyops/sandboxd/wire"
)

// createToFirstByteWS creates a login-shell sandbox through sandboxd's HTTP API, attaches to
// its terminal over the WebSocket and returns the time from the create request to the first
// terminal byte received; then it deletes the sandbox.
func createToFirstByteWS(baseURL, keyFile, image string) (time.Duration, error) {
	key, err := token.ReadPrivateKey(keyFile)
	if err != nil {
		return 0, err
	}
	c, err := client.New(baseURL, token.NewSigner(key))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	sb, err := c.Create(ctx, wire.CreateRequest{User: "bench", UID: anyops.FirstSandboxID, Plan: anyops.PlanFree, Image: image})
	if err != nil {
		return 0, fmt.Errorf("create: %w", err)
	}
	defer func() { _ = c.Delete(context.Background(), sb.ID) }()
	conn, err := c.Dial(ctx, sb.ID)
	if err != nil {
		return 0, fmt.Errorf("attach: %w", err)
	}
	defer conn.CloseNow()
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return 0, fmt.Errorf("read terminal: %w", err)
		}
		if typ == websocket.MessageBinary && len(data) > 0 {
			return time.Since(start), nil
		}
	}
}

// bwrapToFirstPromptByte runs the same login shell under bubblewrap on a PTY and returns the
// time from fork to the first byte on the terminal.
func bwrapToFirstPromptByte(bwrap, root string) (time.Duration, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return 0, err
	}
	defer master.Close()
	args := append(bwrapIsolation(root), "--setenv", "HOME", "/tmp", "--chdir", "/tmp", "/bin/bash", "--login", "-i")
	cmd := exec.Command(bwrap, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		slave.Close()
		return 0, err
	}
	slave.Close()
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if _, err := master.Read(make([]byte, 1)); err != nil {
		return 0, fmt.Errorf("bwrap shell: %w", err)
	}
	return time.Since(start), nil
}
