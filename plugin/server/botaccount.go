package main

// The bot account @codex and the access token codex-host posts with. Every token the plugin
// creates is recorded in the plugin's KV store before it is used, so a token left behind by a
// crash or a failed deactivation is revoked at the next activation instead of living forever
// under the bot.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/pluginapi"
)

//go:embed assets/profile.png
var botProfileImage []byte

// kvBotTokens holds the ids of the bot access tokens this plugin created and has not yet revoked.
const kvBotTokens = "bot-access-tokens"

// ensureBot creates or finds @codex and gives it its profile picture.
func (p *Plugin) ensureBot() (string, error) {
	client := pluginapi.NewClient(p.API, p.Driver)
	botUserID, err := client.Bot.EnsureBot(
		&model.Bot{Username: botUsername, DisplayName: botDisplayName, Description: botDescription},
		pluginapi.ProfileImageBytes(botProfileImage),
	)
	if err != nil {
		return "", fmt.Errorf("creating the bot account @%s failed (if a regular user is already called %q, rename that user): %w", botUsername, botUsername, err)
	}
	return botUserID, nil
}

// newBotToken revokes the tokens earlier activations left behind, then creates the token for this
// activation and records it.
func (p *Plugin) newBotToken(botUserID string) (*model.UserAccessToken, error) {
	kept := p.revokeBotTokens(p.recordedBotTokens())
	token, appErr := p.API.CreateUserAccessToken(&model.UserAccessToken{
		UserId:      botUserID,
		Description: "codex-host: posts Codex's answers (created by the Codex for Mattermost plugin, revoked when it is disabled)",
	})
	if appErr != nil {
		_ = p.recordBotTokens(kept)
		return nil, fmt.Errorf("creating an access token for the bot @%s failed: %w", botUsername, appErr)
	}
	if err := p.recordBotTokens(append(kept, token.Id)); err != nil {
		_ = p.API.RevokeUserAccessToken(token.Id)
		return nil, fmt.Errorf("recording the bot's access token in the plugin's KV store failed (the token was revoked again): %w", err)
	}
	return token, nil
}

// dropBotToken revokes this activation's token, and any other recorded one, and forgets those
// that are gone.
func (p *Plugin) dropBotToken(tokenID string) {
	ids := p.recordedBotTokens()
	if !slices.Contains(ids, tokenID) {
		ids = append(ids, tokenID)
	}
	_ = p.recordBotTokens(p.revokeBotTokens(ids))
}

// revokeBotTokens revokes every token in ids and returns those that could not be revoked and
// still exist, to be tried again at the next activation.
func (p *Plugin) revokeBotTokens(ids []string) []string {
	var kept []string
	for _, id := range ids {
		appErr := p.API.RevokeUserAccessToken(id)
		if appErr == nil || appErr.StatusCode == http.StatusNotFound {
			continue
		}
		p.API.LogWarn("Could not revoke an access token of the bot; it is tried again at the next activation, or revoke it under the bot in System Console > Integrations > Bot Accounts.", "token_id", id, "error", appErr.Error())
		kept = append(kept, id)
	}
	return kept
}

func (p *Plugin) recordedBotTokens() []string {
	raw, appErr := p.API.KVGet(kvBotTokens)
	if appErr != nil {
		p.API.LogWarn("Could not read the bot's recorded access tokens from the KV store; tokens left by an earlier activation may stay until revoked in System Console.", "error", appErr.Error())
		return nil
	}
	var ids []string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &ids); err != nil {
			p.API.LogWarn("The bot's recorded access tokens in the KV store are unreadable; starting a new record.", "error", err.Error())
			return nil
		}
	}
	return ids
}

func (p *Plugin) recordBotTokens(ids []string) error {
	if len(ids) == 0 {
		if appErr := p.API.KVDelete(kvBotTokens); appErr != nil {
			p.API.LogWarn("Could not clear the bot's recorded access tokens in the KV store.", "error", appErr.Error())
			return appErr
		}
		return nil
	}
	raw, _ := json.Marshal(ids)
	if appErr := p.API.KVSet(kvBotTokens, raw); appErr != nil {
		p.API.LogWarn("Could not record the bot's access tokens in the KV store.", "error", appErr.Error())
		return appErr
	}
	return nil
}
