package main

// The plugin's one HTTP client of codex-host: JSON over HTTP/1.1 on a Unix socket, every request
// carrying the shared secret. Every connection is checked against the expected host process
// (hostpeer.go) before a request is written on it. Failures come back as *hostError, classified so
// that the people who read them (users in chat, admins in the log) are told what to check. It never
// logs the secret.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Per-route deadlines. The host answers commands within a second by contract; config can take
// longer because the host compiles policies before it answers.
const (
	timeoutHealth       = 2 * time.Second
	timeoutCommand      = 5 * time.Second
	timeoutAction       = 5 * time.Second
	timeoutPost         = 5 * time.Second
	timeoutAutocomplete = 2 * time.Second
	timeoutConfig       = 30 * time.Second
)

// maxHostResponse bounds what the plugin reads from the host: far above any legitimate answer.
const maxHostResponse = 4 << 20

// hostErrorKind says why a host call failed.
type hostErrorKind int

const (
	// hostUnreachable: nothing answers on the socket (host not running, wrong path, permissions).
	hostUnreachable hostErrorKind = iota
	// hostUnauthorized: the host refused the secret (401) or this process's uid (403).
	hostUnauthorized
	// hostRejected: the host understood the request and refused it (other 4xx).
	hostRejected
	// hostFailed: the host failed (5xx) or answered something that is not the contract.
	hostFailed
	// hostWrongPeer: the process on the socket is not the expected codex-host; nothing was sent.
	hostWrongPeer
	// runnerOffline: the remote runner the request belongs to is not connected (or did not answer).
	runnerOffline
)

type hostError struct {
	kind    hostErrorKind
	status  int
	message string // the host's own explanation (ErrorBody.error), or the transport error
}

func (e *hostError) Error() string {
	switch e.kind {
	case hostUnreachable:
		return "codex-host is unreachable: " + e.message
	case hostUnauthorized:
		return fmt.Sprintf("codex-host refused the plugin (HTTP %d): %s", e.status, e.message)
	case hostRejected:
		return fmt.Sprintf("codex-host rejected the request (HTTP %d): %s", e.status, e.message)
	case hostWrongPeer:
		return "refused to talk to the socket: " + e.message
	case runnerOffline:
		return e.message
	default:
		return fmt.Sprintf("codex-host failed (HTTP %d): %s", e.status, e.message)
	}
}

// asHostError returns err as a *hostError, wrapping anything else as a host failure.
func asHostError(err error) *hostError {
	var he *hostError
	if errors.As(err, &he) {
		return he
	}
	return &hostError{kind: hostFailed, message: err.Error()}
}

type hostClient struct {
	socket string
	secret string
	peer   hostPeer
	http   *http.Client
}

func newHostClient(socket, secret string, peer hostPeer) *hostClient {
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", socket)
			if err != nil {
				return nil, err
			}
			if err := peer.verify(conn, socket); err != nil {
				_ = conn.Close()
				return nil, err
			}
			return conn, nil
		},
		MaxIdleConns:        32,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     60 * time.Second,
	}
	return &hostClient{socket: socket, secret: secret, peer: peer, http: &http.Client{Transport: transport}}
}

// close drops idle connections; in-flight requests finish.
func (c *hostClient) close() {
	c.http.CloseIdleConnections()
}

// call sends one request and returns the raw 2xx body. in may be nil (no body).
func (c *hostClient) call(ctx context.Context, timeout time.Duration, method, path string, in any) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, &hostError{kind: hostFailed, message: "encoding the request: " + err.Error()}
		}
		body = bytes.NewReader(b)
	}
	// The host is addressed by socket; "codex-host" only fills the Host header.
	req, err := http.NewRequestWithContext(ctx, method, "http://codex-host"+path, body)
	if err != nil {
		return nil, &hostError{kind: hostFailed, message: err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+c.secret)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := c.http.Do(req)
	var pe *peerError
	if errors.As(err, &pe) {
		return nil, &hostError{kind: hostWrongPeer, message: pe.Error()}
	}
	if err != nil {
		return nil, &hostError{kind: hostUnreachable, message: fmt.Sprintf("%s %s on socket %s: %v", method, path, c.socket, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxHostResponse))
	if err != nil {
		return nil, &hostError{kind: hostUnreachable, status: resp.StatusCode, message: "reading the answer: " + err.Error()}
	}
	return classifyAnswer(resp.StatusCode, raw)
}

// hostCaller is a host as the routes see it: the local host's socket client or a remote runner.
type hostCaller interface {
	call(ctx context.Context, timeout time.Duration, method, path string, in any) ([]byte, error)
}

// callJSON sends one request and decodes the 2xx answer into out.
func (c *hostClient) callJSON(ctx context.Context, timeout time.Duration, method, path string, in, out any) error {
	return callJSON(ctx, c, timeout, method, path, in, out)
}

// callJSON sends one request to any host and decodes the 2xx answer into out.
func callJSON(ctx context.Context, c hostCaller, timeout time.Duration, method, path string, in, out any) error {
	raw, err := c.call(ctx, timeout, method, path, in)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &hostError{kind: hostFailed, status: http.StatusOK, message: fmt.Sprintf("%s %s: the answer is not the expected JSON: %v", method, path, err)}
	}
	return nil
}

func (c *hostClient) health(ctx context.Context) (*Health, error) {
	var h Health
	if err := c.callJSON(ctx, timeoutHealth, http.MethodGet, routeHealth, nil, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// unwrapURLError drops net/http's "Get \"http://codex-host/...\":" prefix, which names a URL that
// does not exist; the message already names the socket and route.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
