package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"net/http"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
)

func recorded(ids ...string) []byte {
	raw, _ := json.Marshal(ids)
	return raw
}

func TestActivationRevokesTokensEarlierActivationsLeftBehind(t *testing.T) {
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("KVGet", kvBotTokens).Return(recorded("crashed", "gone", "stuck"), nil).Once()
	api.On("RevokeUserAccessToken", "crashed").Return(nil).Once()
	api.On("RevokeUserAccessToken", "gone").Return(model.NewAppError("GetUserAccessToken", "x", nil, "", http.StatusNotFound)).Once()
	api.On("RevokeUserAccessToken", "stuck").Return(model.NewAppError("RevokeUserAccessToken", "x", nil, "", http.StatusInternalServerError)).Once()
	api.On("CreateUserAccessToken", mock.MatchedBy(func(tok *model.UserAccessToken) bool { return tok.UserId == "bot1" })).
		Return(&model.UserAccessToken{Id: "fresh", Token: "secret", UserId: "bot1"}, nil).Once()
	// The token that could not be revoked stays recorded next to the new one.
	api.On("KVSet", kvBotTokens, recorded("stuck", "fresh")).Return(nil).Once()

	tok, err := p.newBotToken("bot1")
	require.NoError(t, err)
	assert.Equal(t, "fresh", tok.Id)
	assert.True(t, api.logged("token_idstuck"), api.allLogs())
	assert.False(t, api.logged("secret"), "a token must never be logged")
}

func TestATokenThatCannotBeRecordedIsNotUsed(t *testing.T) {
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("KVGet", kvBotTokens).Return(nil, nil).Once()
	api.On("CreateUserAccessToken", mock.Anything).Return(&model.UserAccessToken{Id: "fresh", Token: "secret", UserId: "bot1"}, nil).Once()
	api.On("KVSet", kvBotTokens, recorded("fresh")).Return(model.NewAppError("KVSet", "x", nil, "", http.StatusInternalServerError)).Once()
	api.On("RevokeUserAccessToken", "fresh").Return(nil).Once()

	_, err := p.newBotToken("bot1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KV store")
}

func TestDeactivationRevokesAndForgetsTheToken(t *testing.T) {
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("KVGet", kvBotTokens).Return(recorded("current"), nil).Once()
	api.On("RevokeUserAccessToken", "current").Return(nil).Once()
	api.On("KVDelete", kvBotTokens).Return(nil).Once()
	p.dropBotToken("current")

	// A token the record lost (an unreadable record) is still revoked.
	api.On("KVGet", kvBotTokens).Return([]byte("{not json"), nil).Once()
	api.On("RevokeUserAccessToken", "other").Return(nil).Once()
	api.On("KVDelete", kvBotTokens).Return(nil).Once()
	p.dropBotToken("other")
	assert.True(t, api.logged("unreadable"), api.allLogs())
}

func TestTheBotGetsItsProfilePicture(t *testing.T) {
	img, err := png.Decode(bytes.NewReader(botProfileImage))
	require.NoError(t, err, "assets/profile.png must be a PNG")
	assert.GreaterOrEqual(t, img.Bounds().Dx(), 128)

	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("GetServerVersion").Return(model.CurrentVersion)
	api.On("KVSetWithOptions", mock.Anything, mock.Anything, mock.Anything).Return(true, nil)
	api.On("EnsureBotUser", mock.MatchedBy(func(b *model.Bot) bool { return b.Username == botUsername })).Return("bot1", nil).Once()
	api.On("SetProfileImage", "bot1", botProfileImage).Return(nil).Once()
	id, err := p.ensureBot()
	require.NoError(t, err)
	assert.Equal(t, "bot1", id)
}
