package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

func TestOnlyPostsForTheBotAreForwarded(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routePosts, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"handled":true}`))
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetChannel", "dm").Return(&model.Channel{Id: "dm", Name: "u1__bot1", Type: model.ChannelTypeDirect}, nil)
	api.On("GetChannel", "dm-other").Return(&model.Channel{Id: "dm-other", Name: "u1__u2", Type: model.ChannelTypeDirect}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetPost", "root-bot").Return(&model.Post{Id: "root-bot", UserId: "bot1"}, nil).Once()
	api.On("GetPost", "root-people").Return(&model.Post{Id: "root-people", UserId: "u2"}, nil).Once()
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)

	// Ignored: the bot's own post, a system message, top-level chatter, a thread people started,
	// a DM between people.
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p0", UserId: "bot1", ChannelId: "c1", RootId: "root-bot"})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p1", UserId: "u1", ChannelId: "c1", Type: model.PostTypeJoinChannel})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p2", UserId: "u1", ChannelId: "c1", Message: "lunch?"})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p3", UserId: "u1", ChannelId: "c1", RootId: "root-people"})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p4", UserId: "u1", ChannelId: "dm-other"})
	assert.Empty(t, host.received("POST", routePosts))

	// Forwarded: a reply in a bot thread (twice: the root lookup is cached) and a DM with the bot.
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p5", UserId: "u1", ChannelId: "c1", RootId: "root-bot", Message: "and the tests too", FileIds: []string{"f1"}, CreateAt: 42})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p6", UserId: "u1", ChannelId: "c1", RootId: "root-bot", Message: "thanks"})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p7", UserId: "u1", ChannelId: "dm", Message: "hello"})

	reqs := host.received("POST", routePosts)
	require.Len(t, reqs, 3)
	var first PostRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &first))
	assert.Equal(t, PostRequest{
		User:    User{ID: "u1", Username: "alice", Roles: []string{"system_user", "system_admin"}},
		Channel: Channel{ID: "c1", Name: "dev", Kind: "public", TeamID: "t1", TeamName: "eng"},
		Post:    IncomingPost{ID: "p5", RootID: "root-bot", ChannelID: "c1", UserID: "u1", Message: "and the tests too", FileIDs: []string{"f1"}, CreateAt: 42},
		// Replies in the bot's threads need no check: the bot posted there.
		BotCanPost: true,
	}, first)
	var dm PostRequest
	require.NoError(t, json.Unmarshal(reqs[2].Body, &dm))
	assert.Equal(t, "direct", dm.Channel.Kind)
	assert.Equal(t, []string{}, dm.Post.FileIDs)
}

func TestGroupMessagesNeedTheBotAsMember(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routePosts, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"handled":true}`)) })
	p := activeTestPlugin(t, api, host)
	api.On("GetChannel", "g1").Return(&model.Channel{Id: "g1", Name: "g1", Type: model.ChannelTypeGroup}, nil)
	api.On("GetChannel", "g2").Return(&model.Channel{Id: "g2", Name: "g2", Type: model.ChannelTypeGroup}, nil)
	api.On("GetChannelMember", "g1", "bot1").Return(&model.ChannelMember{}, nil)
	api.On("GetChannelMember", "g2", "bot1").Return(nil, model.NewAppError("GetChannelMember", "not_found", nil, "", http.StatusNotFound))
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)

	p.MessageHasBeenPosted(nil, &model.Post{Id: "p1", UserId: "u1", ChannelId: "g1", Message: "hi"})
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p2", UserId: "u1", ChannelId: "g2", Message: "hi"})
	reqs := host.received("POST", routePosts)
	require.Len(t, reqs, 1)
	var got PostRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &got))
	assert.Equal(t, "g1", got.Channel.ID)
	assert.Equal(t, "group", got.Channel.Kind)
}

func TestAReplyTheHostCannotTakeIsAnsweredInTheThread(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)
	p.state().tgt.client = newHostClient(host.socket+".missing", "secret", sameUserPeer())
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetPost", "root-bot").Return(&model.Post{Id: "root-bot", UserId: "bot1"}, nil)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("SendEphemeralPost", "u1", mock.MatchedBy(func(post *model.Post) bool {
		return post.UserId == "bot1" && post.RootId == "root-bot" && post.ChannelId == "c1"
	})).Return(&model.Post{}).Once()

	p.MessageHasBeenPosted(nil, &model.Post{Id: "p5", UserId: "u1", ChannelId: "c1", RootId: "root-bot", Message: "go on"})
}

func TestAHostRefusalOfAReplyIsShownToThePoster(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routePosts, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"handled":true,"ephemeral_text":"Codex did not run: @alice is not on the allowed users list.",` +
			`"attachments":[{"text":"","actions":[{"id":"requestaccess","name":"Request access","type":"button",` +
			`"integration":{"url":"/plugins/com.github.codex-for-mattermost/v1/actions","context":{"action":"request_access","sig":"s1"}}}]}]}`))
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetPost", "root-bot").Return(&model.Post{Id: "root-bot", UserId: "bot1"}, nil)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("SendEphemeralPost", "u1", mock.MatchedBy(func(post *model.Post) bool {
		// The Request access button goes with the refusal, in Mattermost's own attachment type:
		// the server adds the action cookie that makes a button on an ephemeral post clickable.
		atts := post.Attachments()
		return post.RootId == "root-bot" && post.ChannelId == "c1" && strings.Contains(post.Message, "not on the allowed users list") &&
			len(atts) == 1 && len(atts[0].Actions) == 1 && atts[0].Actions[0].Id == "requestaccess" &&
			atts[0].Actions[0].Integration.Context["sig"] == "s1"
	})).Return(&model.Post{}).Once()

	p.MessageHasBeenPosted(nil, &model.Post{Id: "p6", UserId: "u1", ChannelId: "c1", RootId: "root-bot", Message: "go on"})
	api.AssertExpectations(t)
}

func TestOnlyPeopleTriggerRuns(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routePosts, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"handled":true}`)) })
	p := activeTestPlugin(t, api, host)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetPost", "root-bot").Return(&model.Post{Id: "root-bot", UserId: "bot1"}, nil)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	ci := testUser("ci", "ci-bot")
	ci.IsBot = true
	api.On("GetUser", "ci").Return(ci, nil)

	reply := func(id, userID string, props model.StringInterface) *model.Post {
		post := &model.Post{Id: id, UserId: userID, ChannelId: "c1", RootId: "root-bot", Message: "run the deploy"}
		post.SetProps(props)
		return post
	}
	// A webhook's posts carry its creator's id (a person); the props tell them apart.
	p.MessageHasBeenPosted(nil, reply("w1", "u1", model.StringInterface{"from_webhook": "true"}))
	p.MessageHasBeenPosted(nil, reply("w2", "u1", model.StringInterface{"from_webhook": "true", "override_username": "alice"}))
	p.MessageHasBeenPosted(nil, reply("o1", "u1", model.StringInterface{"override_username": "alice"}))
	p.MessageHasBeenPosted(nil, reply("b1", "u1", model.StringInterface{"from_bot": "true"}))
	p.MessageHasBeenPosted(nil, reply("b2", "u1", model.StringInterface{"from_bot": true}))
	p.MessageHasBeenPosted(nil, reply("pl1", "u1", model.StringInterface{"from_plugin": "true"}))
	// A bot account's post, even without the props.
	p.MessageHasBeenPosted(nil, reply("a1", "ci", nil))
	assert.Empty(t, host.received("POST", routePosts))

	// A person's reply still goes through; override_username left empty is no override.
	p.MessageHasBeenPosted(nil, reply("h1", "u1", model.StringInterface{"override_username": "", "from_webhook": "false"}))
	reqs := host.received("POST", routePosts)
	require.Len(t, reqs, 1)
	var got PostRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &got))
	assert.Equal(t, "h1", got.Post.ID)
}

func TestAnAllowedBotTriggersRunsButNeverThroughAWebhookOrAnotherName(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routePosts, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"handled":true}`)) })
	p := activeTestPlugin(t, api, host)
	p.state().allowedBots = map[string]bool{"ci": true}
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetPost", "root-bot").Return(&model.Post{Id: "root-bot", UserId: "bot1"}, nil)
	for _, id := range []string{"ci", "other-bot"} {
		u := testUser(id, id)
		u.IsBot = true
		api.On("GetUser", id).Return(u, nil)
	}
	reply := func(id, userID string, props model.StringInterface) *model.Post {
		post := &model.Post{Id: id, UserId: userID, ChannelId: "c1", RootId: "root-bot", Message: "nightly failed"}
		post.SetProps(props)
		return post
	}

	p.MessageHasBeenPosted(nil, reply("x1", "ci", model.StringInterface{"from_webhook": "true"}))
	p.MessageHasBeenPosted(nil, reply("x2", "ci", model.StringInterface{"from_bot": "true", "override_username": "alice"}))
	p.MessageHasBeenPosted(nil, reply("x3", "other-bot", model.StringInterface{"from_bot": "true"}))
	p.MessageHasBeenPosted(nil, reply("x4", "other-bot", nil))
	assert.Empty(t, host.received("POST", routePosts))

	p.MessageHasBeenPosted(nil, reply("ok1", "ci", model.StringInterface{"from_bot": "true"}))
	p.MessageHasBeenPosted(nil, reply("ok2", "ci", model.StringInterface{"from_bot": "true", "from_plugin": "true"}))
	assert.Len(t, host.received("POST", routePosts), 2)
}

func TestMentionsOfTheBotAreFoundAsMattermostHighlightsThem(t *testing.T) {
	for msg, want := range map[string]bool{
		"@codex fix the flaky test":      true,
		"hey @codex, fix it":             true,
		"@Codex: fix it":                 true,
		"fix it @codex.":                 true,
		"(@codex) fix it":                true,
		"@codex":                         true,
		"@codexbot fix it":               false,
		"@codex.dev fix it":              false,
		"@codex_team fix it":             false,
		"@codex-x fix it":                false,
		"mail codex@example.com":         false,
		"no mention here":                false,
		"@codexy and then @codex fix it": true,
		"ask @codex.. maybe":             true,
	} {
		assert.Equal(t, want, mentionsBot(msg), msg)
	}
}

func TestAMentionJoinsTheBotOnlyWhenTheHostTakesItAsARun(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	var asked []bool
	host.handle("POST "+routePosts, func(w http.ResponseWriter, r *http.Request) {
		var req PostRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		asked = append(asked, req.BotCanPost)
		if !req.BotCanPost {
			_, _ = w.Write([]byte(`{"handled":true,"needs_bot_access":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"handled":true}`))
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	notFound := model.NewAppError("x", "x", nil, "", http.StatusNotFound)
	api.On("GetChannelMember", "c1", "bot1").Return(nil, notFound).Once()
	api.On("GetTeamMember", "t1", "bot1").Return(nil, notFound).Once()
	api.On("CreateTeamMember", "t1", "bot1").Return(&model.TeamMember{}, nil).Once()
	api.On("AddChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil).Once()

	// Chatter that only looks like a mention is not forwarded.
	p.MessageHasBeenPosted(nil, &model.Post{Id: "p1", UserId: "u1", ChannelId: "c1", Message: "ask @codexbot"})
	assert.Empty(t, host.received("POST", routePosts))

	p.MessageHasBeenPosted(nil, &model.Post{Id: "p2", UserId: "u1", ChannelId: "c1", Message: "@codex fix the flaky test"})
	assert.Equal(t, []bool{false, true}, asked, "asked without access, joined, asked again")
	api.AssertCalled(t, "AddChannelMember", "c1", "bot1")
}
