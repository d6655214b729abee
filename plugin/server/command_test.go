package main

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

func TestCodexCommandAutocompleteIsValidAndComplete(t *testing.T) {
	cmd := codexCommand()
	require.NoError(t, cmd.AutocompleteData.IsValid())
	assert.Equal(t, "codex", cmd.Trigger)
	assert.True(t, cmd.AutoComplete)

	names := map[string]*model.AutocompleteData{}
	var order []string
	for _, sub := range cmd.AutocompleteData.SubCommands {
		assert.NotEmpty(t, sub.HelpText, sub.Trigger)
		assert.LessOrEqual(t, len(sub.HelpText), 60, "%s: help text should fit a phone screen", sub.Trigger)
		names[sub.Trigger] = sub
		order = append(order, sub.Trigger)
	}
	var listed []string
	for _, sc := range commands.Subcommands {
		listed = append(listed, sc.Name)
	}
	assert.Equal(t, listed, order, "autocomplete shows exactly contract/commands.json, in its order")
	project := names["project"]
	require.Len(t, project.Arguments, 1)
	require.Equal(t, model.AutocompleteArgTypeDynamicList, project.Arguments[0].Type)
	assert.Equal(t, "autocomplete/projects", project.Arguments[0].Data.(*model.AutocompleteDynamicListArg).FetchURL)
	require.Len(t, names["new"].Arguments, 1)
	assert.Equal(t, model.AutocompleteArgTypeText, names["new"].Arguments[0].Type)

	// The server makes relative dynamic-list URLs absolute under /plugins/<id>; that must land on
	// the route ServeHTTP serves.
	require.NoError(t, cmd.AutocompleteData.UpdateRelativeURLsForPluginCommands(mustURL(t, "/plugins/"+pluginID)))
	assert.Equal(t, "/plugins/"+pluginID+"/autocomplete/projects", project.Arguments[0].Data.(*model.AutocompleteDynamicListArg).FetchURL)
}

func TestCommandListArgumentsAreKnownKinds(t *testing.T) {
	for _, sc := range commands.Subcommands {
		if sc.Argument != nil {
			assert.Contains(t, []string{"text", "projects"}, sc.Argument.Kind, sc.Name)
		}
	}
}

// grammarHost answers /v1/commands the way codex-host does as far as the plugin can see: a text
// in answerOnly is answered without a run; anything else is a run request, which needs the bot's
// access to the channel first.
func grammarHost(answer string, answerOnly ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req CommandRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if !req.BotCanPost && !slices.Contains(answerOnly, req.Text) {
			_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": "", "needs_bot_access": true})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": answer})
	}
}

func commandRequests(t *testing.T, host *fakeHost) []CommandRequest {
	t.Helper()
	var out []CommandRequest
	for _, r := range host.received("POST", routeCommands) {
		var req CommandRequest
		require.NoError(t, json.Unmarshal(r.Body, &req))
		out = append(out, req)
	}
	return out
}

func TestTheBotJoinsAChannelOnlyWhenTheHostAcceptsARun(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, grammarHost("Unknown command `stauts`. Did you mean `/codex status`?", "stauts"))
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "town-square", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	notFound := model.NewAppError("Get", "not_found", nil, "", http.StatusNotFound)
	api.On("GetChannelMember", "c1", "bot1").Return(nil, notFound)

	// A misspelt subcommand is the host's to answer; the bot stays out of the channel.
	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", Command: "/codex stauts"})
	require.Nil(t, appErr)
	assert.Contains(t, resp.Text, "Unknown command")
	api.AssertNotCalled(t, "AddChannelMember", mock.Anything, mock.Anything)
	api.AssertNotCalled(t, "CreateTeamMember", mock.Anything, mock.Anything)
	reqs := commandRequests(t, host)
	require.Len(t, reqs, 1)
	assert.False(t, reqs[0].BotCanPost)

	// A run request: the host asks for access, the bot joins, the command goes again.
	api.On("GetTeamMember", "t1", "bot1").Return(&model.TeamMember{}, nil).Once()
	api.On("AddChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil).Once()
	host.handle("POST "+routeCommands, grammarHost("Queued."))
	resp, _ = p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", Command: "/codex fix the flaky test"})
	assert.Equal(t, "Queued.", resp.Text)
	reqs = commandRequests(t, host)
	require.Len(t, reqs, 3)
	assert.False(t, reqs[1].BotCanPost)
	assert.True(t, reqs[2].BotCanPost)
	assert.Equal(t, "fix the flaky test", reqs[2].Text)
	api.AssertNumberOfCalls(t, "AddChannelMember", 1)
}

func TestCommandTextKeepsThePromptAsTyped(t *testing.T) {
	assert.Equal(t, "", commandText("/codex"))
	assert.Equal(t, "", commandText("/codex   "))
	assert.Equal(t, "fix the  test", commandText("/codex fix the  test"))
	assert.Equal(t, "line one\nline two", commandText("/codex\nline one\nline two"))
	assert.Equal(t, "new do it", commandText("  /codex new do it"))
}

func TestExecuteCommandForwardsWhoAndWhere(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, grammarHost("Queued."))
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "town-square", DisplayName: "Town Square", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	// The bot is not in the channel yet: once the host accepts the prompt, it joins the team and
	// the channel, and the prompt goes again.
	notFound := model.NewAppError("Get", "not_found", nil, "", http.StatusNotFound)
	api.On("GetChannelMember", "c1", "bot1").Return(nil, notFound).Once()
	api.On("GetTeamMember", "t1", "bot1").Return(nil, notFound).Once()
	api.On("CreateTeamMember", "t1", "bot1").Return(&model.TeamMember{}, nil).Once()
	api.On("AddChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil).Once()
	// Typed in a thread of this channel that alice can read.
	api.On("GetPost", "r1").Return(&model.Post{Id: "r1", ChannelId: "c1"}, nil).Once()
	api.On("HasPermissionToChannel", "u1", "c1", model.PermissionReadChannel).Return(true).Once()

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{
		UserId: "u1", ChannelId: "c1", TeamId: "t1", RootId: "r1", TriggerId: "tr1", Command: "/codex fix the flaky login test",
	})
	require.Nil(t, appErr)
	assert.Equal(t, "Queued.", resp.Text)
	assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)

	reqs := commandRequests(t, host)
	require.Len(t, reqs, 2)
	assert.Equal(t, CommandRequest{
		User:       User{ID: "u1", Username: "alice", Roles: []string{"system_user", "system_admin"}},
		Channel:    Channel{ID: "c1", Name: "town-square", DisplayName: "Town Square", Kind: "public", TeamID: "t1", TeamName: "eng"},
		RootID:     "r1",
		TriggerID:  "tr1",
		Text:       "fix the flaky login test",
		BotCanPost: true,
	}, reqs[1])
	reqs[1].BotCanPost = false
	assert.Equal(t, reqs[1], reqs[0], "the second request differs only in bot_can_post")
}

func TestDirectMessagesUseTheCommandsTeam(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": "ok"})
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "d1").Return(&model.Channel{Id: "d1", Name: "bot1__u1", Type: model.ChannelTypeDirect}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)

	_, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "d1", TeamId: "t1", Command: "/codex hi"})
	require.Nil(t, appErr)
	var got CommandRequest
	require.NoError(t, json.Unmarshal(host.received("POST", routeCommands)[0].Body, &got))
	assert.Equal(t, "direct", got.Channel.Kind)
	assert.Equal(t, "eng", got.Channel.TeamName)
}

func TestHostUnreachableGivesAnEphemeralWithThePromptEchoed(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)
	p.state().tgt.client = newHostClient(host.socket+".missing", "secret", sameUserPeer())
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypePrivate, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil)

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", Command: "/codex run ```the``` tests"})
	require.Nil(t, appErr)
	assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
	assert.Contains(t, resp.Text, "Codex is not available right now")
	assert.Contains(t, resp.Text, "Socket path")
	assert.Contains(t, resp.Text, "````\nrun ```the``` tests\n````")
	assert.True(t, api.logged("could not be handed to codex-host"))
}

func TestHostRefusingTheSecretIsExplained(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	p := activeTestPlugin(t, api, host)
	p.state().tgt.client = newHostClient(host.socket, "wrong", sameUserPeer())
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil)

	resp, _ := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", Command: "/codex hello"})
	assert.Contains(t, resp.Text, "Host secret")
	assert.Contains(t, resp.Text, "hello")
}

func TestAPromptInADirectMessageWithoutTheBotIsRefusedWithThePromptEchoed(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, grammarHost("help text", "help"))
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "d2").Return(&model.Channel{Id: "d2", Name: "u1__u2", Type: model.ChannelTypeDirect}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "d2", TeamId: "t1", Command: "/codex fix it"})
	require.Nil(t, appErr)
	assert.Contains(t, resp.Text, "Codex cannot answer here")
	assert.Contains(t, resp.Text, "direct message with @codex")
	assert.Contains(t, resp.Text, "fix it")
	reqs := commandRequests(t, host)
	require.Len(t, reqs, 1, "the host was asked once, and said the bot must be able to post")
	assert.False(t, reqs[0].BotCanPost)

	// Help still answers there: it posts nothing.
	resp, _ = p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "d2", TeamId: "t1", Command: "/codex help"})
	assert.Equal(t, "help text", resp.Text)
}

// threadTestPlugin is an active plugin with alice in ~dev (c1), where the bot already is.
func threadTestPlugin(t *testing.T) (*Plugin, *testAPI, *fakeHost) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": "Queued."})
	})
	p := activeTestPlugin(t, api, host)
	api.On("GetUser", "u1").Return(testUser("u1", "alice"), nil)
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	return p, api, host
}

func TestACommandNamingAThreadOfAnotherChannelIsRefused(t *testing.T) {
	p, api, host := threadTestPlugin(t)
	// A crafted request: typed in ~dev, naming a thread of a private channel alice is not in.
	api.On("GetPost", "secret-root").Return(&model.Post{Id: "secret-root", ChannelId: "c-private"}, nil).Once()

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", RootId: "secret-root", Command: "/codex summarise this thread"})
	require.Nil(t, appErr)
	assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
	assert.Contains(t, resp.Text, "Codex cannot answer in this thread")
	assert.Contains(t, resp.Text, "summarise this thread")
	assert.NotContains(t, resp.Text, "c-private")
	assert.Empty(t, host.received("POST", routeCommands), "nothing is handed to the host")
	api.AssertNotCalled(t, "AddChannelMember", mock.Anything, mock.Anything)
	api.AssertNotCalled(t, "GetChannelMember", mock.Anything, mock.Anything)
	assert.True(t, api.logged("names a thread of another channel"))
	assert.True(t, api.logged("c-private"), "the admin sees where the thread really is")
}

func TestACommandNamingAMissingOrUnreadableThreadIsRefused(t *testing.T) {
	p, api, host := threadTestPlugin(t)
	api.On("GetPost", "gone").Return(nil, model.NewAppError("GetPost", "app.post.get.app_error", nil, "", http.StatusNotFound)).Once()
	api.On("GetPost", "deleted").Return(&model.Post{Id: "deleted", ChannelId: "c1", DeleteAt: 1}, nil).Once()
	api.On("GetPost", "r1").Return(&model.Post{Id: "r1", ChannelId: "c1"}, nil).Once()
	api.On("HasPermissionToChannel", "u1", "c1", model.PermissionReadChannel).Return(false).Once()

	for _, root := range []string{"gone", "deleted", "r1"} {
		resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", RootId: root, Command: "/codex cancel"})
		require.Nil(t, appErr)
		assert.Contains(t, resp.Text, "is not a thread of this channel that you can read", root)
	}
	assert.Empty(t, host.received("POST", routeCommands), "nothing is handed to the host")
	api.AssertNotCalled(t, "AddChannelMember", mock.Anything, mock.Anything)
	api.AssertNotCalled(t, "GetChannelMember", mock.Anything, mock.Anything)
}

func TestACommandTypedUnderAReplyNamesTheThreadsRoot(t *testing.T) {
	p, api, host := threadTestPlugin(t)
	api.On("GetPost", "reply1").Return(&model.Post{Id: "reply1", RootId: "root1", ChannelId: "c1"}, nil).Once()
	api.On("HasPermissionToChannel", "u1", "c1", model.PermissionReadChannel).Return(true).Once()
	api.On("GetChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil).Once()

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "u1", ChannelId: "c1", TeamId: "t1", RootId: "reply1", Command: "/codex go on"})
	require.Nil(t, appErr)
	assert.Equal(t, "Queued.", resp.Text)
	reqs := host.received("POST", routeCommands)
	require.Len(t, reqs, 1)
	var got CommandRequest
	require.NoError(t, json.Unmarshal(reqs[0].Body, &got))
	assert.Equal(t, "root1", got.RootID)
}

func TestBotAccountsCannotRunCommandsUnlessAllowed(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "secret")
	host.handle("POST "+routeCommands, func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"response_type": "ephemeral", "text": "Queued."})
	})
	p := activeTestPlugin(t, api, host)
	ci := testUser("ci", "ci-bot")
	ci.IsBot = true
	api.On("GetUser", "ci").Return(ci, nil)

	resp, appErr := p.ExecuteCommand(nil, &model.CommandArgs{UserId: "ci", ChannelId: "c1", TeamId: "t1", Command: "/codex deploy"})
	require.Nil(t, appErr)
	assert.Equal(t, model.CommandResponseTypeEphemeral, resp.ResponseType)
	assert.Contains(t, resp.Text, "@ci-bot is a bot account")
	assert.Contains(t, resp.Text, "Bots that may trigger runs")
	assert.Empty(t, host.received("POST", routeCommands), "nothing is handed to the host")
	api.AssertNotCalled(t, "GetChannel", mock.Anything)

	p.state().allowedBots = map[string]bool{"ci": true}
	api.On("GetChannel", "c1").Return(&model.Channel{Id: "c1", Name: "dev", Type: model.ChannelTypeOpen, TeamId: "t1"}, nil)
	api.On("GetTeam", "t1").Return(&model.Team{Id: "t1", Name: "eng"}, nil)
	api.On("GetChannelMember", "c1", "bot1").Return(&model.ChannelMember{}, nil)
	resp, _ = p.ExecuteCommand(nil, &model.CommandArgs{UserId: "ci", ChannelId: "c1", TeamId: "t1", Command: "/codex deploy"})
	assert.Equal(t, "Queued.", resp.Text)
	assert.Len(t, host.received("POST", routeCommands), 1)
}
