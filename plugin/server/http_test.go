package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func TestActionsNeedAServerAuthenticatedUser(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)

	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, httptest.NewRequest("POST", "/v1/actions", strings.NewReader(`{"user_id":"u1","context":{"action":"cancel"}}`)))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Empty(t, host.received("POST", routeActions))

	w = httptest.NewRecorder()
	p.ServeHTTP(nil, w, httptest.NewRequest("GET", "/autocomplete/projects", nil))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
}

func TestActionsTakeTheUserFromTheHeaderNotTheBody(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeActions, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"update":null,"ephemeral_text":"Cancelled."}`))
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u-real").Return(testUser("u-real", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("HasPermissionToChannel", "u-real", "c1", model.PermissionReadChannel).Return(true)

	req := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(
		`{"user_id":"u-forged","user_name":"mallory","post_id":"p1","channel_id":"c1","team_id":"t1","trigger_id":"tr","context":{"action":"cancel","run_id":"r1","sig":"s"}}`))
	req.Header.Set("Mattermost-User-Id", "u-real")
	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, req)

	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"update":null,"ephemeral_text":"Cancelled."}`, w.Body.String())
	reqs := host.received("POST", routeActions)
	require.Len(t, reqs, 1)
	var got ActionRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &got))
	assert.Equal(t, "alice", got.User.Username, "the user is resolved from the header's id")
	assert.Equal(t, "eng", got.Channel.TeamName)
	got.User, got.Channel = User{}, Channel{}
	assert.Equal(t, ActionRequest{
		UserID: "u-real", UserName: "alice", PostID: "p1", ChannelID: "c1", TeamID: "t1", TriggerID: "tr",
		Context: map[string]any{"action": "cancel", "run_id": "r1", "sig": "s"},
	}, got)
}

func TestActionWhenTheHostIsDownTellsTheUser(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)
	p.state().tgt.client = newHostClient(host.socket+".missing", "secret", sameUserPeer())
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("HasPermissionToChannel", "u1", "c1", model.PermissionReadChannel).Return(true)
	api.On("GetChannel", "c1").Return(nil, model.NewAppError("GetChannel", "not_found", nil, "", http.StatusNotFound)).Maybe()

	req := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(`{"post_id":"p1","channel_id":"c1","context":{"action":"cancel"}}`))
	req.Header.Set("Mattermost-User-Id", "u1")
	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, req)
	require.Equal(t, http.StatusOK, w.Code)
	var resp model.PostActionIntegrationResponse
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
	assert.Contains(t, resp.EphemeralText, "Codex is not available right now")
}

// A click body naming a channel the user cannot read (or none) never reaches the host.
func TestActionsOnChannelsTheUserCannotReadAreRefused(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)
	api.On("HasPermissionToChannel", "u1", "c-private", model.PermissionReadChannel).Return(false)

	for _, body := range []string{
		`{"post_id":"p1","channel_id":"c-private","context":{"action":"retry","run_id":"r1","sig":"s"}}`,
		`{"post_id":"p1","context":{"action":"retry","run_id":"r1","sig":"s"}}`,
	} {
		req := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(body))
		req.Header.Set("Mattermost-User-Id", "u1")
		w := httptest.NewRecorder()
		p.ServeHTTP(nil, w, req)
		require.Equal(t, http.StatusOK, w.Code)
		var resp model.PostActionIntegrationResponse
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &resp))
		assert.Contains(t, resp.EphemeralText, "cannot read", body)
	}
	assert.Empty(t, host.received("POST", routeActions), "a click on an unreadable channel reached the host")
}

func TestAutocompleteProjectsComesFromTheHost(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("GET "+routeAutocomplete, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`[{"Item":"api","Hint":"/srv/api","HelpText":"Backend (active here)"}]`))
	})
	p := activeTestPlugin(t, api, host)

	req := httptest.NewRequest("GET", "/autocomplete/projects?channel_id=c1&team_id=t1&user_id=forged", nil)
	req.Header.Set("Mattermost-User-Id", "u1")
	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, req)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `[{"Item":"api","Hint":"/srv/api","HelpText":"Backend (active here)"}]`, w.Body.String())

	reqs := host.received("GET", routeAutocomplete)
	require.Len(t, reqs, 1)
	q, _ := url.ParseQuery(reqs[0].Query)
	assert.Equal(t, "u1", q.Get("user_id"))
	assert.Equal(t, "c1", q.Get("channel_id"))
	assert.Equal(t, "t1", q.Get("team_id"))
}

func TestUnknownRoutesAre404(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, httptest.NewRequest("GET", "/v1/config", nil))
	assert.Equal(t, http.StatusNotFound, w.Code)
}
