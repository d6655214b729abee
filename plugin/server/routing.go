package main

// Which host gets a request: the local host (the socket) or a remote runner. A project names its
// runner with `; runner=<name>` in Projects; everything else is local. The plugin keeps two routes
// in the KV store, so that every node of a cluster routes the same way:
//
//   - a thread's runner, recorded when the runner posts in the thread through the relay
//     (runnerrelay.go): replies, clicks and /codex typed in that thread go back to it;
//   - a channel's runner, recorded when someone picks a project with `/codex project <name>`.
//
// A request that names neither goes to the runner of the channel's project, then of Default
// project, then to the local host. The plugin reads only the first two words of a command for
// this (`project <name>`); the host still owns the grammar.

import (
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	kvThreadRoute  = "route_thread_"
	kvChannelRoute = "route_channel_"
	// kvRunnerScope marks a channel a runner was given work in: the only channels the relay lets
	// it read or post in.
	kvRunnerScope = "scope_"
)

// projectRunners maps each project named in the Projects setting to its runner ("" = local).
func projectRunners(projects string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(projects, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ";")
		name, _, ok := strings.Cut(parts[0], "=")
		if !ok {
			continue
		}
		runner := ""
		for _, opt := range parts[1:] {
			if k, v, ok := strings.Cut(opt, "="); ok && strings.TrimSpace(k) == "runner" {
				runner = strings.TrimSpace(v)
			}
		}
		out[strings.TrimSpace(name)] = runner
	}
	return out
}

// projectsFor keeps the lines of Projects that belong to runner ("" = the local host).
func projectsFor(projects, runner string) string {
	var keep []string
	owners := projectRunners(projects)
	for _, line := range strings.Split(projects, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		name, _, _ := strings.Cut(strings.Split(trimmed, ";")[0], "=")
		if owner, known := owners[strings.TrimSpace(name)]; !known || owner == runner {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n")
}

// docFor is the settings document one host receives: only its own projects (and Default project
// only when it is one of them). A runner gets neither the server's URL nor the bot's token: it
// posts through the relay with its own token.
func docFor(doc *ConfigRequest, runner string) *ConfigRequest {
	out := *doc
	out.Settings.Projects = projectsFor(doc.Settings.Projects, runner)
	if owner, ok := projectRunners(doc.Settings.Projects)[doc.Settings.DefaultProject]; ok && owner != runner {
		out.Settings.DefaultProject = ""
	}
	if runner != "" {
		out.MattermostURL = ""
		out.BotToken = ""
	}
	return &out
}

// router decides and records routes.
type router struct {
	kv kvStore
}

func (r router) get(key string) string {
	raw, appErr := r.kv.KVGet(key)
	if appErr != nil {
		return ""
	}
	return string(raw)
}

func (r router) set(key, runner string) {
	if runner == "" {
		_ = r.kv.KVDelete(key)
		return
	}
	_, _ = r.kv.KVSetWithOptions(key, []byte(runner), model.PluginKVSetOptions{})
}

// threadRunner is the runner that answers in a thread ("" = the local host or nobody yet).
func (r router) threadRunner(rootID string) string {
	if rootID == "" {
		return ""
	}
	return r.get(kvThreadRoute + rootID)
}

func (r router) recordThread(rootID, runner string) {
	if r.threadRunner(rootID) != runner {
		r.set(kvThreadRoute+rootID, runner)
	}
}

// forCommand picks the runner of a /codex command (and records the channel's runner when the
// command picks a project).
func (r router) forCommand(projects, defaultProject, channelID, rootID, text string) string {
	if !hasRunners(projects) {
		return ""
	}
	if runner := r.threadRunner(rootID); runner != "" {
		return runner
	}
	owners := projectRunners(projects)
	if fields := strings.Fields(text); len(fields) == 2 && fields[0] == "project" {
		runner := owners[fields[1]]
		r.set(kvChannelRoute+channelID, runner)
		return runner
	}
	return r.forChannel(owners, defaultProject, channelID)
}

// forChannel is the runner of a channel's project: the one picked there, else Default project's.
func (r router) forChannel(owners map[string]string, defaultProject, channelID string) string {
	if runner := r.get(kvChannelRoute + channelID); runner != "" {
		return runner
	}
	return owners[defaultProject]
}

// allow lets a runner read and post in a channel (it was given work there).
func (r router) allow(runner, channelID string) {
	if runner != "" && r.get(kvRunnerScope+runner+"_"+channelID) == "" {
		r.set(kvRunnerScope+runner+"_"+channelID, "1")
	}
}

func (r router) allowed(runner, channelID string) bool {
	return runner != "" && channelID != "" && r.get(kvRunnerScope+runner+"_"+channelID) == "1"
}

// hasRunners reports whether any project names a runner; without one, every request is local
// and routing costs nothing.
func hasRunners(projects string) bool {
	for _, runner := range projectRunners(projects) {
		if runner != "" {
			return true
		}
	}
	return false
}

// conn is the host a runner name stands for. The local host is this node's socket, or in a
// cluster whose managed host runs on another node, that node (hostlease.go).
func (st *activeState) conn(runner string) hostCaller {
	if runner != "" {
		return runnerConn{hub: st.hub, name: runner}
	}
	if c := st.target().client; c != nil {
		return c
	}
	return holderConn{link: st.hub.cluster}
}

// postRunner is the runner a post for the host goes to: its thread's; or, for an @-mention in a
// thread no runner answered in yet, at channel level, or in a direct message, the channel's.
func (st *activeState) postRunner(post *model.Post) string {
	projects, defaultProject := st.routing()
	if !hasRunners(projects) {
		return ""
	}
	if runner := st.route.threadRunner(post.RootId); runner != "" || (post.RootId != "" && !mentionsBot(post.Message)) {
		return runner
	}
	runner := st.route.forChannel(projectRunners(projects), defaultProject, post.ChannelId)
	st.route.allow(runner, post.ChannelId)
	return runner
}

// elsewhere lists the projects of Projects that host ("" = the local host) does not serve, with
// where they run: each host knows only its own, so /codex projects and the project autocomplete
// add the others from the settings. Sorted by name; empty without runners.
func (st *activeState) elsewhere(host string) []AutocompleteItem {
	projects, _ := st.routing()
	if !hasRunners(projects) {
		return nil
	}
	var items []AutocompleteItem
	for name, runner := range projectRunners(projects) {
		switch {
		case runner == host:
			continue
		case runner == "":
			items = append(items, AutocompleteItem{Item: name, Hint: "on the server's codex-host", HelpText: "served by the server's own codex-host"})
		default:
			items = append(items, AutocompleteItem{Item: name, Hint: "on runner " + runner, HelpText: "served by runner " + runner + " (" + st.runnerState(runner) + ")"})
		}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Item < items[j].Item })
	return items
}

// projectsElsewhere is elsewhere(host) as lines to add to /codex projects.
func (st *activeState) projectsElsewhere(host string) string {
	items := st.elsewhere(host)
	if len(items) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n\nOn other hosts:")
	for _, it := range items {
		b.WriteString("\n- `" + it.Item + "`: " + strings.TrimPrefix(it.HelpText, "served by "))
	}
	return b.String()
}

// runnerState is "online" or "offline" for a runner polling this node or another one.
func (st *activeState) runnerState(name string) string {
	if online, last := st.hub.online(name); online {
		return "online"
	} else if elsewhere, _ := st.hub.cluster.seenElsewhere(name, last); elsewhere {
		return "online"
	}
	return "offline"
}
