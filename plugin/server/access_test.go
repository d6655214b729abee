package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

// grantAs posts an access grant to the plugin as the server would hand it over for caller.
func grantAs(p *Plugin, caller, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", routeAccessGrant, strings.NewReader(body))
	if caller != "" {
		req.Header.Set("Mattermost-User-Id", caller)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(nil, w, req)
	return w
}

// withSavedSettings makes the server hold settings for the plugin.
func withSavedSettings(api *testAPI, settings map[string]any) {
	cfg := &model.Config{}
	cfg.PluginSettings.Plugins = map[string]map[string]any{pluginID: settings}
	api.On("GetUnsanitizedConfig").Return(cfg)
}

func member(id, username string) *model.User {
	return &model.User{Id: id, Username: username, Roles: "system_user"}
}

func TestAnApprovedUserIsAppendedToAllowedUsers(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	withSavedSettings(api, map[string]any{"allowedusers": "bob, carol", "projects": "api = /srv/api", "hostsecret": "s3cret-value"})
	api.On("GetUser", "admin1").Return(testUser("admin1", "root"), nil)
	api.On("GetUser", "alice1").Return(member("alice1", "alice"), nil)
	var saved map[string]any
	api.On("SavePluginConfig", mock.Anything).Run(func(a mock.Arguments) { saved = a.Get(0).(map[string]any) }).Return(nil).Once()

	w := grantAs(p, "bot1", `{"user_id":"alice1","approved_by":"admin1"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	var got AccessGranted
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &got))
	assert.Equal(t, AccessGranted{Username: "alice", Added: true}, got)
	assert.Equal(t, map[string]any{"allowedusers": "bob, carol, alice", "projects": "api = /srv/api", "hostsecret": "s3cret-value"}, saved,
		"only Allowed users changes; the secret is saved as it was, not masked")
}

func TestAUserListedAlreadyIsNotAddedTwice(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	withSavedSettings(api, map[string]any{"AllowedUsers": "bob, Alice"})
	api.On("GetUser", "admin1").Return(testUser("admin1", "root"), nil)
	api.On("GetUser", "alice1").Return(member("alice1", "alice"), nil)

	w := grantAs(p, "bot1", `{"user_id":"alice1","approved_by":"admin1"}`)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"username":"alice","added":false}`, w.Body.String())
	api.AssertNotCalled(t, "SavePluginConfig", mock.Anything)
}

func TestOnlyTheBotMayGrantAndOnlyForARealApprover(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	withSavedSettings(api, map[string]any{"allowedusers": "bob", "accessapprovers": "carol"})
	api.On("GetUser", "bob1").Return(member("bob1", "bob"), nil)
	api.On("GetUserByUsername", "carol").Return(member("carol1", "carol"), nil)
	body := `{"user_id":"alice1","approved_by":"bob1"}`

	// No session, or a person's session (even naming an admin approver): refused before anything.
	assert.Equal(t, http.StatusUnauthorized, grantAs(p, "", body).Code)
	w := grantAs(p, "alice1", `{"user_id":"alice1","approved_by":"admin1"}`)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "Only codex-host")

	// The bot, for an approver who is neither an admin nor listed.
	w = grantAs(p, "bot1", body)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "@bob is neither a system admin nor listed")

	// Approving oneself, even as an admin.
	w = grantAs(p, "bot1", `{"user_id":"alice1","approved_by":"alice1"}`)
	assert.Equal(t, http.StatusForbidden, w.Code)
	assert.Contains(t, w.Body.String(), "own access request")
	api.AssertNotCalled(t, "SavePluginConfig", mock.Anything)
}

func TestANamedApproverMayGrantAndASaveFailureIsReported(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	withSavedSettings(api, map[string]any{"allowedusers": "", "accessapprovers": "carol"})
	api.On("GetUser", "carol1").Return(member("carol1", "carol"), nil)
	api.On("GetUser", "alice1").Return(member("alice1", "alice"), nil)
	api.On("GetUserByUsername", "carol").Return(member("carol1", "carol"), nil)
	api.On("SavePluginConfig", map[string]any{"allowedusers": "alice", "accessapprovers": "carol"}).
		Return(model.NewAppError("SavePluginConfig", "disk", nil, "read-only config", http.StatusInternalServerError))

	w := grantAs(p, "bot1", `{"user_id":"alice1","approved_by":"carol1"}`)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Contains(t, w.Body.String(), "did not save the settings")
}

func TestBotsAndDeactivatedUsersAreNotGranted(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "secret"))
	withSavedSettings(api, map[string]any{})
	api.On("GetUser", "admin1").Return(testUser("admin1", "root"), nil)
	api.On("GetUser", "bot2").Return(&model.User{Id: "bot2", Username: "helper", IsBot: true}, nil)
	api.On("GetUser", "gone1").Return(&model.User{Id: "gone1", Username: "gone", DeleteAt: 1}, nil)

	for _, id := range []string{"bot2", "gone1"} {
		w := grantAs(p, "bot1", `{"user_id":"`+id+`","approved_by":"admin1"}`)
		assert.Equal(t, http.StatusNotFound, w.Code, id)
	}
	api.AssertNotCalled(t, "SavePluginConfig", mock.Anything)
}
