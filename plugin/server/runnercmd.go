package main

// /codex runner add <name> | list | remove <name>: system admins register remote runners. The
// token is shown once, in an ephemeral answer (Mattermost does not store those), and only its
// hash is kept.

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const runnerUsage = "Usage: `/codex runner add <name>`, `/codex runner list`, `/codex runner remove <name>`. A runner is a machine that runs `codex-host connect` and serves the projects whose line in **Projects** ends with `; runner=<name>`."

func (p *Plugin) runnerCommand(st *activeState, user User, args string) *model.CommandResponse {
	if !p.API.HasPermissionTo(user.ID, model.PermissionManageSystem) {
		return ephemeral("Only system admins can manage Codex runners.")
	}
	fields := strings.Fields(args)
	if len(fields) == 0 {
		return ephemeral(runnerUsage)
	}
	switch {
	case fields[0] == "add" && len(fields) == 2:
		token, err := st.runners.add(fields[1], user.ID)
		if err != nil {
			return ephemeral("No runner was added: " + err.Error() + ".")
		}
		p.API.LogInfo("A Codex runner was added.", "runner", fields[1], "by", user.Username)
		return ephemeral(p.runnerAddedText(fields[1], token))
	case fields[0] == "remove" && len(fields) == 2:
		removed, err := st.runners.remove(fields[1])
		switch {
		case err != nil:
			return ephemeral("The runner was not removed: " + err.Error() + ".")
		case !removed:
			return ephemeral(fmt.Sprintf("There is no runner `%s`; `/codex runner list` shows them.", fields[1]))
		}
		p.API.LogInfo("A Codex runner was removed; its token no longer works.", "runner", fields[1], "by", user.Username)
		return ephemeral(fmt.Sprintf("Runner `%s` removed: its token no longer works, and its projects wait until another runner serves them.", fields[1]))
	case fields[0] == "list" && len(fields) == 1:
		return ephemeral(p.runnerListText(st))
	}
	return ephemeral(runnerUsage)
}

func (p *Plugin) runnerAddedText(name, token string) string {
	server := "https://chat.example.com"
	if mc := p.API.GetConfig(); mc != nil && model.SafeDereference(mc.ServiceSettings.SiteURL) != "" {
		server = strings.TrimRight(model.SafeDereference(mc.ServiceSettings.SiteURL), "/")
	}
	if u, err := url.Parse(server); err == nil {
		server = u.String()
	}
	return fmt.Sprintf("Runner `%s` added. Its token, shown only this once:\n```\n%s\n```\n"+
		"On the runner's machine, save it in a file only the runner's user can read, then run:\n"+
		"```\ncodex-host connect --server %s --token-file <file> --state-dir <dir>\n```\n"+
		"Then end the lines of its projects in **Projects** (System Console > Plugins > Codex for Mattermost) with `; runner=%s`.",
		name, token, server, name)
}

func (p *Plugin) runnerListText(st *activeState) string {
	recs, err := st.runners.list()
	if err != nil {
		return "Could not list the runners: " + err.Error() + "."
	}
	projects, _ := st.routing()
	owned := map[string][]string{}
	for project, runner := range projectRunners(projects) {
		if runner != "" {
			owned[runner] = append(owned[runner], project)
		}
	}
	if len(recs) == 0 {
		return "No runners yet. " + runnerUsage
	}
	var b strings.Builder
	b.WriteString("| Runner | State | Projects | Machine |\n|---|---|---|---|\n")
	for _, r := range recs {
		info, online, last, cfgErr := st.hub.status(r.Name)
		elsewhere := false
		if !online {
			elsewhere, last = st.hub.cluster.seenElsewhere(r.Name, last)
		}
		state := "offline"
		switch {
		case elsewhere:
			state = "online (through another server node)"
		case online && cfgErr != "":
			state = "online, refused its settings: " + oneLine(cfgErr, 120)
		case online:
			state = "online"
		case !last.IsZero():
			state = "offline since " + time.Since(last).Round(time.Second).String()
		}
		machine := "—"
		if info.Hostname != "" {
			machine = info.Hostname + " (codex-host " + info.Version + ")"
		}
		list := "none (add `; runner=" + r.Name + "` to a project)"
		if ps := owned[r.Name]; len(ps) > 0 {
			list = strings.Join(slices.Sorted(slices.Values(ps)), ", ")
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", r.Name, state, list, machine)
	}
	return b.String()
}
