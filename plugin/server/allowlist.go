package main

// Resolves the Allowed users, Allowed channels and Allowed teams settings (and Access requests go
// to) from names to ids, each time the settings are handed to codex-host (activation, every save,
// every host (re)start).
//
// The bundled allowlist policy compares ids only, so a name is trusted once, when it is resolved:
// a user who later renames himself to a listed username, or a channel created later with a listed
// name in another team, gains nothing. Ids never change, so a listed user who renames himself
// keeps access; the next push re-reads the names (Mattermost has no rename hook for plugins).
//
// An entry that names nothing is logged for the admin and sent as `unresolved:<entry>`: it matches
// no id, yet keeps its list non-empty, so a list of only unknown channels admits no channel rather
// than every channel. Resolution never fails the push. This file does no I/O besides plugin API
// reads and logs.

import (
	"fmt"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	// allowEveryone in Allowed users admits everyone in the allowed channels and teams.
	allowEveryone = "*"
	// unresolvedPrefix marks an entry that named nothing when the settings were pushed.
	unresolvedPrefix = "unresolved:"
)

// directory is the part of the plugin API that resolution reads.
type directory interface {
	GetUser(userID string) (*model.User, *model.AppError)
	GetUserByUsername(name string) (*model.User, *model.AppError)
	GetTeams() ([]*model.Team, *model.AppError)
	GetTeam(teamID string) (*model.Team, *model.AppError)
	GetTeamByName(name string) (*model.Team, *model.AppError)
	GetChannel(channelID string) (*model.Channel, *model.AppError)
	GetChannelByName(teamID, name string, includeDeleted bool) (*model.Channel, *model.AppError)
}

// allowlistResolver turns the three settings into ids, logging what it cannot resolve.
type allowlistResolver struct {
	dir directory
	log logger
}

// resolve returns settings with the three allowlist settings as ids.
func (r allowlistResolver) resolve(s HostSettings) HostSettings {
	s.AllowedTeams = r.teams(s.AllowedTeams)
	s.AllowedUsers = r.users(s.AllowedUsers)
	s.AllowedChannels = r.channels(s.AllowedChannels, s.AllowedTeams)
	s.AccessApprovers = r.usersOf("Access requests go to", s.AccessApprovers)
	return s
}

// resolveDoc is resolve for a whole settings document, leaving doc itself untouched.
func (r allowlistResolver) resolveDoc(doc *ConfigRequest) *ConfigRequest {
	out := *doc
	out.Settings = r.resolve(doc.Settings)
	return &out
}

func (r allowlistResolver) unresolved(setting, entry, why string) string {
	r.log.LogWarn(fmt.Sprintf("%s: `%s` %s, so it admits nobody; it is checked again at the next save. Fix it in System Console > Plugins > Codex for Mattermost.", setting, entry, why),
		"setting", setting, "entry", entry)
	return unresolvedPrefix + entry
}

func (r allowlistResolver) users(entries []string) []string {
	return r.usersOf("Allowed users", entries)
}

// usersOf resolves the usernames and ids of the setting named `setting`.
func (r allowlistResolver) usersOf(setting string, entries []string) []string {
	out := make([]string, 0, len(entries))
	for _, entry := range entries {
		if entry == allowEveryone {
			out = append(out, entry)
			continue
		}
		var user *model.User
		if model.IsValidId(entry) {
			user, _ = r.dir.GetUser(entry)
		} else {
			user, _ = r.dir.GetUserByUsername(strings.ToLower(entry))
		}
		if user == nil {
			out = append(out, r.unresolved(setting, entry, "names no user"))
			continue
		}
		out = append(out, user.Id)
	}
	return out
}

func (r allowlistResolver) team(entry string) *model.Team {
	if model.IsValidId(entry) {
		if t, _ := r.dir.GetTeam(entry); t != nil {
			return t
		}
	}
	t, _ := r.dir.GetTeamByName(strings.ToLower(entry))
	return t
}

func (r allowlistResolver) teams(entries []string) []string {
	out := make([]string, 0, len(entries))
	for _, entry := range entries {
		if t := r.team(entry); t != nil {
			out = append(out, t.Id)
		} else {
			out = append(out, r.unresolved("Allowed teams", entry, "names no team"))
		}
	}
	return out
}

// channelIn finds a channel of one team by name or id.
func (r allowlistResolver) channelIn(teamID, entry string) *model.Channel {
	if model.IsValidId(entry) {
		if c, _ := r.dir.GetChannel(entry); c != nil && c.TeamId == teamID {
			return c
		}
	}
	c, _ := r.dir.GetChannelByName(teamID, strings.ToLower(entry), false)
	return c
}

// channels resolves `team/channel`, a channel id, or a bare channel name: the channels of that
// name in the allowed teams (every team when Allowed teams is empty) as they are now.
func (r allowlistResolver) channels(entries, teamIDs []string) []string {
	out := make([]string, 0, len(entries))
	for _, entry := range entries {
		if teamPart, name, ok := strings.Cut(entry, "/"); ok {
			name = strings.TrimLeft(name, "~")
			var c *model.Channel
			if t := r.team(teamPart); t != nil {
				c = r.channelIn(t.Id, name)
			}
			if c == nil {
				out = append(out, r.unresolved("Allowed channels", entry, "names no channel"))
			} else {
				out = append(out, c.Id)
			}
			continue
		}
		if model.IsValidId(entry) {
			if c, _ := r.dir.GetChannel(entry); c != nil {
				out = append(out, c.Id)
				continue
			}
		}
		found := 0
		for _, teamID := range r.searchTeams(teamIDs) {
			if c, _ := r.dir.GetChannelByName(teamID, strings.ToLower(entry), false); c != nil {
				out = append(out, c.Id)
				found++
			}
		}
		if found == 0 {
			where := "in any team"
			if len(teamIDs) > 0 {
				where = "in the allowed teams"
			}
			out = append(out, r.unresolved("Allowed channels", entry, "names no channel "+where))
		}
	}
	return out
}

// searchTeams is where a bare channel name is looked up: the allowed teams that resolved, or every
// team when Allowed teams is empty.
func (r allowlistResolver) searchTeams(teamIDs []string) []string {
	if len(teamIDs) > 0 {
		out := make([]string, 0, len(teamIDs))
		for _, id := range teamIDs {
			if !strings.HasPrefix(id, unresolvedPrefix) {
				out = append(out, id)
			}
		}
		return out
	}
	teams, appErr := r.dir.GetTeams()
	if appErr != nil {
		r.log.LogWarn("Allowed channels: could not list the teams to look up channel names; names without a team admit nobody until the next save.", "error", appErr.Error())
		return nil
	}
	out := make([]string, 0, len(teams))
	for _, t := range teams {
		out = append(out, t.Id)
	}
	return out
}
