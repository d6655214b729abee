package harness

// Codex's command requests through the plugin in Mattermost's loader: the bundled command-guard
// puts a command Codex asks to run outside its sandbox to carol, whose button presses reach the
// host through the plugin's /v1/actions route (ServeHTTP).

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// commandRig is what the command-request subtests use of TestPluginInMattermostsLoader's setup.
type commandRig struct {
	repo         string
	alice, carol string
	// run sends `/codex text` as alice.
	run func(t *testing.T, text string)
	// await waits for the approval post whose message contains text, with its buttons.
	await func(t *testing.T, text string) fakePost
	// press clicks one of a post's buttons through ServeHTTP as userID.
	press func(t *testing.T, post fakePost, action, userID string) model.PostActionIntegrationResponse
	// mmAddr is the fake Mattermost's address.
	mmAddr string
}

// outcome waits for the outcome post of the thread rootID.
func (rig commandRig) outcome(t *testing.T, rootID string) fakePost {
	t.Helper()
	var found fakePost
	waitUntil(t, 90*time.Second, "the outcome in thread "+rootID, func() bool {
		var posts []fakePost
		getJSON(t, "http://"+rig.mmAddr+"/_test/posts", &posts)
		for _, p := range posts {
			if p.Post.RootID == rootID && p.Post.Props["codex_kind"] == "outcome" {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// installCommandGuard adds the bundle's command-guard to the admin's policy directory: every
// command Codex asks to run outside the sandbox needs carol.
func installCommandGuard(t *testing.T, bundlePath, policyDir string) {
	wasm, err := os.ReadFile(filepath.Join(bundlePath, "policies", "command-guard.wasm"))
	require.NoError(t, err, "the bundle ships command-guard")
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "80-command-guard.wasm"), wasm, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(policyDir, "80-command-guard.json"), []byte(`{"approvers":["carol"],"expiry_secs":600}`), 0o644))
}

func commandRequestsByButton(t *testing.T, rig commandRig) {
	t.Run("a command request approved by button runs the command", func(t *testing.T) {
		marker := filepath.Join(rig.repo, "harness-approved.txt")
		rig.run(t, "[[mock:esc:touch harness-approved.txt]] (harness-cmd-approve)")
		request := rig.await(t, "touch harness-approved.txt")
		assert.Contains(t, request.Post.Message, "Codex asks to run a command")
		assert.NoFileExists(t, marker, "nothing runs before the answer")
		own := rig.press(t, request, "approve", rig.alice)
		assert.Contains(t, own.EphemeralText, "cannot approve")
		ok := rig.press(t, request, "approve", rig.carol)
		require.NotNil(t, ok.Update, ok.EphemeralText)
		assert.Contains(t, ok.Update.Message, "Approved by @carol")
		assert.Nil(t, ok.Update.GetProp("attachments"), "the answered request keeps no buttons")
		out := rig.outcome(t, request.Post.RootID)
		assert.Equal(t, "answered", out.Post.Props["codex_status"], out.Post.Message)
		assert.Contains(t, out.Post.Message, "Command output:", "Codex went on after the command")
		assert.FileExists(t, marker, "the approved command ran")
	})

	t.Run("a command request denied by button does not run", func(t *testing.T) {
		marker := filepath.Join(rig.repo, "harness-denied.txt")
		rig.run(t, "[[mock:esc:touch harness-denied.txt]] (harness-cmd-deny)")
		request := rig.await(t, "touch harness-denied.txt")
		no := rig.press(t, request, "deny", rig.carol)
		require.NotNil(t, no.Update, no.EphemeralText)
		assert.Contains(t, no.Update.Message, "Denied by @carol")
		assert.Nil(t, no.Update.GetProp("attachments"))
		out := rig.outcome(t, request.Post.RootID)
		assert.Contains(t, out.Post.Message, "rejected", "Codex told the model the command was declined")
		assert.Equal(t, "answered", out.Post.Props["codex_status"], out.Post.Message)
		assert.NoFileExists(t, marker)
	})
}
