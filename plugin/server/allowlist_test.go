package main

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

var notFoundErr = model.NewAppError("Get", "not_found", nil, "", http.StatusNotFound)

func resolverFor(api *testAPI) allowlistResolver {
	return allowlistResolver{dir: api, log: api}
}

func TestAllowedUsersResolveToIDsAndUnknownNamesAdmitNobody(t *testing.T) {
	api := newTestAPI(t)
	alice := testUser(model.NewId(), "alice")
	bob := testUser(model.NewId(), "bob")
	api.On("GetUserByUsername", "alice").Return(alice, nil)
	api.On("GetUser", bob.Id).Return(bob, nil)
	api.On("GetUserByUsername", "ghost").Return(nil, notFoundErr)

	got := resolverFor(api).resolve(HostSettings{AllowedUsers: []string{"Alice", bob.Id, "*", "ghost"}})
	assert.Equal(t, []string{alice.Id, bob.Id, "*", "unresolved:ghost"}, got.AllowedUsers)
	assert.True(t, api.logged("Allowed users: `ghost` names no user, so it admits nobody"), api.allLogs())
}

// Ids never change: the host keeps comparing the id resolved at the push, so alice keeps access
// after renaming herself, and mallory, who takes the name `alice`, gets nothing until the settings
// are pushed again. An entry written as an id follows its user through any rename.
func TestARenameNeitherTakesNorGivesAccess(t *testing.T) {
	api := newTestAPI(t)
	host := startFakeHost(t, "s3cret")
	alice := testUser(model.NewId(), "alice")
	carol := testUser(model.NewId(), "carol")
	api.On("GetUserByUsername", "alice").Return(alice, nil).Once()
	api.On("GetUser", carol.Id).Return(carol, nil).Once()
	activationMocks(api, writeBundle(t, false), map[string]any{
		"hostmode": "external", "socketpath": host.socket, "hostsecret": "s3cret", "mattermosturl": "http://mm",
		"allowedusers": "alice, " + carol.Id,
	})
	p := &Plugin{}
	p.SetAPI(api)
	require.NoError(t, p.OnActivate())
	require.Len(t, host.received("PUT", routeConfig), 1)
	var doc ConfigRequest
	require.NoError(t, json.Unmarshal(host.received("PUT", routeConfig)[0].Body, &doc))
	assert.Equal(t, []string{alice.Id, carol.Id}, doc.Settings.AllowedUsers)

	// alice renames herself, mallory takes her old name, carol renames too. Nothing is pushed:
	// the host still holds alice's and carol's ids, and mallory's id is nowhere.
	mallory := testUser(model.NewId(), "alice")
	api.On("GetUserByUsername", "alice").Return(mallory, nil)
	api.On("GetUser", carol.Id).Return(testUser(carol.Id, "caroline"), nil)
	st := p.state()
	st.syncer.kick()
	host.waitFor(t, "a health check", func() bool { return len(host.received("GET", routeHealth)) >= 2 })
	assert.Len(t, host.received("PUT", routeConfig), 1, "a rename alone must not re-resolve the settings")

	// The next save re-reads the names: the entry written as an id still means carol.
	require.NoError(t, p.OnConfigurationChange())
	host.waitFor(t, "the settings to be pushed again", func() bool { return len(host.received("PUT", routeConfig)) == 2 })
	require.NoError(t, json.Unmarshal(host.received("PUT", routeConfig)[1].Body, &doc))
	assert.Equal(t, carol.Id, doc.Settings.AllowedUsers[1])
	// A name means whoever holds it at the save: the admin guide says to prefer ids, or to check
	// the list after a rename.
	assert.Equal(t, mallory.Id, doc.Settings.AllowedUsers[0])
	require.NoError(t, p.OnDeactivate())
}

func TestABareChannelNameMeansTheChannelsOfThatNameAtPushTime(t *testing.T) {
	api := newTestAPI(t)
	eng := &model.Team{Id: model.NewId(), Name: "eng"}
	ops := &model.Team{Id: model.NewId(), Name: "ops"}
	engDev := &model.Channel{Id: model.NewId(), Name: "dev", TeamId: eng.Id}
	opsDeploys := &model.Channel{Id: model.NewId(), Name: "deploys", TeamId: ops.Id}
	api.On("GetTeams").Return([]*model.Team{eng, ops}, nil).Times(2) // for `dev` and `nope`
	api.On("GetChannelByName", eng.Id, "dev", false).Return(engDev, nil).Once()
	api.On("GetChannelByName", ops.Id, "dev", false).Return(nil, notFoundErr).Once()
	api.On("GetTeamByName", "ops").Return(ops, nil)
	api.On("GetChannelByName", ops.Id, "deploys", false).Return(opsDeploys, nil)
	api.On("GetChannelByName", mock.Anything, "nope", false).Return(nil, notFoundErr)

	r := resolverFor(api)
	got := r.resolve(HostSettings{AllowedUsers: []string{"*"}, AllowedChannels: []string{"dev", "ops/~deploys", "nope"}})
	assert.Equal(t, []string{engDev.Id, opsDeploys.Id, "unresolved:nope"}, got.AllowedChannels)
	assert.True(t, api.logged("Allowed channels: `nope` names no channel in any team"), api.allLogs())

	// Later someone creates ~dev in ops: the pushed ids do not include it. The next push does,
	// as the admin guide says.
	opsDev := &model.Channel{Id: model.NewId(), Name: "dev", TeamId: ops.Id}
	api.On("GetTeams").Return([]*model.Team{eng, ops}, nil).Once()
	api.On("GetChannelByName", eng.Id, "dev", false).Return(engDev, nil).Once()
	api.On("GetChannelByName", ops.Id, "dev", false).Return(opsDev, nil).Once()
	assert.Equal(t, []string{engDev.Id, opsDev.Id}, r.resolve(HostSettings{AllowedChannels: []string{"dev"}}).AllowedChannels)
}

func TestWithAllowedTeamsABareChannelNameIsLookedUpInThoseTeamsOnly(t *testing.T) {
	api := newTestAPI(t)
	eng := &model.Team{Id: model.NewId(), Name: "eng"}
	engDev := &model.Channel{Id: model.NewId(), Name: "dev", TeamId: eng.Id}
	api.On("GetTeamByName", "eng").Return(eng, nil)
	api.On("GetTeamByName", "gone").Return(nil, notFoundErr)
	api.On("GetChannelByName", eng.Id, "dev", false).Return(engDev, nil)

	got := resolverFor(api).resolve(HostSettings{AllowedChannels: []string{"dev"}, AllowedTeams: []string{"eng", "gone"}})
	assert.Equal(t, []string{eng.Id, "unresolved:gone"}, got.AllowedTeams)
	assert.Equal(t, []string{engDev.Id}, got.AllowedChannels)
	assert.True(t, api.logged("Allowed teams: `gone` names no team"), api.allLogs())
	api.AssertNotCalled(t, "GetTeams")
}

// A list whose every entry is unknown must not fall back to "not limited": it stays non-empty.
func TestAListOfOnlyUnknownChannelsAdmitsNoChannel(t *testing.T) {
	api := newTestAPI(t)
	id := model.NewId()
	api.On("GetChannel", id).Return(nil, notFoundErr)
	api.On("GetTeams").Return([]*model.Team{}, nil)

	got := resolverFor(api).resolve(HostSettings{AllowedChannels: []string{id}})
	assert.Equal(t, []string{"unresolved:" + id}, got.AllowedChannels)
	assert.True(t, api.logged("Allowed channels: `"+id+"` names no channel"), api.allLogs())
}

func TestEveryoneIsAcceptedInAllowedUsersOnly(t *testing.T) {
	_, err := parseConfiguration(map[string]any{"AllowedUsers": "*", "AllowedChannels": "dev, *", "AllowedTeams": "*"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Allowed channels: `*` is accepted in Allowed users only")
	assert.Contains(t, err.Error(), "Allowed teams: `*` is accepted in Allowed users only")
	c, err := parseConfiguration(map[string]any{"AllowedUsers": "*", "AllowedChannels": "dev"})
	require.NoError(t, err)
	assert.Equal(t, []string{"*"}, c.AllowedUsers)
}
