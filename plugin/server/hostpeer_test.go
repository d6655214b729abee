package main

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixedPid stands for a managed host process with a known pid.
type fixedPid int

func (p fixedPid) pid() int { return int(p) }

// The fake host runs inside this test process: its pid and uid are the test's own.

func TestTheHostOfTheExpectedUserGetsTheRequest(t *testing.T) {
	host := startFakeHost(t, "secret")
	c := newHostClient(host.socket, "secret", hostPeer{mode: hostModeExternal, uid: os.Getuid()})
	_, err := c.health(context.Background())
	require.NoError(t, err)
	assert.Len(t, host.received("GET", routeHealth), 1)
}

func TestAHostOfAnotherUserGetsNothing(t *testing.T) {
	host := startFakeHost(t, "secret")
	c := newHostClient(host.socket, "secret", hostPeer{mode: hostModeExternal, uid: os.Getuid() + 1})
	_, err := c.health(context.Background())
	require.Error(t, err)
	he := asHostError(err)
	assert.Equal(t, hostWrongPeer, he.kind)
	assert.Contains(t, he.Error(), "refused to talk to the socket")
	assert.Contains(t, he.Error(), host.socket)
	assert.Contains(t, he.Error(), "is expected to run as uid")
	assert.Contains(t, he.Error(), "Host OS user id (external mode)")
	host.mu.Lock()
	defer host.mu.Unlock()
	assert.Empty(t, host.requests, "not a byte, let alone the secret, reaches a stranger")
}

func TestTheManagedHostMustBeTheProcessThePluginStarted(t *testing.T) {
	host := startFakeHost(t, "secret")

	ours := newHostClient(host.socket, "secret", hostPeer{mode: hostModeManaged, uid: os.Getuid(), proc: fixedPid(os.Getpid())})
	_, err := ours.health(context.Background())
	require.NoError(t, err)

	for name, peer := range map[string]hostPeer{
		"another process":  {mode: hostModeManaged, uid: os.Getuid(), proc: fixedPid(os.Getpid() + 1)},
		"host not running": {mode: hostModeManaged, uid: os.Getuid(), proc: fixedPid(0)},
		"never started":    {mode: hostModeManaged, uid: os.Getuid()},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := newHostClient(host.socket, "secret", peer).health(context.Background())
			require.Error(t, err)
			he := asHostError(err)
			assert.Equal(t, hostWrongPeer, he.kind)
			assert.Contains(t, he.Error(), "is not the codex-host the plugin started")
		})
	}
	assert.Len(t, host.received("GET", routeHealth), 1, "only the plugin's own host was asked")
}

func TestExternalHostUIDDefaultsToTheServersOwnUser(t *testing.T) {
	c, err := parseConfiguration(map[string]any{"hostmode": "external", "socketpath": "/run/codex-host/host.sock", "hostsecret": "s"})
	require.NoError(t, err)
	assert.Equal(t, hostPeer{mode: hostModeExternal, uid: os.Getuid()}, expectedPeer(c, nil))

	c, err = parseConfiguration(map[string]any{"hostmode": "external", "socketpath": "/run/codex-host/host.sock", "hostsecret": "s", "externalhostuid": "998"})
	require.NoError(t, err)
	assert.Equal(t, hostPeer{mode: hostModeExternal, uid: 998}, expectedPeer(c, nil))

	_, err = parseConfiguration(map[string]any{"ExternalHostUID": "mattermost"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Host OS user id (external mode): `mattermost` is not a number.")
	_, err = parseConfiguration(map[string]any{"ExternalHostUID": "-5"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Host OS user id (external mode): -5 is negative")
}

func TestManagedModeExpectsTheStartedProcess(t *testing.T) {
	c, err := parseConfiguration(map[string]any{})
	require.NoError(t, err)
	hp := &hostProcess{}
	assert.Equal(t, hostPeer{mode: hostModeManaged, uid: os.Getuid(), proc: hp}, expectedPeer(c, hp))
	assert.Equal(t, hostPeer{mode: hostModeManaged, uid: os.Getuid()}, expectedPeer(c, nil), "no typed nil hides in the interface")
}
