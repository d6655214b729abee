package e2e

// Codex's command requests on the real server: the bundled command-guard policy decides the
// commands Codex asks to run outside its sandbox (the mock model's `[[mock:esc:COMMAND]]`), an
// approver answers with real button presses, and forged or self-approving clicks are refused.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCommandRequestsDecidedInTheThread(t *testing.T) {
	// Every escalated command needs carol; destructive rm shapes are denied outright.
	s.usePolicy(t, "command-guard", `{"approvers": ["carol"], "expiry_secs": 600}`)
	repo := filepath.Join(s.workDir, "repos", "demo")

	// ask starts a run whose model asks to run command outside the sandbox, tagged for the mock's
	// request log; it returns the thread's root.
	ask := func(t *testing.T, command, tag string) *model.Post {
		prompt := "[[mock:esc:" + command + "]] (" + tag + ")"
		s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
		return s.botRoot(t, s.public, prompt)
	}
	// closedAsk reads the thread's one command request back once it has no buttons left.
	closedAsk := func(t *testing.T, rootID string) *model.Post {
		posts := s.thread(t, rootID)
		asks := ofKind(posts, "approval")
		require.Len(t, asks, 1, describe(posts))
		assert.Empty(t, actionIDs(asks[0]), "a decided request keeps no buttons: %s", describe(posts))
		return asks[0]
	}

	t.Run("approved by the approver: the command runs", func(t *testing.T) {
		marker := filepath.Join(repo, "e2e-cmd-approved.txt")
		t.Cleanup(func() { _ = os.Remove(marker) })
		root := ask(t, "touch e2e-cmd-approved.txt", "e2e-cmd-approve")
		request := s.waitApprovalRequest(t, root.Id)
		assert.Contains(t, request.Message, "Codex asks to run a command")
		assert.Contains(t, request.Message, "touch e2e-cmd-approved.txt", "the full command is shown")
		assert.Contains(t, request.Message, "@carol")
		assert.NoFileExists(t, marker, "nothing runs before the answer")

		_, err := press(s.carol, request, "approve")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
		assert.Contains(t, out.Message, "Command output:", "Codex went on after the command")
		assert.FileExists(t, marker, "the approved command ran")
		closed := closedAsk(t, root.Id)
		assert.Equal(t, "approved", status(closed))
		assert.Contains(t, closed.Message, "Approved by @carol")
		assert.Len(t, ofKind(s.thread(t, root.Id), "outcome"), 1)
	})

	t.Run("approved for the session: the same request later in the thread is not asked", func(t *testing.T) {
		marker := filepath.Join(repo, "e2e-cmd-session.txt")
		t.Cleanup(func() { _ = os.Remove(marker) })
		root := ask(t, "touch e2e-cmd-session.txt", "e2e-cmd-session")
		request := s.waitApprovalRequest(t, root.Id)
		// The id must be one Mattermost routes clicks for (letters and digits only).
		require.True(t, hasAction(request, "approvesession"), "%v", actionIDs(request))
		_, err := press(s.carol, request, "approvesession")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
		assert.FileExists(t, marker)
		assert.Contains(t, closedAsk(t, root.Id).Message, "Approved for this session by @carol")

		require.NoError(t, os.Remove(marker))
		s.reply(t, s.alice, s.public, root.Id, "[[mock:esc:touch e2e-cmd-session.txt]] (e2e-cmd-session-again)")
		again := s.waitOutcome(t, root.Id, 2, runTimeout)
		assert.Equal(t, "answered", status(again), again.Message)
		assert.FileExists(t, marker, "the session grant covered the same request")
		assert.Len(t, ofKind(s.thread(t, root.Id), "approval"), 1, "asked again")
	})

	t.Run("denied by the approver: Codex is told no", func(t *testing.T) {
		marker := filepath.Join(repo, "e2e-cmd-denied.txt")
		root := ask(t, "touch e2e-cmd-denied.txt", "e2e-cmd-deny")
		request := s.waitApprovalRequest(t, root.Id)
		_, err := press(s.carol, request, "deny")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), "the run goes on without the command: %s", out.Message)
		assert.NoFileExists(t, marker)
		closed := closedAsk(t, root.Id)
		assert.Equal(t, "denied", status(closed))
		assert.Contains(t, closed.Message, "Denied by @carol")
		assert.True(t, s.modelGotDecline(t, "e2e-cmd-deny"), "Codex should report the declined call to the model")
		assert.Len(t, ofKind(s.thread(t, root.Id), "outcome"), 1)
	})

	t.Run("declined by policy: the reason in the thread, no buttons", func(t *testing.T) {
		// A top-level directory that does not exist: harmless even if the guard failed open.
		root := ask(t, "rm -rf /codex-e2e-probe", "e2e-cmd-policy")
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
		posts := s.thread(t, root.Id)
		assert.Empty(t, ofKind(posts, "approval"), "nobody is asked: %s", describe(posts))
		var declined *model.Post
		for _, p := range posts {
			if strings.Contains(p.Message, "Declined by policy") {
				declined = p
			}
		}
		require.NotNil(t, declined, describe(posts))
		assert.Contains(t, declined.Message, "rm -rf /codex-e2e-probe")
		assert.Contains(t, declined.Message, "would remove /codex-e2e-probe", "command-guard's reason is shown")
		assert.Empty(t, actionIDs(declined))
		assert.True(t, s.modelGotDecline(t, "e2e-cmd-policy"))
	})

	t.Run("forged and self-approving clicks decide nothing", func(t *testing.T) {
		marker := filepath.Join(repo, "e2e-cmd-attack.txt")
		root := ask(t, "touch e2e-cmd-attack.txt", "e2e-cmd-attack")
		request := s.waitApprovalRequest(t, root.Id)
		approve := s.buttonContext(t, request.Id, "approve")

		// carol may approve, but the click claims another channel than the request's.
		_, answer := s.postAction(t, s.carol, nil, model.PostActionIntegrationRequest{PostId: request.Id, ChannelId: s.offList.Id, Context: approve})
		assert.Contains(t, answer.EphemeralText, "does not belong to this channel")
		assert.Nil(t, answer.Update)
		// alice started the run; command-guard does not allow self-approval.
		sees := s.listen(t, s.alice)
		_, err := press(s.alice, request, "approve")
		require.NoError(t, err)
		refusal := sees.waitFor(t, s.public.Id, "cannot approve")
		assert.Contains(t, refusal.Message, "@carol")

		posts := s.thread(t, root.Id)
		pending := ofKind(posts, "approval")
		require.Len(t, pending, 1, describe(posts))
		assert.Equal(t, "awaiting_approval", status(pending[0]), describe(posts))
		assert.True(t, hasAction(pending[0], "approve") && hasAction(pending[0], "deny"), describe(posts))
		assert.Empty(t, ofKind(posts, "outcome"), "nothing was decided: %s", describe(posts))
		assert.NoFileExists(t, marker)

		// Clean up: the approver's real press still works, so the refused clicks spent nothing.
		_, err = press(s.carol, request, "deny")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
		assert.Equal(t, "denied", status(closedAsk(t, root.Id)))
		assert.NoFileExists(t, marker)
	})
}

// modelGotDecline reports whether Codex sent the mock model, in the run tagged tag, the output of
// a call the user or policy rejected.
func (s *suite) modelGotDecline(t *testing.T, tag string) bool {
	for _, body := range s.mockRequests(t) {
		if strings.Contains(body, tag) && strings.Contains(body, `"function_call_output"`) &&
			strings.Contains(strings.ToLower(body), "rejected") {
			return true
		}
	}
	return false
}
