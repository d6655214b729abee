package main

// Managed mode: the one place that spawns codex-host. It starts the binary shipped in the bundle,
// pipes its log lines into the Mattermost server log, restarts it with backoff when it dies, and
// stops it (SIGTERM, then SIGKILL after a grace period) on deactivate or when its command line must
// change. Readiness and configuration are the syncer's job (hostsync.go): this file only reports
// "a new process is up" through onStart.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// logger is the part of plugin.API the plugin logs through.
type logger interface {
	LogDebug(msg string, keyValuePairs ...any)
	LogInfo(msg string, keyValuePairs ...any)
	LogWarn(msg string, keyValuePairs ...any)
	LogError(msg string, keyValuePairs ...any)
}

// hostCommand is everything that decides how codex-host is started; a change restarts it.
type hostCommand struct {
	Binary    string
	Socket    string
	StateDir  string
	PolicyDir string // bundled policies; empty when the bundle has none
	Secret    string
}

func (hc hostCommand) args() []string {
	args := []string{"serve", "--socket", hc.Socket, "--state-dir", hc.StateDir, "--log-format", "json"}
	if hc.PolicyDir != "" {
		args = append(args, "--policy-dir", hc.PolicyDir)
	}
	return args
}

// hostEnv is the plugin's environment minus Mattermost's own settings (MM_*: the database DSN
// and other server secrets must not reach Codex or the commands it runs), plus the host secret.
func hostEnv(parent []string, secret string) []string {
	env := make([]string, 0, len(parent)+1)
	for _, kv := range parent {
		if strings.HasPrefix(kv, "MM_") || strings.HasPrefix(kv, "CODEX_HOST_SECRET=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "CODEX_HOST_SECRET="+secret)
}

// Restart backoff: doubles from restartBackoffMin up to restartBackoffMax; a process that stayed up
// for restartBackoffReset counts as healthy again.
const (
	restartBackoffMin   = 500 * time.Millisecond
	restartBackoffMax   = 60 * time.Second
	restartBackoffReset = 2 * time.Minute
	stopGracePeriod     = 15 * time.Second
)

// hostProcess supervises one codex-host command line.
type hostProcess struct {
	cmd     hostCommand
	log     logger
	onStart func() // called after each successful spawn

	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}

	mu   sync.Mutex
	proc *os.Process
}

func startHostProcess(cmd hostCommand, log logger, onStart func()) *hostProcess {
	hp := &hostProcess{cmd: cmd, log: log, onStart: onStart, stopCh: make(chan struct{}), done: make(chan struct{})}
	go hp.supervise()
	return hp
}

func (hp *hostProcess) supervise() {
	defer close(hp.done)
	backoff := restartBackoffMin
	for !hp.stopping() {
		started := time.Now()
		exited, err := hp.spawn()
		if err != nil {
			hp.log.LogError("Could not start codex-host. Check that the bundle was unpacked completely and that the plugin directory allows executing files; Codex is unavailable until it starts.",
				"binary", hp.cmd.Binary, "error", err.Error())
		} else {
			hp.onStart()
			select {
			case state := <-exited:
				if hp.stopping() {
					return
				}
				if time.Since(started) > restartBackoffReset {
					backoff = restartBackoffMin
				}
				managedHostRestarts.Add(1)
				hp.log.LogError("codex-host exited unexpectedly; restarting it. Its last log lines above say why.",
					"exit", state, "uptime", time.Since(started).Round(time.Millisecond).String(), "restart_in", backoff.String())
			case <-hp.stopCh:
				// stop() has signalled the process; report done only once it is gone.
				<-exited
				return
			}
		}
		select {
		case <-time.After(backoff):
		case <-hp.stopCh:
			return
		}
		backoff = min(backoff*2, restartBackoffMax)
	}
}

// spawn starts one process; the returned channel yields its exit description once it has exited
// and its log pipes are drained.
func (hp *hostProcess) spawn() (<-chan string, error) {
	if _, err := os.Stat(hp.cmd.Binary); err != nil {
		return nil, err
	}
	if err := ensureExecutable(hp.cmd.Binary); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(hp.cmd.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}

	c := exec.Command(hp.cmd.Binary, hp.cmd.args()...)
	c.Env = hostEnv(os.Environ(), hp.cmd.Secret)
	c.Stdin = nil
	c.SysProcAttr = hostSysProcAttr()
	stderr, err := c.StderrPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		return nil, err
	}
	hp.mu.Lock()
	hp.proc = c.Process
	hp.mu.Unlock()
	if hp.stopping() {
		// stop() ran between the loop's check and Start: it found no process to signal.
		_ = c.Process.Signal(syscall.SIGTERM)
	}
	hp.log.LogInfo("Started codex-host.", "pid", c.Process.Pid, "socket", hp.cmd.Socket, "state_dir", hp.cmd.StateDir)

	var pipes sync.WaitGroup
	pipes.Add(2)
	go func() { defer pipes.Done(); pipeHostLog(stderr, hp.log) }()
	go func() { defer pipes.Done(); pipeHostLog(stdout, hp.log) }()

	exited := make(chan string, 1)
	go func() {
		pipes.Wait()
		err := c.Wait()
		hp.mu.Lock()
		hp.proc = nil
		hp.mu.Unlock()
		if err != nil {
			exited <- err.Error()
		} else {
			exited <- "exit status 0"
		}
	}()
	return exited, nil
}

// pid is the pid of the running host process, or 0 between a process's exit and the next start.
func (hp *hostProcess) pid() int {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.proc == nil {
		return 0
	}
	return hp.proc.Pid
}

func (hp *hostProcess) stopping() bool {
	select {
	case <-hp.stopCh:
		return true
	default:
		return false
	}
}

// stop asks the host to shut down gracefully and waits for it; after stopGracePeriod it is killed.
func (hp *hostProcess) stop() {
	hp.stopOnce.Do(func() { close(hp.stopCh) })
	hp.mu.Lock()
	proc := hp.proc
	hp.mu.Unlock()
	if proc != nil {
		_ = proc.Signal(syscall.SIGTERM)
	}
	select {
	case <-hp.done:
		return
	case <-time.After(stopGracePeriod):
	}
	hp.mu.Lock()
	proc = hp.proc
	hp.mu.Unlock()
	if proc != nil {
		hp.log.LogWarn("codex-host did not stop within the grace period; killing it.", "grace_period", stopGracePeriod.String())
		_ = proc.Kill()
	}
	<-hp.done
}

// ensureExecutable sets the execute bits when an unpacker dropped them.
func ensureExecutable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Perm()&0o100 != 0 {
		return nil
	}
	if err := os.Chmod(path, info.Mode().Perm()|0o755); err != nil {
		return fmt.Errorf("%s is not executable and could not be made so: %w", path, err)
	}
	return nil
}

// pipeHostLog forwards the host's log lines to the server log at their own level. The host logs
// JSON lines (tracing-subscriber's format: level, fields.message, other fields, target); anything
// else is forwarded as an info line.
func pipeHostLog(r io.Reader, log logger) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		level, msg, kv := parseHostLogLine(line)
		msg = "codex-host: " + msg
		switch level {
		case "ERROR":
			log.LogError(msg, kv...)
		case "WARN":
			log.LogWarn(msg, kv...)
		case "DEBUG", "TRACE":
			log.LogDebug(msg, kv...)
		default:
			log.LogInfo(msg, kv...)
		}
	}
}

// hostLogMeta are the keys of a JSON log line that are not fields of the event.
var hostLogMeta = map[string]bool{"timestamp": true, "level": true, "message": true, "msg": true, "fields": true, "span": true, "spans": true, "threadName": true, "threadId": true}

// parseHostLogLine reads one JSON line as tracing-subscriber writes it, nested ("fields": {...})
// or flattened (event fields at the top level), and keeps the current span's fields (run id,
// thread, user, project) so one run can be followed in the server log.
func parseHostLogLine(line string) (level, msg string, kv []any) {
	var rec map[string]any
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &rec) != nil {
		return "INFO", line, nil
	}
	level, _ = rec["level"].(string)
	level = strings.ToUpper(level)
	fields := map[string]any{}
	for k, v := range rec {
		if !hostLogMeta[k] {
			fields[k] = v
		}
	}
	if nested, ok := rec["fields"].(map[string]any); ok {
		for k, v := range nested {
			fields[k] = v
		}
	}
	for _, k := range []string{"message", "msg"} {
		if m, ok := fields[k].(string); ok {
			msg = m
			delete(fields, k)
			break
		}
		if m, ok := rec[k].(string); ok {
			msg = m
			break
		}
	}
	if span, ok := rec["span"].(map[string]any); ok {
		for k, v := range span {
			if _, taken := fields[k]; !taken && k != "name" {
				fields[k] = v
			}
		}
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		kv = append(kv, k, fmt.Sprint(fields[k]))
	}
	return level, msg, kv
}
