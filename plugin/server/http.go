package main

// The plugin's HTTP routes, reached by the server at /plugins/<id>/...:
//
//	POST /v1/actions              interactive button clicks, forwarded to the host that made the post
//	GET  /autocomplete/projects   the dynamic project list of /codex project
//	POST /v1/access/grant         codex-host (as the bot) adds an approved user (access.go)
//	/runner/v1/...                remote runners (runnerhttp.go), authenticated by their own token
//
// The first three need the Mattermost-User-Id header, which the server sets only for an authenticated
// session (after deleting any client-sent copy); requests without it are refused. The user id
// sent to the host always comes from that header, never from the request body.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const maxActionBody = 1 << 20

func (p *Plugin) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	p.routesOnce.Do(func() {
		mux := http.NewServeMux()
		mux.HandleFunc("POST "+routeActions, p.handleAction)
		mux.HandleFunc("POST "+routeAccessGrant, p.handleAccessGrant)
		mux.HandleFunc("GET /"+autocompleteProjectsPath, p.handleAutocompleteProjects)
		mux.HandleFunc("POST /runner/v1/poll", p.handleRunnerPoll)
		mux.HandleFunc("POST /runner/v1/answer", p.handleRunnerAnswer)
		mux.HandleFunc(relayPrefix+"/", p.handleRunnerRelay)
		p.routes = mux
	})
	p.routes.ServeHTTP(w, r)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}

// authenticatedUser returns the server-set user id, or answers 401 and returns "".
func authenticatedUser(w http.ResponseWriter, r *http.Request) string {
	userID := r.Header.Get("Mattermost-User-Id")
	if userID == "" {
		writeError(w, http.StatusUnauthorized, "Not signed in: this endpoint is only for requests made through a Mattermost session.")
	}
	return userID
}

func (p *Plugin) handleAction(w http.ResponseWriter, r *http.Request) {
	userID := authenticatedUser(w, r)
	if userID == "" {
		return
	}
	var in model.PostActionIntegrationRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxActionBody)).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "The request body is not an interactive message action: "+err.Error())
		return
	}
	st := p.state()
	if st == nil {
		writeJSON(w, http.StatusOK, model.PostActionIntegrationResponse{EphemeralText: unavailableMessage(&hostError{kind: hostUnreachable}, "This button did nothing", "")})
		return
	}
	// The body is the client's: a user may send any channel id. The host takes the channel from
	// the run the signed context names and refuses a click whose channel is another; here the
	// clicking user must be able to read that channel.
	if in.ChannelId == "" || !p.API.HasPermissionToChannel(userID, in.ChannelId, model.PermissionReadChannel) {
		p.API.LogWarn("Refused a button click on a channel the user cannot read.", "user_id", userID, "channel_id", in.ChannelId)
		writeJSON(w, http.StatusOK, model.PostActionIntegrationResponse{EphemeralText: "Nothing happened: this button is in a channel you cannot read."})
		return
	}
	req := ActionRequest{
		UserID:    userID,
		PostID:    in.PostId,
		ChannelID: in.ChannelId,
		TeamID:    in.TeamId,
		TriggerID: in.TriggerId,
		Context:   in.Context,
	}
	if u, err := st.resolver.user(userID); err == nil {
		req.UserName = u.Username
		req.User = u
	}
	if ch, err := st.resolver.channel(in.ChannelId, in.TeamId); err == nil {
		req.Channel = ch
	}
	raw, err := st.conn(p.clickRunner(st, in.PostId)).call(r.Context(), timeoutAction, http.MethodPost, routeActions, req)
	if err != nil {
		he := asHostError(err)
		p.API.LogWarn("A button click could not be handed to codex-host. "+hostAdvice(he.kind, st.mode()),
			"user_id", userID, "post_id", in.PostId, "error", he.Error())
		writeJSON(w, http.StatusOK, model.PostActionIntegrationResponse{EphemeralText: unavailableMessage(he, "This button did nothing", "")})
		return
	}
	// Passed through as is: the host answers in PostActionIntegrationResponse's own shape.
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

func (p *Plugin) handleAutocompleteProjects(w http.ResponseWriter, r *http.Request) {
	userID := authenticatedUser(w, r)
	if userID == "" {
		return
	}
	items := []AutocompleteItem{}
	st := p.state()
	if st == nil {
		writeJSON(w, http.StatusOK, items)
		return
	}
	q := url.Values{}
	q.Set("user_id", userID)
	q.Set("channel_id", r.URL.Query().Get("channel_id"))
	q.Set("team_id", r.URL.Query().Get("team_id"))
	err := callJSON(context.Background(), st.conn(""), timeoutAutocomplete, http.MethodGet, routeAutocomplete+"?"+q.Encode(), nil, &items)
	if err != nil {
		// An empty list still lets the user type a name; the command itself explains what failed.
		p.API.LogWarn("Could not fetch the project list from codex-host for autocomplete.", "error", err.Error())
		items = []AutocompleteItem{}
	}
	items = append(items, st.elsewhere("")...)
	writeJSON(w, http.StatusOK, items)
}

// clickRunner is the runner that made the post a button is on ("" = the local host).
func (p *Plugin) clickRunner(st *activeState, postID string) string {
	if projects, _ := st.routing(); !hasRunners(projects) {
		return ""
	}
	post, appErr := p.API.GetPost(postID)
	if appErr != nil {
		return ""
	}
	return st.route.threadRunner(threadOf(post))
}
