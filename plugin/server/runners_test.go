package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunnerTokensAreStoredHashedAndRevocable(t *testing.T) {
	kv := newMemKV()
	reg := newRunnerRegistry(kv)
	token, err := reg.add("build-box", "admin1")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(token, "cxr.build-box."), token)
	for key, v := range kv.m {
		assert.NotContains(t, string(v), token[len("cxr.build-box."):], "KV key %s holds the token itself", key)
	}

	name, err := reg.authenticate(token)
	require.NoError(t, err)
	assert.Equal(t, "build-box", name)

	_, err = reg.add("build-box", "admin1")
	assert.ErrorContains(t, err, "exists already", "adding again must not replace the token silently")

	for _, forged := range []string{"", "cxr.build-box.", token + "x", "cxr.other." + token[len("cxr.build-box."):], strings.Replace(token, "cxr.", "cxs.", 1)} {
		_, err := reg.authenticate(forged)
		assert.ErrorIs(t, err, errBadRunnerToken, "forged token %q", forged)
	}
	_, err = reg.add("Bad Name", "admin1")
	assert.ErrorContains(t, err, "not a runner name")

	removed, err := reg.remove("build-box")
	require.NoError(t, err)
	assert.True(t, removed)
	_, err = reg.authenticate(token)
	assert.ErrorIs(t, err, errBadRunnerToken, "a removed runner's token works no more")
}

func TestEachHostGetsOnlyItsProjects(t *testing.T) {
	projects := "demo = /srv/demo\n# a comment\nalpha = /srv/alpha ; runner=one ; sandbox=read-only\nbeta=/srv/beta;runner=two"
	doc := &ConfigRequest{MattermostURL: "http://mm", BotToken: "bot-secret", Settings: HostSettings{Projects: projects, DefaultProject: "alpha"}}

	local := docFor(doc, "")
	assert.Equal(t, "demo = /srv/demo", local.Settings.Projects)
	assert.Empty(t, local.Settings.DefaultProject, "the default project is runner one's")
	assert.Equal(t, "bot-secret", local.BotToken)

	one := docFor(doc, "one")
	assert.Equal(t, "alpha = /srv/alpha ; runner=one ; sandbox=read-only", one.Settings.Projects)
	assert.Equal(t, "alpha", one.Settings.DefaultProject)
	assert.Empty(t, one.BotToken, "a runner never gets the bot's token")
	assert.Empty(t, one.MattermostURL)
	assert.Equal(t, "bot-secret", doc.BotToken, "the shared document is not changed")

	assert.Equal(t, "beta=/srv/beta;runner=two", docFor(doc, "two").Settings.Projects)
	assert.Empty(t, docFor(doc, "three").Settings.Projects)
}

func TestCommandsAreRoutedByProjectThreadAndChannel(t *testing.T) {
	r := router{kv: newMemKV()}
	projects := "demo = /srv/demo\nalpha = /srv/alpha ; runner=one\nbeta = /srv/beta ; runner=two"

	assert.Equal(t, "", r.forCommand(projects, "demo", "ch1", "", "fix it"), "default project demo is local")
	assert.Equal(t, "one", r.forCommand(projects, "alpha", "ch1", "", "fix it"), "default project alpha is runner one's")
	assert.Equal(t, "two", r.forCommand(projects, "demo", "ch1", "", "project beta"), "picking a project goes to its runner")
	assert.Equal(t, "two", r.forCommand(projects, "demo", "ch1", "", "fix it"), "and the channel follows it")
	assert.Equal(t, "", r.forCommand(projects, "demo", "ch2", "", "fix it"), "another channel does not")

	r.recordThread("root1", "one")
	assert.Equal(t, "one", r.forCommand(projects, "demo", "ch1", "root1", "fix it"), "a thread stays with its runner")
	assert.Equal(t, "", r.forCommand(projects, "demo", "ch1", "", "project demo"))
	assert.Equal(t, "", r.forCommand(projects, "demo", "ch1", "", "fix it"), "picking a local project routes the channel back")
	assert.Equal(t, "", r.forCommand("demo = /srv/demo", "demo", "ch1", "root1", "fix it"), "no runner configured: everything is local")
}

func TestACallToAnOfflineRunnerFailsAtOnceNamingIt(t *testing.T) {
	hub := newRunnerHub()
	start := time.Now()
	_, err := runnerConn{hub: hub, name: "one"}.call(context.Background(), time.Minute, http.MethodPost, routeCommands, map[string]string{})
	require.Error(t, err)
	assert.Less(t, time.Since(start), time.Second)
	he := asHostError(err)
	assert.Equal(t, runnerOffline, he.kind)
	msg := unavailableMessage(he, "Your prompt was not run", "fix it")
	assert.Contains(t, msg, "runner one is offline")
	assert.Contains(t, msg, "fix it", "the prompt is given back")
}

func TestEnvelopesGoToTheirRunnerAndOnlyItsAnswersCount(t *testing.T) {
	hub := newRunnerHub()
	polled := make(chan []envelope, 1)
	go func() { polled <- hub.poll(context.Background(), "one", pollRequest{Version: "1"}) }()
	eventuallyTrue(t, func() bool { ok, _ := hub.online("one"); return ok })

	type result struct {
		raw []byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		raw, err := runnerConn{hub: hub, name: "one"}.call(context.Background(), 5*time.Second, http.MethodPost, routeCommands, map[string]string{"text": "hi"})
		res <- result{raw, err}
	}()
	envs := <-polled
	require.Len(t, envs, 1)
	assert.Equal(t, routeCommands, envs[0].Path)
	assert.JSONEq(t, `{"text":"hi"}`, string(envs[0].Body))

	assert.False(t, hub.answer("two", runnerAnswer{ID: envs[0].ID, Status: 200, Body: json.RawMessage(`{"text":"forged"}`)}), "another runner cannot answer it")
	assert.True(t, hub.answer("one", runnerAnswer{ID: envs[0].ID, Status: 200, Body: json.RawMessage(`{"text":"ok"}`)}))
	got := <-res
	require.NoError(t, got.err)
	assert.JSONEq(t, `{"text":"ok"}`, string(got.raw))
	assert.False(t, hub.answer("one", runnerAnswer{ID: envs[0].ID, Status: 200}), "an answer counts once")
}

func eventuallyTrue(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The runner routes refuse requests without a valid runner token, and the relay refuses posts
// in channels the runner was not given work in.
func TestRunnerRoutesAuthenticateAndTheRelayIsScoped(t *testing.T) {
	api := newTestAPI(t)
	p := activeTestPlugin(t, api, startFakeHost(t, "runner-test-secret-0123456789"))
	st := p.state()
	token, err := st.runners.add("one", "admin1")
	require.NoError(t, err)

	do := func(path, tok, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewBufferString(body))
		if tok != "" {
			req.Header.Set(headerRunnerToken, tok)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(nil, w, req)
		return w
	}
	assert.Equal(t, http.StatusUnauthorized, do("/runner/v1/poll", "", `{}`).Code)
	assert.Equal(t, http.StatusUnauthorized, do("/runner/v1/poll", "Bearer "+token, `{}`).Code)
	assert.Equal(t, http.StatusUnauthorized, do("/runner/v1/answer", token+"x", `{"id":"x"}`).Code)
	assert.Equal(t, http.StatusNotFound, do("/runner/v1/answer", token, `{"id":"nothing-waits"}`).Code)

	post := `{"channel_id":"` + model.NewId() + `","message":"hello"}`
	w := do(relayPrefix+"/api/v4/posts", token, post)
	assert.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
	assert.Contains(t, w.Body.String(), "channels it was given work in")
	w = do(relayPrefix+"/api/v4/users/me/tokens", token, `{}`)
	assert.Equal(t, http.StatusForbidden, w.Code, "calls codex-host never makes are refused")
	assert.True(t, api.logged("Refused a runner's Mattermost call"))

	// In a channel it was given work in, the post is made as the bot, and its thread remembered.
	var gotAuth, gotBody string
	mm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(r.Body)
		gotBody = b.String()
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"id":"post1post1post1post1post1po","channel_id":"ch","root_id":""}`))
	}))
	defer mm.Close()
	st.tgt.doc = &ConfigRequest{MattermostURL: mm.URL}
	channel := model.NewId()
	st.route.allow("one", channel)
	w = do(relayPrefix+"/api/v4/posts", token, `{"channel_id":"`+channel+`","message":"hello"}`)
	assert.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	assert.Equal(t, "Bearer bot-token", gotAuth)
	assert.Contains(t, gotBody, "hello")
	assert.Equal(t, "one", st.route.threadRunner("post1post1post1post1post1po"), "replies in the new thread go back to runner one")
	assert.False(t, st.route.allowed("two", channel), "the scope is per runner")

	// A runner cannot take over a thread in a channel it shares: not another runner's, not one the
	// local host started, and it edits only its own posts.
	tokenTwo, err := st.runners.add("two", "admin1")
	require.NoError(t, err)
	st.route.allow("two", channel)
	localRoot := &model.Post{Id: model.NewId(), ChannelId: channel, UserId: "bot1"}
	oneRoot := &model.Post{Id: "post1post1post1post1post1po", ChannelId: channel, UserId: "bot1"}
	api.On("GetPost", localRoot.Id).Return(localRoot, nil)
	api.On("GetPost", oneRoot.Id).Return(oneRoot, nil)
	for _, root := range []string{oneRoot.Id, localRoot.Id} {
		w = do(relayPrefix+"/api/v4/posts", tokenTwo, `{"channel_id":"`+channel+`","root_id":"`+root+`","message":"mine now"}`)
		assert.Equal(t, http.StatusForbidden, w.Code, w.Body.String())
		assert.Contains(t, w.Body.String(), "belongs to another Codex host")
	}
	assert.Equal(t, "one", st.route.threadRunner(oneRoot.Id))
	req := httptest.NewRequest(http.MethodPut, relayPrefix+"/api/v4/posts/"+localRoot.Id+"/patch", bytes.NewBufferString(`{"message":"edited"}`))
	req.Header.Set(headerRunnerToken, tokenTwo)
	w = httptest.NewRecorder()
	p.ServeHTTP(nil, w, req)
	assert.Equal(t, http.StatusForbidden, w.Code, "a runner edits only posts of its own threads")
}

// Two plugin instances sharing one KV store and passing cluster events, as two app nodes of a
// Mattermost cluster do (a real cluster needs a licence): work received by one node reaches the
// runner polling the other, and the answer comes back to the caller.
func TestWorkReachesARunnerPollingAnotherNode(t *testing.T) {
	kv := newMemKV()
	nodes := make([]*runnerHub, 2)
	links := make([]*clusterLink, 2)
	for i := range nodes {
		nodes[i] = newRunnerHub()
	}
	for i := range nodes {
		other := 1 - i
		links[i] = newClusterLink(nodes[i], kv, func(ev model.PluginClusterEvent) error {
			go links[other].receive(ev) // the server delivers on its own goroutine
			return nil
		})
	}
	polled := make(chan []envelope, 1)
	go func() { polled <- nodes[1].poll(context.Background(), "one", pollRequest{}) }()
	eventuallyTrue(t, func() bool { ok, _ := nodes[1].online("one"); return ok })

	local, _ := nodes[0].online("one")
	assert.False(t, local, "the runner polls node 1, not node 0")
	elsewhere, _ := links[0].seenElsewhere("one", time.Time{})
	assert.True(t, elsewhere)

	res := make(chan error, 1)
	var raw []byte
	go func() {
		var err error
		raw, err = runnerConn{hub: nodes[0], name: "one"}.call(context.Background(), 5*time.Second, http.MethodPost, routePosts, map[string]string{"m": "hi"})
		res <- err
	}()
	envs := <-polled
	require.Len(t, envs, 1, "the envelope crossed to node 1's mailbox")
	assert.Equal(t, routePosts, envs[0].Path)
	assert.False(t, nodes[1].answer("two", runnerAnswer{ID: envs[0].ID, Status: 200}), "only runner one answers it")
	assert.True(t, nodes[1].answer("one", runnerAnswer{ID: envs[0].ID, Status: 200, Body: json.RawMessage(`{"ok":true}`)}))
	require.NoError(t, <-res)
	assert.JSONEq(t, `{"ok":true}`, string(raw))

	// Not polling anywhere: still "offline", on both nodes.
	_, err := runnerConn{hub: nodes[0], name: "two"}.call(context.Background(), time.Second, http.MethodPost, routePosts, nil)
	assert.Equal(t, runnerOffline, asHostError(err).kind)
}

// Each host knows only its own projects; /codex projects and the autocomplete add the others from
// the settings, saying where each runs and whether its runner is online.
func TestProjectsOnOtherHostsAreListed(t *testing.T) {
	hub := newRunnerHub()
	st := &activeState{hub: hub, projects: "demo = /srv/demo\nalpha = /srv/alpha ; runner=one\nbeta = /srv/beta ; runner=two"}
	hub.mu.Lock()
	hub.box("one").lastPoll = time.Now()
	hub.mu.Unlock()

	local := st.elsewhere("")
	require.Len(t, local, 2)
	assert.Equal(t, AutocompleteItem{Item: "alpha", Hint: "on runner one", HelpText: "served by runner one (online)"}, local[0])
	assert.Equal(t, AutocompleteItem{Item: "beta", Hint: "on runner two", HelpText: "served by runner two (offline)"}, local[1])
	assert.Equal(t, "\n\nOn other hosts:\n- `beta`: runner two (offline)\n- `demo`: the server's own codex-host", st.projectsElsewhere("one"))

	st.projects = "demo = /srv/demo"
	assert.Empty(t, st.elsewhere(""), "no runners: nothing is added")
	assert.Empty(t, st.projectsElsewhere(""))
}
