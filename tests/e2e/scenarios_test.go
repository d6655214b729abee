package e2e

// The scenarios, in the order go test runs them: the ones that restart or kill codex-host last.

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Runs are answered by the mock model in a few seconds; a cold Codex start takes longer.
const runTimeout = 2 * time.Minute

func TestHelpAndAutocomplete(t *testing.T) {
	help := s.mustCommand(t, s.alice, s.public, "", "/codex help")
	assert.Equal(t, model.CommandResponseTypeEphemeral, help.ResponseType)
	for _, want := range []string{"/codex project", "/codex cancel"} {
		assert.Contains(t, help.Text, want)
	}

	ctx := context.Background()
	suggestions, _, err := s.alice.client.ListCommandAutocompleteSuggestions(ctx, "/codex ", s.team.Id)
	require.NoError(t, err)
	var complete []string
	for _, sg := range suggestions {
		complete = append(complete, sg.Complete)
	}
	for _, want := range []string{"codex help", "codex project", "codex projects", "codex cancel", "codex policy"} {
		assert.Contains(t, complete, want, "suggestions for `/codex `")
	}

	// The project argument is a dynamic list: the server asks the plugin, the plugin the host.
	suggestions, _, err = s.alice.client.ListCommandAutocompleteSuggestions(ctx, "/codex project ", s.team.Id)
	require.NoError(t, err)
	var projects []string
	for _, sg := range suggestions {
		projects = append(projects, sg.Suggestion)
	}
	assert.Contains(t, projects, "demo", "suggestions for `/codex project `: %+v", suggestions)
}

func TestPromptRunsAndReplyContinuesTheSession(t *testing.T) {
	const prompt = "what does the demo project do (e2e-first)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)

	root := s.botRoot(t, s.public, prompt)
	assert.Contains(t, root.Message, "@alice asked Codex in `demo`")

	first := s.waitOutcome(t, root.Id, 1, runTimeout)
	assert.Equal(t, "answered", status(first), first.Message)
	assert.Contains(t, first.Message, "Mock answer: "+prompt)
	assert.Equal(t, s.botID, first.UserId)
	posts := s.thread(t, root.Id)
	progress := ofKind(posts, "progress")
	require.NotEmpty(t, progress, "the run shows a progress post: %s", describe(posts))
	assert.Equal(t, runID(first), runID(progress[0]))
	assert.NotContains(t, actionIDs(progress[0]), "cancel", "a finished run has no Cancel button")

	// A plain reply in the bot's thread continues the same Codex session.
	const followUp = "and what about the tests (e2e-reply)"
	s.reply(t, s.alice, s.public, root.Id, followUp)
	second := s.waitOutcome(t, root.Id, 2, runTimeout)
	assert.Equal(t, "answered", status(second), second.Message)
	assert.Contains(t, second.Message, "Mock answer: "+followUp)
	assert.NotEqual(t, runID(first), runID(second))

	// Resuming sends the earlier conversation to the model: the follow-up's request carries the
	// first prompt and the first answer.
	var resumed string
	for _, body := range s.mockRequests(t) {
		if strings.Contains(body, followUp) {
			resumed = body
		}
	}
	require.NotEmpty(t, resumed, "the mock model saw no request for the reply")
	assert.Contains(t, resumed, prompt, "the reply's run resumed the thread's Codex session")
	assert.Contains(t, resumed, "Mock answer: "+prompt)
}

// screenshotPNG is a 2×2 PNG that Codex can decode.
var screenshotPNG = []byte{
	137, 80, 78, 71, 13, 10, 26, 10, 0, 0, 0, 13, 73, 72, 68, 82, 0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0, 253, 212, 154, 115, 0, 0, 0,
	17, 73, 68, 65, 84, 120, 156, 99, 248, 207, 192, 0, 68, 12, 96, 242, 63, 0, 27, 242, 3, 253, 243, 231, 75, 177, 0, 0, 0, 0, 73,
	69, 78, 68, 174, 66, 96, 130,
}

// A screenshot attached to a reply is uploaded through the REST API like a client does; the bot
// downloads it from the server and Codex sends it to the model with the follow-up.
func TestScreenshotOnAReplyReachesCodex(t *testing.T) {
	const prompt = "look at the login page (e2e-image)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
	root := s.botRoot(t, s.public, prompt)
	s.waitOutcome(t, root.Id, 1, runTimeout)

	up, _, err := s.alice.client.UploadFile(context.Background(), screenshotPNG, s.public.Id, "login.png")
	require.NoError(t, err)
	require.Len(t, up.FileInfos, 1)
	const followUp = "the button is misplaced, see the screenshot (e2e-image-reply)"
	_, _, err = s.alice.client.CreatePost(context.Background(), &model.Post{
		ChannelId: s.public.Id, RootId: root.Id, Message: followUp, FileIds: model.StringArray{up.FileInfos[0].Id},
	})
	require.NoError(t, err)
	second := s.waitOutcome(t, root.Id, 2, runTimeout)
	assert.Equal(t, "answered", status(second), second.Message)

	var seen string
	for _, body := range s.mockRequests(t) {
		if strings.Contains(body, followUp) {
			seen = body
		}
	}
	require.NotEmpty(t, seen, "the mock model saw no request for the reply")
	assert.Equal(t, 1, strings.Count(seen, `"input_image"`), "the screenshot goes with the follow-up")
	assert.Contains(t, seen, "data:image/png;base64,")
	assert.Empty(t, ofKind(s.thread(t, root.Id), "note"), "nothing was skipped")
}

func TestRefusalsCarryThePolicysReason(t *testing.T) {
	t.Run("a user not on the allowlist", func(t *testing.T) {
		resp := s.mustCommand(t, s.bob, s.public, "", "/codex please run (e2e-bob)")
		assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
		assert.Contains(t, resp.Text, "Codex did not run")
		assert.Contains(t, resp.Text, "@bob is not on the Codex allowlist")
	})
	t.Run("a channel not on the allowlist", func(t *testing.T) {
		resp := s.mustCommand(t, s.alice, s.offList, "", "/codex please run (e2e-random)")
		assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
		assert.Contains(t, resp.Text, "Codex did not run")
		assert.Contains(t, resp.Text, "Codex is not enabled in ~random")
	})
	t.Run("the private channel on the allowlist works", func(t *testing.T) {
		const prompt = "hello from the private channel (e2e-private)"
		s.mustCommand(t, s.alice, s.private, "", "/codex "+prompt)
		out := s.waitOutcome(t, s.botRoot(t, s.private, prompt).Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
	})
	// Refused prompts start no thread.
	for _, ch := range []*model.Channel{s.public, s.offList} {
		list, _, err := s.admin.client.GetPostsForChannel(context.Background(), ch.Id, 0, 100, "", false, false)
		require.NoError(t, err)
		for _, p := range list.Posts {
			assert.False(t, p.UserId == s.botID && (strings.Contains(p.Message, "e2e-bob") || strings.Contains(p.Message, "e2e-random")),
				"a refused prompt started a thread: %q", p.Message)
		}
	}
}

func TestCancelASlowRun(t *testing.T) {
	const prompt = "[[mock:slow:90]] take your time (e2e-cancel)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
	root := s.botRoot(t, s.public, prompt)
	progress := s.waitRunning(t, root.Id, 1)

	// Someone who is neither the requester nor an admin cannot cancel it, and is told why.
	bobSees := s.listen(t, s.bob)
	_, err := press(s.bob, progress, "cancel")
	require.NoError(t, err, "the press itself reaches the plugin; the refusal is an ephemeral message")
	bobSees.waitFor(t, s.public.Id, "Only @alice")
	posts := s.thread(t, root.Id)
	assert.Empty(t, ofKind(posts, "outcome"), "bob's Cancel must not stop alice's run")
	assert.Equal(t, "running", status(ofKind(posts, "progress")[0]), describe(posts))

	pressed := time.Now()
	_, err = press(s.alice, progress, "cancel")
	require.NoError(t, err)
	out := s.waitOutcome(t, root.Id, 1, 60*time.Second)
	assert.Equal(t, "cancelled", status(out), out.Message)
	assert.Less(t, time.Since(pressed), 30*time.Second, "cancel should stop the run well before the model would finish")
	final := eventually(t, 30*time.Second, "the progress post to show the run ended", func() (*model.Post, bool, string) {
		p := ofKind(s.thread(t, root.Id), "progress")[0]
		return p, status(p) != "running" && !hasAction(p, "cancel"), status(p)
	})
	assert.Equal(t, "cancelled", status(final))
}

func TestDisableAndEnableThePlugin(t *testing.T) {
	ctx := context.Background()
	before := s.waitHostPID(t)

	const prompt = "[[mock:slow:90]] still running when the plugin goes away (e2e-disable)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
	root := s.botRoot(t, s.public, prompt)
	s.waitRunning(t, root.Id, 1)

	_, err := s.admin.client.DisablePlugin(ctx, pluginID)
	require.NoError(t, err)
	eventually(t, 60*time.Second, "codex-host to stop with the plugin", func() (bool, bool, string) {
		pids := hostPIDs(s.server.PluginsDir, pluginID)
		return true, len(pids) == 0, "still running"
	})
	_, err = s.command(ctx, s.alice, s.public, "", "/codex are you there (e2e-disabled)")
	assert.Error(t, err, "/codex is unregistered while the plugin is disabled")

	_, err = s.admin.client.EnablePlugin(ctx, pluginID)
	require.NoError(t, err)
	require.NoError(t, s.waitPluginRunning(ctx))
	after := s.waitHostPID(t, before)
	assert.NotEqual(t, before, after)
	require.NoError(t, s.waitHostAnswering(ctx))

	// The run that was in flight ends visibly, with a Retry button.
	out := s.waitOutcome(t, root.Id, 1, runTimeout)
	assert.Equal(t, "interrupted", status(out), out.Message)
	assert.Contains(t, actionIDs(out), "retry")
	assert.Len(t, ofKind(s.thread(t, root.Id), "outcome"), 1, "exactly one outcome per run")

	const again = "back again (e2e-enabled)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+again)
	answered := s.waitOutcome(t, s.botRoot(t, s.public, again).Id, 1, runTimeout)
	assert.Equal(t, "answered", status(answered), answered.Message)
}

func TestHostKilledMidRunIsRestartedAndRetryWorks(t *testing.T) {
	before := s.waitHostPID(t)

	const prompt = "[[mock:slow:6]] survive a crash (e2e-kill)"
	s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
	root := s.botRoot(t, s.public, prompt)
	s.waitRunning(t, root.Id, 1)

	require.NoError(t, syscall.Kill(before, syscall.SIGKILL))
	after := s.waitHostPID(t, before)
	t.Logf("codex-host %d killed; the plugin restarted it as %d", before, after)

	out := s.waitOutcome(t, root.Id, 1, runTimeout)
	assert.Equal(t, "interrupted", status(out), out.Message)
	require.Contains(t, actionIDs(out), "retry")

	_, err := press(s.alice, out, "retry")
	require.NoError(t, err)
	retried := s.waitOutcome(t, root.Id, 2, runTimeout)
	assert.Equal(t, "answered", status(retried), retried.Message)
	assert.Contains(t, retried.Message, "Slow answer done.")
	assert.NotEqual(t, runID(out), runID(retried))
}
