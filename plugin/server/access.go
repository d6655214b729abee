package main

// POST /v1/access/grant: after an approver pressed Approve on an access request, codex-host asks
// the plugin to add the requester to Allowed users. The plugin owns its settings (the host cannot
// write them), so this is the one route the host calls on the plugin: through the Mattermost
// server, as the plugin's bot (`/plugins/<id>/v1/access/grant` with the bot's token). The server
// sets Mattermost-User-Id from that token, so a caller other than the bot is refused. The approver
// is checked again here from the server's own records: a system admin, or someone listed under
// Access requests go to, and never the user being added.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	routeAccessGrant = "/v1/access/grant"
	maxGrantBody     = 4 << 10
	// allowedUsersKey is how the server keeps the Allowed users key (plugin setting keys are
	// stored in lower case).
	allowedUsersKey = "allowedusers"
)

// AccessGrant is the body of POST /v1/access/grant.
type AccessGrant struct {
	UserID     string `json:"user_id"`
	ApprovedBy string `json:"approved_by"`
}

// AccessGranted answers a successful grant; Added is false when the user was listed already.
type AccessGranted struct {
	Username string `json:"username"`
	Added    bool   `json:"added"`
}

func (p *Plugin) handleAccessGrant(w http.ResponseWriter, r *http.Request) {
	caller := authenticatedUser(w, r)
	if caller == "" {
		return
	}
	st := p.state()
	if st == nil || caller != st.botUserID {
		p.API.LogWarn("Refused a request to add someone to Allowed users: only codex-host, as the plugin's bot, may make it.", "user_id", caller)
		writeError(w, http.StatusForbidden, "Only codex-host, signed in as the plugin's bot, may add people to Allowed users.")
		return
	}
	var in AccessGrant
	if err := json.NewDecoder(io.LimitReader(r.Body, maxGrantBody)).Decode(&in); err != nil || in.UserID == "" || in.ApprovedBy == "" {
		writeError(w, http.StatusBadRequest, "The body must name user_id and approved_by.")
		return
	}
	_, cfg, err := p.savedSettings()
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	if msg := p.mayApproveAccess(cfg, in); msg != "" {
		p.API.LogWarn("Refused to add someone to Allowed users: "+msg, "user_id", in.UserID, "approved_by", in.ApprovedBy)
		writeError(w, http.StatusForbidden, msg)
		return
	}
	user, appErr := p.API.GetUser(in.UserID)
	if appErr != nil || user.DeleteAt != 0 || user.IsBot {
		writeError(w, http.StatusNotFound, "the user to add is not an active person on this server")
		return
	}
	added, err := p.addAllowedUser(user)
	if err != nil {
		p.API.LogError("Could not add a user to Allowed users.", "user_id", user.Id, "error", err.Error())
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	p.API.LogInfo("Added a user to Allowed users after an approved access request.", "user_id", user.Id, "username", user.Username, "approved_by", in.ApprovedBy, "added", added)
	writeJSON(w, http.StatusOK, AccessGranted{Username: user.Username, Added: added})
}

// savedSettings is the plugin's settings as the server stores them now, raw and parsed. Unsanitized:
// GetConfig masks secrets (the Host secret), and saving a masked copy would overwrite them; and not
// LoadPluginConfiguration, whose defaults a save would pin.
func (p *Plugin) savedSettings() (map[string]any, *configuration, error) {
	raw := map[string]any{}
	if c := p.API.GetUnsanitizedConfig(); c != nil {
		for k, v := range c.PluginSettings.Plugins[pluginID] {
			raw[k] = v
		}
	}
	cfg, err := parseConfiguration(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("the saved settings are invalid, so nothing was changed (%v)", err)
	}
	return raw, cfg, nil
}

// mayApproveAccess says why in.ApprovedBy may not approve, or "" when they may.
func (p *Plugin) mayApproveAccess(cfg *configuration, in AccessGrant) string {
	if in.ApprovedBy == in.UserID {
		return "nobody approves their own access request"
	}
	approver, appErr := p.API.GetUser(in.ApprovedBy)
	if appErr != nil || approver.DeleteAt != 0 {
		return "the approver is not an active user"
	}
	if approver.IsSystemAdmin() {
		return ""
	}
	named := allowlistResolver{dir: p.API, log: p.API}.usersOf("Access requests go to", cfg.AccessApprovers)
	if slices.Contains(named, approver.Id) {
		return ""
	}
	return "@" + approver.Username + " is neither a system admin nor listed under Access requests go to"
}

// addAllowedUser appends user's name to Allowed users and saves the settings; false when the
// list names them (or everyone) already. Read and write happen under one lock, so two approvals
// at once both land.
func (p *Plugin) addAllowedUser(user *model.User) (bool, error) {
	p.accessMu.Lock()
	defer p.accessMu.Unlock()
	settings, cfg, err := p.savedSettings()
	if err != nil {
		return false, err
	}
	for _, entry := range cfg.AllowedUsers {
		if entry == allowEveryone || entry == user.Id || strings.EqualFold(entry, user.Username) {
			return false, nil
		}
	}
	for k := range settings {
		if strings.EqualFold(k, allowedUsersKey) {
			delete(settings, k)
		}
	}
	settings[allowedUsersKey] = strings.Join(append(slices.Clone(cfg.AllowedUsers), user.Username), ", ")
	if appErr := p.API.SavePluginConfig(settings); appErr != nil {
		return false, fmt.Errorf("the server did not save the settings: %s", appErr.Error())
	}
	return true, nil
}
