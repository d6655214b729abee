package main

// Lifecycle of the Codex for Mattermost plugin: configuration, activation (bot account, access
// token, /codex registration, host start or connection) and deactivation. The plugin is transport
// and identity only; everything Codex-related happens in codex-host.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// pluginID must equal the id in manifest.json (a unit test checks).
const pluginID = "com.github.codex-for-mattermost"

const (
	botUsername    = "codex"
	botDisplayName = "Codex"
	botDescription = "Runs OpenAI Codex for /codex and answers in the thread."

	// How long activation waits for the host to accept its settings before it returns anyway
	// (commands answer with an explanation until the host is ready).
	activationWaitManaged  = 20 * time.Second
	activationWaitExternal = 3 * time.Second
)

// Plugin implements the Mattermost server plugin hooks.
type Plugin struct {
	plugin.MattermostPlugin

	// lifecycle serialises OnActivate, OnConfigurationChange and OnDeactivate.
	lifecycle sync.Mutex
	config    *configuration // last good settings
	configErr error          // why the current settings were refused, while config is still nil

	active atomic.Pointer[activeState]

	routesOnce sync.Once
	routes     http.Handler

	// accessMu serialises the read-modify-write of Allowed users by access grants (access.go).
	accessMu sync.Mutex
}

// activeState exists between OnActivate and OnDeactivate.
type activeState struct {
	botUserID  string
	botToken   string
	botTokenID string
	bundlePath string
	version    string
	resolver   *resolver
	syncer     *hostSyncer

	// lease decides whether this node of a cluster runs the managed host (hostlease.go).
	lease *hostLease

	// Guarded by the plugin's lifecycle lock.
	proc            *hostProcess
	procCmd         hostCommand
	ephemeralSecret string

	// Remote runners (runners.go, runnerhub.go, routing.go).
	runners    *runnerRegistry
	hub        *runnerHub
	route      router
	prepareDoc func(*ConfigRequest) *ConfigRequest

	mu          sync.RWMutex
	tgt         hostTarget
	allowedBots map[string]bool // bot user ids that may trigger runs (setting AllowedBotIds)
	projects    string          // the Projects setting, for routing
	defaultProj string          // the Default project setting, for routing
}

func (st *activeState) target() hostTarget {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.tgt
}

// botAllowed reports whether a bot account may trigger runs.
func (st *activeState) botAllowed(userID string) bool {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.allowedBots[userID]
}

// routing returns the Projects and Default project settings in force.
func (st *activeState) routing() (projects, defaultProject string) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.projects, st.defaultProj
}

func (st *activeState) mode() string {
	return st.target().mode
}

// state returns the active state, or nil before activation and after deactivation.
func (p *Plugin) state() *activeState {
	return p.active.Load()
}

func (p *Plugin) loadConfiguration() (*configuration, error) {
	var raw map[string]any
	if err := p.API.LoadPluginConfiguration(&raw); err != nil {
		return nil, fmt.Errorf("loading the plugin settings: %w", err)
	}
	return checkedConfiguration(raw)
}

// OnConfigurationChange validates the settings; good ones are applied and pushed to the host,
// bad ones are reported in the log and the last good settings stay in force.
func (p *Plugin) OnConfigurationChange() error {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	cfg, err := p.loadConfiguration()
	if err != nil {
		if p.config == nil {
			p.configErr = err
		}
		p.API.LogError("Codex for Mattermost kept its previous settings because the new ones are invalid. Fix them in System Console > Plugins > Codex for Mattermost.",
			"problems", err.Error())
		return err
	}
	p.config, p.configErr = cfg, nil
	if st := p.state(); st != nil {
		p.apply(st, cfg)
	}
	return nil
}

// ConfigurationWillBeSaved refuses a System Console save that would give this plugin invalid
// settings, so the admin sees the problem at once and the saved settings stay good.
func (p *Plugin) ConfigurationWillBeSaved(newCfg *model.Config) (*model.Config, error) {
	if newCfg == nil {
		return nil, nil
	}
	next, ok := newCfg.PluginSettings.Plugins[pluginID]
	if !ok {
		return nil, nil
	}
	if cur := p.API.GetConfig(); cur != nil && reflect.DeepEqual(cur.PluginSettings.Plugins[pluginID], next) {
		// Unchanged: never block saving other settings because of ours.
		return nil, nil
	}
	if _, err := checkedConfiguration(next); err != nil {
		return nil, err
	}
	return nil, nil
}

func (p *Plugin) OnActivate() error {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()

	cfg := p.config
	if cfg == nil {
		var err error
		if cfg, err = p.loadConfiguration(); err != nil {
			return fmt.Errorf("the settings are invalid; fix them in System Console > Plugins > Codex for Mattermost: %w", err)
		}
		p.config = cfg
	}

	bundlePath, err := p.API.GetBundlePath()
	if err != nil {
		return fmt.Errorf("finding the plugin's bundle directory: %w", err)
	}

	botUserID, err := p.ensureBot()
	if err != nil {
		return err
	}
	token, err := p.newBotToken(botUserID)
	if err != nil {
		return err
	}
	if err := p.API.RegisterCommand(codexCommand()); err != nil {
		p.dropBotToken(token.Id)
		return fmt.Errorf("registering /%s failed: %w", commands.Trigger, err)
	}

	st := &activeState{
		botUserID:  botUserID,
		botToken:   token.Token,
		botTokenID: token.Id,
		bundlePath: bundlePath,
		version:    bundleVersion(bundlePath),
		resolver:   newResolver(p.API, botUserID),
		runners:    newRunnerRegistry(p.API),
		hub:        newRunnerHub(),
		route:      router{kv: p.API},
		prepareDoc: allowlistResolver{dir: p.API, log: p.API}.resolveDoc,
	}
	link := newClusterLink(st.hub, p.API, func(ev model.PluginClusterEvent) error {
		return p.API.PublishPluginClusterEvent(ev, model.PluginClusterEventSendOptions{SendType: model.PluginClusterEventSendTypeReliable})
	})
	link.localHost = func() *hostClient { return st.target().client }
	st.lease = newHostLease(link)
	// The local host gets only the projects no runner owns.
	st.syncer = startHostSyncer(p.API, st.target, func(doc *ConfigRequest) *ConfigRequest { return docFor(st.prepareDoc(doc), "") })
	p.apply(st, cfg)
	p.active.Store(st)

	if cfg.HostMode == hostModeManaged && !st.lease.held() {
		p.API.LogInfo("Codex for Mattermost is active. Another server node of the cluster runs codex-host, so this node forwards its calls there; it takes over if that node goes away.",
			"version", st.version)
		return nil
	}
	wait := activationWaitManaged
	if cfg.HostMode == hostModeExternal {
		wait = activationWaitExternal
	} else if st.proc == nil {
		wait = 0 // the host could not be started; the log already says why
	}
	if st.syncer.waitAnswered(wait) {
		p.API.LogInfo("Codex for Mattermost is active.", "version", st.version, "host_mode", cfg.HostMode)
	} else {
		p.API.LogWarn("Codex for Mattermost is active, but codex-host has not taken its settings yet; /codex explains this to users until it does. "+hostAdvice(hostUnreachable, cfg.HostMode),
			"waited", wait.String(), "host_mode", cfg.HostMode)
	}
	return nil
}

func (p *Plugin) OnDeactivate() error {
	if st := p.deactivate(); st != nil {
		// The host is stopped: another node may start its own. Outside the lifecycle lock, which
		// a lease that has just got the cluster lock takes to start the host.
		st.lease.release(leaseReleaseWait)
	}
	return nil
}

// deactivate ends the active state and returns it (nil when there was none).
func (p *Plugin) deactivate() *activeState {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	st := p.active.Swap(nil)
	if st == nil {
		return nil
	}
	st.syncer.stop()
	p.stopManagedHost(st)
	if c := st.target().client; c != nil {
		c.close()
	}
	p.dropBotToken(st.botTokenID)
	return st
}

// apply makes the running state match cfg: (re)starts or stops the managed host when its command
// line changes, points the client at the right socket, and has the syncer push the settings.
func (p *Plugin) apply(st *activeState, cfg *configuration) {
	socket, secret := cfg.SocketPath, cfg.HostSecret

	if cfg.HostMode == hostModeManaged {
		if secret == "" {
			// No secret configured: the plugin starts the host, so a fresh one per activation is
			// enough and never needs to be stored.
			if st.ephemeralSecret == "" {
				st.ephemeralSecret = randomSecret()
			}
			secret = st.ephemeralSecret
		}
		dataDir := managedDataDir(st.bundlePath)
		if socket == "" {
			socket = filepath.Join(dataDir, "codex-host.sock")
		}
		cmd := hostCommand{
			Binary:   filepath.Join(st.bundlePath, "server", "dist", "codex-host-"+runtime.GOOS+"-"+runtime.GOARCH),
			Socket:   socket,
			StateDir: filepath.Join(dataDir, "state"),
			Secret:   secret,
		}
		if info, err := os.Stat(filepath.Join(st.bundlePath, "policies")); err == nil && info.IsDir() {
			cmd.PolicyDir = filepath.Join(st.bundlePath, "policies")
		}
		if !st.lease.start(func() { p.leaseChanged(st) }) {
			// Another node runs the host; this one forwards its calls there (st.conn).
			p.stopManagedHost(st)
		} else if st.proc == nil || st.procCmd != cmd {
			p.stopManagedHost(st)
			p.startManagedHost(st, cmd)
		}
	} else {
		p.stopManagedHost(st)
	}
	runsHost := cfg.HostMode != hostModeManaged || st.lease.held()
	peer := expectedPeer(cfg, st.proc)

	doc := &ConfigRequest{
		MattermostURL: p.mattermostURL(cfg),
		BotUserID:     st.botUserID,
		BotUsername:   botUsername,
		BotToken:      st.botToken,
		PluginVersion: st.version,
		PluginID:      pluginID,
		ActionsURL:    "/plugins/" + pluginID + routeActions,
		Settings:      cfg.hostSettings(),
	}

	st.mu.Lock()
	old := st.tgt.client
	switch {
	case !runsHost:
		st.tgt.client = nil // nothing to push settings to here
	case old == nil || old.socket != socket || old.secret != secret || old.peer != peer:
		st.tgt.client = newHostClient(socket, secret, peer)
	}
	st.tgt.doc = doc
	st.tgt.mode = cfg.HostMode
	st.tgt.gen++
	st.allowedBots = make(map[string]bool, len(cfg.AllowedBotIDs))
	for _, id := range cfg.AllowedBotIDs {
		st.allowedBots[id] = true
	}
	st.projects, st.defaultProj = cfg.Projects, cfg.DefaultProject
	st.mu.Unlock()
	if old != nil && old != st.target().client {
		old.close()
	}
	st.syncer.kick()
	p.pushConfigToRunners(st)
}

// leaseChanged starts the managed host on this node when it has taken the cluster's lease, or
// stops it when another node has taken the lease over.
func (p *Plugin) leaseChanged(st *activeState) {
	p.lifecycle.Lock()
	defer p.lifecycle.Unlock()
	if p.state() != st || p.config == nil {
		return // deactivated meanwhile: the lease is given back
	}
	if st.lease.held() {
		p.API.LogInfo("This server node now runs codex-host for the cluster: it took the lease another node held.")
	} else {
		p.API.LogWarn("Another server node of the cluster took over codex-host (this node could not renew its lease in time), so this node stops its host and forwards calls there.")
	}
	p.apply(st, p.config)
}

// expectedPeer is the process the plugin may hand its secrets to: the managed host it started
// (running as the plugin's own user), or in external mode a process of the configured user, by
// default the Mattermost server's own.
func expectedPeer(cfg *configuration, proc *hostProcess) hostPeer {
	if cfg.HostMode == hostModeManaged {
		peer := hostPeer{mode: hostModeManaged, uid: os.Getuid()}
		if proc != nil {
			peer.proc = proc
		}
		return peer
	}
	uid := cfg.ExternalHostUID
	if uid == uidUnset {
		uid = os.Getuid()
	}
	return hostPeer{mode: hostModeExternal, uid: uid}
}

func (p *Plugin) startManagedHost(st *activeState, cmd hostCommand) {
	st.procCmd = cmd
	if _, err := os.Stat(cmd.Binary); err != nil {
		if runtime.GOOS != "linux" {
			p.API.LogError(fmt.Sprintf("Managed host mode is not available on %s/%s: this bundle carries codex-host for Linux only. Run `codex-host serve` yourself and set Host mode to External (see the admin guide, External mode).", runtime.GOOS, runtime.GOARCH),
				"expected_binary", cmd.Binary)
		} else {
			p.API.LogError("The bundle has no codex-host for this machine, so managed mode cannot start it. Upload a complete bundle, or run codex-host yourself and set Host mode to External.",
				"expected_binary", cmd.Binary)
		}
		return
	}
	if len(cmd.Socket) > maxSocketPathLen {
		p.API.LogError("The managed host's socket path is too long for a Unix socket. Set Socket path to a shorter absolute path in a directory that only the Mattermost server's OS user may write, e.g. /opt/mattermost/codex-host.sock.",
			"socket", cmd.Socket, "max_bytes", maxSocketPathLen)
		return
	}
	if problem := socketDirProblem(cmd.Socket); problem != "" {
		p.API.LogError("The managed host was not started: Socket path: "+problem, "socket", cmd.Socket)
		return
	}
	if err := os.MkdirAll(filepath.Dir(cmd.Socket), 0o700); err != nil {
		p.API.LogError("Could not create the directory for the host's socket.", "socket", cmd.Socket, "error", err.Error())
		return
	}
	st.proc = startHostProcess(cmd, p.API, st.syncer.kick)
}

func (p *Plugin) stopManagedHost(st *activeState) {
	if st.proc != nil {
		st.proc.stop()
		st.proc = nil
	}
	st.procCmd = hostCommand{}
}

// managedDataDir is where the managed host keeps its socket and state: a hidden directory next to
// the bundle, so that it survives plugin upgrades (which replace the bundle directory) and is
// skipped by the server's plugin scan (which ignores names starting with a dot).
func managedDataDir(bundlePath string) string {
	return filepath.Join(filepath.Dir(bundlePath), "."+pluginID)
}

// mattermostURL is where the host reaches the REST API: the setting if given, else the server's
// own listener on this machine (the host always runs here: it talks over a Unix socket), else
// the Site URL.
func (p *Plugin) mattermostURL(cfg *configuration) string {
	if cfg.MattermostURL != "" {
		return cfg.MattermostURL
	}
	mc := p.API.GetConfig()
	if mc == nil {
		return ""
	}
	site := strings.TrimRight(model.SafeDereference(mc.ServiceSettings.SiteURL), "/")
	listen := model.SafeDereference(mc.ServiceSettings.ListenAddress)
	tls := model.SafeDereference(mc.ServiceSettings.ConnectionSecurity) == model.ConnSecurityTLS
	host, port, err := net.SplitHostPort(listen)
	if err != nil || tls {
		return site
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	subpath := ""
	if u, err := url.Parse(site); err == nil {
		subpath = strings.TrimRight(u.Path, "/")
	}
	return "http://" + net.JoinHostPort(host, port) + subpath
}

// bundleVersion reads the version the Makefile stamped into the bundle's plugin.json.
func bundleVersion(bundlePath string) string {
	raw, err := os.ReadFile(filepath.Join(bundlePath, "plugin.json"))
	if err != nil {
		return "unknown"
	}
	var m model.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Version == "" {
		return "unknown"
	}
	return m.Version
}

func randomSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error()))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
