package main

// Keeps codex-host configured: waits until the host answers /v1/health, pushes the current settings
// with PUT /v1/config, and pushes again whenever the settings change, the host restarts (health
// says it is not configured), or a push failed. Each push completes the document just before it
// is sent (the allowlist settings are resolved to ids then: see allowlist.go), so a host restart
// gets names as they are now. It logs the state changes an admin needs to see, without repeating
// itself every second.

import (
	"context"
	"net/http"
	"sync"
	"time"
)

const (
	syncRetryMin       = 50 * time.Millisecond
	syncRetryMax       = 5 * time.Second
	syncHealthyPeriod  = 15 * time.Second
	syncQuietStartup   = 5 * time.Second // failures during the first seconds are the host starting up
	syncRepeatFailures = 5 * time.Minute
)

// hostTarget is what the syncer talks to and what it must make the host hold.
type hostTarget struct {
	client *hostClient
	doc    *ConfigRequest
	gen    uint64 // changes whenever client or doc changes
	mode   string
}

type hostSyncer struct {
	log     logger
	current func() hostTarget
	prepare func(*ConfigRequest) *ConfigRequest // completes a document just before each push

	kickCh chan struct{}
	stopCh chan struct{}
	done   chan struct{}

	answeredOnce sync.Once
	answered     chan struct{} // closed once the host has answered a push (accepted or rejected)

	// Only touched by the run goroutine.
	pushedGen     uint64
	failingSince  time.Time
	lastFailLog   time.Time
	rejectedGen   uint64
	lastConfigErr string
}

func startHostSyncer(log logger, current func() hostTarget, prepare func(*ConfigRequest) *ConfigRequest) *hostSyncer {
	s := &hostSyncer{
		log:      log,
		current:  current,
		prepare:  prepare,
		kickCh:   make(chan struct{}, 1),
		stopCh:   make(chan struct{}),
		done:     make(chan struct{}),
		answered: make(chan struct{}),
	}
	go s.run()
	return s
}

// kick asks for a sync now (settings changed, or a new host process started).
func (s *hostSyncer) kick() {
	select {
	case s.kickCh <- struct{}{}:
	default:
	}
}

func (s *hostSyncer) stop() {
	close(s.stopCh)
	<-s.done
}

// waitAnswered waits until the host has answered a settings push once, or timeout passes.
func (s *hostSyncer) waitAnswered(timeout time.Duration) bool {
	select {
	case <-s.answered:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (s *hostSyncer) run() {
	defer close(s.done)
	// The first sync comes from the kick that follows every settings change.
	timer := time.NewTimer(syncHealthyPeriod)
	defer timer.Stop()
	retry := syncRetryMin
	for {
		select {
		case <-s.stopCh:
			return
		case <-s.kickCh:
			retry = syncRetryMin
		case <-timer.C:
		}
		wait := syncHealthyPeriod
		if err := s.syncOnce(); err != nil {
			s.noteFailure(err)
			wait = retry
			retry = min(retry*2, syncRetryMax)
		} else {
			s.noteSuccess()
			retry = syncRetryMin
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

func (s *hostSyncer) syncOnce() error {
	t := s.current()
	if t.client == nil || t.doc == nil {
		return nil
	}
	ctx := context.Background()
	h, err := t.client.health(ctx)
	if err != nil {
		return err
	}
	if h.Configured && s.pushedGen == t.gen {
		return nil
	}
	var resp ConfigResponse
	err = t.client.callJSON(ctx, timeoutConfig, http.MethodPut, routeConfig, s.prepare(t.doc), &resp)
	if he, ok := err.(*hostError); ok && he.kind == hostRejected {
		// The host keeps its previous settings; pushing the same document again would not help.
		if s.rejectedGen != t.gen {
			s.rejectedGen = t.gen
			s.log.LogError("codex-host rejected the settings and keeps its previous ones. Fix them in System Console > Plugins > Codex for Mattermost.",
				"problems", he.message)
		}
		s.pushedGen = t.gen
		s.answeredOnce.Do(func() { close(s.answered) })
		return nil
	}
	if err != nil {
		return err
	}
	s.pushedGen = t.gen
	if len(resp.Warnings) > 0 {
		s.log.LogWarn("codex-host accepted the settings with warnings.", "warnings", resp.Warnings)
	}
	s.log.LogInfo("codex-host is configured.", "host_version", h.Version, "codex", h.Codex.Path, "codex_version", h.Codex.Version)
	s.answeredOnce.Do(func() { close(s.answered) })
	return nil
}

func (s *hostSyncer) noteFailure(err error) {
	now := time.Now()
	if s.failingSince.IsZero() {
		s.failingSince = now
	}
	he := asHostError(err)
	// A stranger on the socket is not the host starting up: say so at once.
	quiet := he.kind != hostWrongPeer && now.Sub(s.failingSince) < syncQuietStartup
	if quiet || now.Sub(s.lastFailLog) < syncRepeatFailures {
		return
	}
	s.lastFailLog = now
	mode := s.current().mode
	s.log.LogError("Codex for Mattermost cannot reach codex-host; /codex answers with an error until it can. "+hostAdvice(he.kind, mode),
		"error", he.Error(), "failing_for", now.Sub(s.failingSince).Round(time.Second).String())
}

func (s *hostSyncer) noteSuccess() {
	if !s.lastFailLog.IsZero() {
		s.log.LogInfo("codex-host is reachable again.")
	}
	s.failingSince = time.Time{}
	s.lastFailLog = time.Time{}
}

// hostAdvice tells an admin what to check for a kind of failure.
func hostAdvice(kind hostErrorKind, mode string) string {
	switch kind {
	case hostUnauthorized:
		if mode == hostModeExternal {
			return "The host refused the plugin: give the host the same secret as the Host secret setting (CODEX_HOST_SECRET), and if it runs as another OS user, start it with --allow-uid set to the Mattermost server's uid."
		}
		return "The host refused the plugin's secret; disable and re-enable the plugin to restart the managed host."
	case hostWrongPeer:
		return "The process listening on the socket is not the expected codex-host, so the plugin sent it neither its secret nor the bot's token; the error says which process it found and what to change."
	case hostUnreachable:
		if mode == hostModeExternal {
			return "Check that `codex-host serve` is running, that Socket path matches its --socket, and that the Mattermost server's OS user may open the socket."
		}
		return "The managed host is not answering on its socket; the lines starting with `codex-host:` in this log say why it is not running."
	case runnerOffline:
		return "Start `codex-host connect` on the runner's machine (see /codex runner list and docs/remote-runners.md), or name another runner in the project's `runner=` option."
	default:
		return "Check the lines starting with `codex-host:` in this log (managed mode) or the host's own log (external mode)."
	}
}
