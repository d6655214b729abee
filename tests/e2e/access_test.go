package e2e

// Request access on the real server: a refused user presses the button under the refusal (of
// /codex, then of an @codex mention), the system admin gets a DM from the bot, people who may not
// answer are refused, the admin approves, the plugin saves the new Allowed users and the user's
// next /codex runs.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRequestAccess(t *testing.T) {
	ctx := context.Background()
	dave := s.member(t, "dave")
	// Approving changes the server's settings: put the suite's back for the scenarios after this.
	t.Cleanup(func() { assert.NoError(t, s.writeSettings(ctx)) })
	inbox := s.listen(t, dave)

	resp := s.mustCommand(t, dave, s.public, "", "/codex hello (e2e-access)")
	assert.Contains(t, resp.Text, "@dave is not on the Codex allowlist")
	refusal := inbox.waitFor(t, s.public.Id, "@dave is not on the Codex allowlist")
	pressEphemeral(t, dave, refusal, "requestaccess")
	inbox.waitFor(t, s.public.Id, "Asked @admin to add you to Allowed users")

	dm, _, err := s.admin.client.CreateDirectChannel(ctx, s.admin.user.Id, s.botID)
	require.NoError(t, err)
	request := s.postContaining(t, dm, "@dave asks for access")
	assert.Equal(t, "access_request", kind(request))
	assert.ElementsMatch(t, []string{"approve", "deny"}, actionIDs(request))

	t.Run("a second request while one waits asks nobody", func(t *testing.T) {
		// Through an @-mention this time: the refusal is an ephemeral post the plugin sends, and
		// its button must be as clickable as the one under a slash command's answer.
		mention := s.reply(t, dave, s.public, "", "@codex hello again (e2e-access)")
		again := inbox.waitForIn(t, s.public.Id, mention.Id, "@dave is not on the Codex allowlist")
		pressEphemeral(t, dave, again, "requestaccess")
		inbox.waitFor(t, s.public.Id, "still waiting for an answer")
		assert.Len(t, s.botPostsContaining(t, dm, "@dave asks for access"), 1)
	})

	t.Run("people who are not admins cannot approve", func(t *testing.T) {
		approve := s.buttonContext(t, request.Id, "approve")
		// The signed context of the admin's DM, sent from a channel the attacker can read: the
		// plugin lets it through, the host checks who clicks.
		for _, attack := range []struct {
			by   *actor
			told string
		}{{s.carol, "Only a system admin"}, {dave, "cannot answer your own access request"}} {
			code, answer := s.postAction(t, attack.by, nil, model.PostActionIntegrationRequest{
				PostId: request.Id, ChannelId: s.public.Id, TeamId: s.team.Id, Context: approve,
			})
			assert.Equal(t, http.StatusOK, code)
			assert.Contains(t, answer.EphemeralText, attack.told, "@%s", attack.by.user.Username)
		}
		// The plugin's grant route takes only the bot.
		code := s.callGrant(t, s.carol, fmt.Sprintf(`{"user_id":%q,"approved_by":%q}`, dave.user.Id, s.admin.user.Id))
		assert.Equal(t, http.StatusForbidden, code)
		assert.NotContains(t, s.savedAllowedUsers(t), "dave")
	})

	_, err = press(s.admin, request, "approve")
	require.NoError(t, err)
	closed := eventually(t, 30*time.Second, "the DM closed", func() (*model.Post, bool, string) {
		p, _, err := s.admin.client.GetPost(ctx, request.Id, "")
		if err != nil {
			return nil, false, err.Error()
		}
		return p, status(p) == "approved", p.Message
	})
	assert.Contains(t, closed.Message, "by @admin")
	assert.Empty(t, actionIDs(closed), "the buttons are gone")
	assert.Contains(t, s.savedAllowedUsers(t), "dave")

	daveDM, _, err := dave.client.CreateDirectChannel(ctx, dave.user.Id, s.botID)
	require.NoError(t, err)
	eventually(t, 30*time.Second, "the requester told", func() (bool, bool, string) {
		list, _, err := dave.client.GetPostsForChannel(ctx, daveDM.Id, 0, 20, "", false, false)
		if err != nil {
			return false, false, err.Error()
		}
		for _, p := range list.Posts {
			if strings.Contains(p.Message, "@admin approved your request") {
				return true, true, ""
			}
		}
		return false, false, fmt.Sprintf("%d posts", len(list.Posts))
	})

	// The new settings reach the host through the plugin's usual push; then dave's /codex runs.
	eventually(t, 30*time.Second, "dave allowed by the policy", func() (bool, bool, string) {
		r := s.mustCommand(t, dave, s.public, "", "/codex policy")
		return true, !strings.Contains(r.Text, "user-not-listed"), r.Text
	})
	const prompt = "hello now that I may (e2e-access-allowed)"
	s.mustCommand(t, dave, s.public, "", "/codex "+prompt)
	out := s.waitOutcome(t, s.botRoot(t, s.public, prompt).Id, 1, runTimeout)
	assert.Equal(t, "answered", status(out), out.Message)
}

// pressEphemeral clicks a button of an ephemeral post, which only the server's cookie identifies.
func pressEphemeral(t *testing.T, a *actor, p *model.Post, actionID string) {
	t.Helper()
	for _, att := range p.Attachments() {
		for _, act := range att.Actions {
			if act.Id == actionID {
				_, err := a.client.DoPostActionWithCookie(context.Background(), p.Id, act.Id, "", act.Cookie)
				require.NoError(t, err)
				return
			}
		}
	}
	require.FailNow(t, "no "+actionID+" button", "%v", actionIDs(p))
}

// callGrant posts to the plugin's grant route as a; the status.
func (s *suite) callGrant(t *testing.T, a *actor, body string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.server.URL+"/plugins/"+pluginID+"/v1/access/grant", bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+a.client.AuthToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	return resp.StatusCode
}

// savedAllowedUsers is the Allowed users setting as the server stores it.
func (s *suite) savedAllowedUsers(t *testing.T) string {
	t.Helper()
	cfg, _, err := s.admin.client.GetConfig(context.Background())
	require.NoError(t, err)
	v, _ := cfg.PluginSettings.Plugins[pluginID]["allowedusers"].(string)
	return v
}
