package e2e

// What a client does and sees: slash commands, replies, button presses, threads read back. The
// bot's posts are told apart by props.codex_kind (root, progress, answer_part, outcome, approval)
// and props.codex_status, as docs/socket-contract.md describes them.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/require"
)

// command runs a slash command as the client does (POST /api/v4/commands/execute); rootID
// non-empty runs it inside that thread.
func (s *suite) command(ctx context.Context, a *actor, ch *model.Channel, rootID, text string) (*model.CommandResponse, error) {
	args := model.CommandArgs{ChannelId: ch.Id, TeamId: ch.TeamId, RootId: rootID, Command: text}
	resp, err := a.client.DoAPIPostJSON(ctx, "/commands/execute", args)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cr model.CommandResponse
	if err := json.NewDecoder(resp.Body).Decode(&cr); err != nil {
		return nil, fmt.Errorf("decoding the command response: %w", err)
	}
	return &cr, nil
}

func (s *suite) mustCommand(t *testing.T, a *actor, ch *model.Channel, rootID, text string) *model.CommandResponse {
	t.Helper()
	resp, err := s.command(context.Background(), a, ch, rootID, text)
	require.NoError(t, err, "%s as @%s", text, a.user.Username)
	t.Logf("%s as @%s -> %s %q", text, a.user.Username, resp.ResponseType, resp.Text)
	require.NotContains(t, resp.Text, "not available right now", "the plugin could not reach codex-host")
	return resp
}

// reply posts a plain message in a thread, as a user typing in the thread does.
func (s *suite) reply(t *testing.T, a *actor, ch *model.Channel, rootID, message string) *model.Post {
	t.Helper()
	p, _, err := a.client.CreatePost(context.Background(), &model.Post{ChannelId: ch.Id, RootId: rootID, Message: message})
	require.NoError(t, err)
	return p
}

// press clicks a message-attachment button (POST /api/v4/posts/{id}/actions/{action_id}).
func press(a *actor, post *model.Post, actionID string) (*model.Response, error) {
	return a.client.DoPostAction(context.Background(), post.Id, actionID)
}

// eventually polls f until it reports done or timeout passes; the server gives no other signal
// a REST client could wait on.
func eventually[T any](t *testing.T, timeout time.Duration, what string, f func() (T, bool, string)) T {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		v, done, state := f()
		if done {
			return v
		}
		last = state
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out after "+timeout.String()+" waiting for "+what, "last seen: %s", last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func kind(p *model.Post) string   { v, _ := p.GetProp("codex_kind").(string); return v }
func status(p *model.Post) string { v, _ := p.GetProp("codex_status").(string); return v }
func runID(p *model.Post) string  { v, _ := p.GetProp("codex_run_id").(string); return v }

// actionIDs lists the ids of the buttons on a post.
func actionIDs(p *model.Post) []string {
	var ids []string
	for _, a := range p.Attachments() {
		for _, act := range a.Actions {
			ids = append(ids, act.Id)
		}
	}
	return ids
}

func hasAction(p *model.Post, id string) bool {
	for _, a := range actionIDs(p) {
		if a == id {
			return true
		}
	}
	return false
}

// botRoot waits for the root post of the thread the bot started for prompt in ch.
func (s *suite) botRoot(t *testing.T, ch *model.Channel, prompt string) *model.Post {
	t.Helper()
	return eventually(t, 60*time.Second, "the bot's thread for "+prompt, func() (*model.Post, bool, string) {
		list, _, err := s.admin.client.GetPostsForChannel(context.Background(), ch.Id, 0, 100, "", false, false)
		if err != nil {
			return nil, false, err.Error()
		}
		for _, p := range list.Posts {
			if p.UserId == s.botID && kind(p) == "root" && strings.Contains(p.Message, prompt) {
				return p, true, ""
			}
		}
		return nil, false, fmt.Sprintf("%d posts in ~%s, none the bot's root for this prompt; codex-host's last warnings:%s", len(list.Posts), ch.Name, s.hostWarnings(3))
	})
}

// thread reads a thread as a client does, oldest post first.
func (s *suite) thread(t *testing.T, rootID string) []*model.Post {
	t.Helper()
	list, _, err := s.admin.client.GetPostThread(context.Background(), rootID, "", false)
	require.NoError(t, err)
	posts := make([]*model.Post, 0, len(list.Posts))
	for _, p := range list.Posts {
		posts = append(posts, p)
	}
	sort.Slice(posts, func(i, j int) bool { return posts[i].CreateAt < posts[j].CreateAt })
	return posts
}

func ofKind(posts []*model.Post, k string) []*model.Post {
	var out []*model.Post
	for _, p := range posts {
		if kind(p) == k {
			out = append(out, p)
		}
	}
	return out
}

func describe(posts []*model.Post) string {
	var b strings.Builder
	for _, p := range posts {
		fmt.Fprintf(&b, "\n  [%s/%s %v] %.120q", kind(p), status(p), actionIDs(p), p.Message)
	}
	return b.String()
}

// waitOutcome waits until the thread has n outcome posts and returns the n-th.
func (s *suite) waitOutcome(t *testing.T, rootID string, n int, timeout time.Duration) *model.Post {
	t.Helper()
	return eventually(t, timeout, fmt.Sprintf("outcome #%d in the thread", n), func() (*model.Post, bool, string) {
		posts := s.thread(t, rootID)
		outs := ofKind(posts, "outcome")
		if len(outs) >= n {
			return outs[n-1], true, ""
		}
		return nil, false, describe(posts) + "\ncodex-host's last warnings:" + s.hostWarnings(3)
	})
}

// hostWarnings quotes the last n warnings and errors codex-host wrote to the server log.
func (s *suite) hostWarnings(n int) string {
	var lines []string
	for _, l := range serverLogLines(s.server.LogDir, `"msg":"codex-host: `) {
		if strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return " none"
	}
	return "\n  " + strings.Join(lines, "\n  ")
}

// waitRunning waits for the thread's progress post of run n (1-based) to show a running run with
// its Cancel button.
func (s *suite) waitRunning(t *testing.T, rootID string, n int) *model.Post {
	t.Helper()
	return eventually(t, 60*time.Second, "a running progress post with Cancel", func() (*model.Post, bool, string) {
		posts := s.thread(t, rootID)
		progress := ofKind(posts, "progress")
		if len(progress) >= n && status(progress[n-1]) == "running" && hasAction(progress[n-1], "cancel") {
			return progress[n-1], true, ""
		}
		return nil, false, describe(posts)
	})
}

// mockRequests lists the request bodies the mock model received.
func (s *suite) mockRequests(t *testing.T) []string {
	t.Helper()
	resp, err := http.Get("http://" + s.modelAddr + "/_mock/requests")
	require.NoError(t, err)
	defer resp.Body.Close()
	var reqs []json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&reqs))
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = string(r)
	}
	return out
}

// waitHostPID waits until exactly one managed codex-host runs that is not one of before.
func (s *suite) waitHostPID(t *testing.T, before ...int) int {
	t.Helper()
	return eventually(t, 60*time.Second, "a new codex-host process", func() (int, bool, string) {
		pids := hostPIDs(s.server.PluginsDir, pluginID)
		if len(pids) == 1 {
			for _, b := range before {
				if pids[0] == b {
					return 0, false, fmt.Sprintf("still the old pid %d", b)
				}
			}
			return pids[0], true, ""
		}
		return 0, false, fmt.Sprintf("codex-host pids %v", pids)
	})
}

// inbox collects the ephemeral posts one user's client receives. Mattermost delivers them only
// over the websocket (refusals of commands come back in the command response instead).
type inbox struct {
	mu    sync.Mutex
	posts []*model.Post
}

// listen connects a websocket as a and collects its ephemeral posts until the test ends.
func (s *suite) listen(t *testing.T, a *actor) *inbox {
	t.Helper()
	ws, err := model.NewWebSocketClient4("ws"+strings.TrimPrefix(s.server.URL, "http"), a.client.AuthToken)
	require.NoError(t, err)
	in := &inbox{}
	done := make(chan struct{})
	ws.Listen()
	go func() {
		for {
			select {
			case <-ws.PingTimeoutChannel:
			case _, ok := <-ws.ResponseChannel:
				if !ok {
					return
				}
			case <-done:
				return
			}
		}
	}()
	hello := make(chan struct{})
	go func() {
		for ev := range ws.EventChannel {
			if ev.EventType() == model.WebsocketEventHello {
				close(hello)
			}
			if ev.EventType() != model.WebsocketEventEphemeralMessage {
				continue
			}
			raw, _ := ev.GetData()["post"].(string)
			var p model.Post
			if json.Unmarshal([]byte(raw), &p) == nil {
				in.mu.Lock()
				in.posts = append(in.posts, &p)
				in.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done); ws.Close() })
	// The server says hello once the connection is registered for events.
	select {
	case <-hello:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the websocket got no hello from the server")
	}
	return in
}

// waitFor waits for an ephemeral post in channelID whose message contains substr.
func (in *inbox) waitFor(t *testing.T, channelID, substr string) *model.Post {
	t.Helper()
	return in.waitForIn(t, channelID, "", substr)
}

// waitForIn is waitFor in the thread of rootID ("": anywhere in the channel).
func (in *inbox) waitForIn(t *testing.T, channelID, rootID, substr string) *model.Post {
	t.Helper()
	return eventually(t, 30*time.Second, fmt.Sprintf("an ephemeral message containing %q", substr), func() (*model.Post, bool, string) {
		in.mu.Lock()
		defer in.mu.Unlock()
		var seen []string
		for _, p := range in.posts {
			if p.ChannelId == channelID && (rootID == "" || p.RootId == rootID) && strings.Contains(p.Message, substr) {
				return p, true, ""
			}
			seen = append(seen, p.Message)
		}
		return nil, false, fmt.Sprintf("%q", seen)
	})
}
