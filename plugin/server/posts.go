package main

// MessageHasBeenPosted: forwards to the host the posts it may act on — replies in threads the bot
// started, posts in direct or group messages with the bot, and posts that @-mention the bot — so
// that a plain reply continues a Codex session and `@codex <prompt>` works like `/codex <prompt>`. Everything else on the server is ignored after at most one cached lookup. The
// bot's own posts and system messages are never forwarded, and neither is anything an integration
// posted (a webhook, a bot, a plugin): only people trigger runs, unless an admin lists a bot in
// AllowedBotIds. The host reads threads itself, so it still sees those posts as context.

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

func (p *Plugin) MessageHasBeenPosted(_ *plugin.Context, post *model.Post) {
	st := p.state()
	if st == nil || post.UserId == st.botUserID || post.IsSystemMessage() {
		return
	}
	switch originOf(post) {
	case originHidden:
		return
	case originBotOrPlugin:
		if !st.botAllowed(post.UserId) {
			return
		}
	}
	relevant, err := st.isForHost(post)
	if err != nil {
		p.API.LogWarn("Could not tell whether a post is meant for Codex; it was not forwarded.", "post_id", post.Id, "error", err.Error())
		return
	}
	if !relevant {
		return
	}

	user, err := st.resolver.user(post.UserId)
	if err != nil {
		p.API.LogError("Could not resolve the author of a post for Codex.", "post_id", post.Id, "error", err.Error())
		return
	}
	if user.IsBot && !st.botAllowed(user.ID) {
		return
	}
	channel, err := st.resolver.channel(post.ChannelId, "")
	if err != nil {
		p.API.LogError("Could not resolve the channel of a post for Codex.", "post_id", post.Id, "error", err.Error())
		return
	}
	fileIDs := []string(post.FileIds)
	if fileIDs == nil {
		fileIDs = []string{}
	}
	req := PostRequest{
		User:    user,
		Channel: channel,
		Post: IncomingPost{
			ID: post.Id, RootID: post.RootId, ChannelID: post.ChannelId, UserID: post.UserId,
			Message: post.Message, FileIDs: fileIDs, CreateAt: post.CreateAt,
		},
		BotCanPost: true,
	}
	if mentionsBot(post.Message) {
		if req.BotCanPost, err = st.resolver.botCanPost(post.ChannelId); err != nil {
			// The host asks for access if the post needs it; the join then says what is wrong.
			p.API.LogWarn("Could not check whether the bot may post in a channel.", "channel_id", post.ChannelId, "error", err.Error())
		}
	}
	rootID := post.RootId
	if rootID == "" {
		rootID = post.Id
	}
	host := st.conn(st.postRunner(post))
	var resp PostResponse
	err = callJSON(context.Background(), host, timeoutPost, http.MethodPost, routePosts, req, &resp)
	if err == nil && resp.NeedsBotAccess {
		// The host takes the mention as a run request: only now may the bot join the channel.
		if joinErr := st.resolver.ensureBotCanPost(post.ChannelId); joinErr != nil {
			p.API.LogWarn("The bot could not be given access to a channel for an @-mention.", "channel_id", post.ChannelId, "error", joinErr.Error())
			p.API.SendEphemeralPost(post.UserId, &model.Post{UserId: st.botUserID, ChannelId: post.ChannelId, RootId: rootID,
				Message: "Codex cannot answer here: " + joinErr.Error() + ". Your message was not run."})
			return
		}
		req.BotCanPost = true
		resp = PostResponse{}
		err = callJSON(context.Background(), host, timeoutPost, http.MethodPost, routePosts, req, &resp)
	}
	if err == nil {
		if resp.EphemeralText != "" {
			answer := &model.Post{UserId: st.botUserID, ChannelId: post.ChannelId, RootId: rootID, Message: resp.EphemeralText}
			if atts := decodeAttachments(resp.Attachments); len(atts) > 0 {
				answer.AddProp(model.PostPropsAttachments, atts)
			}
			p.API.SendEphemeralPost(post.UserId, answer)
		}
		return
	}
	he := asHostError(err)
	p.API.LogWarn("A reply for Codex could not be handed to codex-host. "+hostAdvice(he.kind, st.mode()),
		"post_id", post.Id, "user", user.Username, "error", he.Error())
	// The user expected Codex to pick this up; tell them it did not, in the same thread.
	p.API.SendEphemeralPost(post.UserId, &model.Post{
		UserId:    st.botUserID,
		ChannelId: post.ChannelId,
		RootId:    rootID,
		Message:   unavailableMessage(he, "Codex did not see your message", ""),
	})
}

// isForHost decides whether a post is one the host may act on.
func (st *activeState) isForHost(post *model.Post) (bool, error) {
	ch, err := st.resolver.rawChannel(post.ChannelId)
	if err != nil {
		return false, err
	}
	if ch.Type == model.ChannelTypeDirect || ch.Type == model.ChannelTypeGroup {
		withBot, err := st.resolver.isBotConversation(ch)
		if err != nil || withBot {
			return withBot, err
		}
	}
	if mentionsBot(post.Message) {
		return true, nil
	}
	if post.RootId == "" {
		return false, nil
	}
	return st.resolver.isBotThread(post.RootId)
}

// mentionsBot reports whether a message @-mentions the bot, as Mattermost highlights it: the name
// not followed by another character of a username (`@codex,` and `@codex.` count; `@codexbot`
// and `@codex.dev` do not).
func mentionsBot(message string) bool {
	lower := strings.ToLower(message)
	for i := 0; ; {
		j := strings.Index(lower[i:], "@"+botUsername)
		if j < 0 {
			return false
		}
		end := i + j + 1 + len(botUsername)
		if end == len(lower) || !isUsernameChar(lower, end) {
			return true
		}
		i = end
	}
}

// isUsernameChar: letters, digits, '-', '_' and a '.' that is followed by one of those.
func isUsernameChar(s string, i int) bool {
	c := s[i]
	switch {
	case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		return true
	case c == '.':
		return i+1 < len(s) && isUsernameChar(s, i+1) && s[i+1] != '.'
	}
	return false
}

// postOrigin says who made a post, as far as the server's props tell.
type postOrigin int

const (
	// originPerson: typed by the user the post names (the author may still be a bot account).
	originPerson postOrigin = iota
	// originHidden: a webhook post or one with an overridden name; who speaks is unknown (a
	// webhook's posts carry its creator's user id), so these never trigger runs.
	originHidden
	// originBotOrPlugin: posted by a bot account or a plugin under its own user id.
	originBotOrPlugin
)

// originOf reads a post's origin from the props the server sets on integration posts.
func originOf(post *model.Post) postOrigin {
	if propIsTrue(post, model.PostPropsFromWebhook) {
		return originHidden
	}
	if name, _ := post.GetProp(model.PostPropsOverrideUsername).(string); name != "" {
		return originHidden
	}
	if propIsTrue(post, model.PostPropsFromBot) || propIsTrue(post, model.PostPropsFromPlugin) {
		return originBotOrPlugin
	}
	return originPerson
}

// propIsTrue accepts the string the server stores ("true") and a JSON boolean.
func propIsTrue(post *model.Post, key string) bool {
	switch v := post.GetProp(key).(type) {
	case string:
		return v == "true"
	case bool:
		return v
	}
	return false
}

// decodeAttachments turns the host's message attachments into Mattermost's type, the one the server
// adds action cookies to when it sends an ephemeral post (so that a button on it can be clicked).
// One that does not decode is left out.
func decodeAttachments(raw []json.RawMessage) []*model.MessageAttachment {
	var atts []*model.MessageAttachment
	for _, r := range raw {
		var a model.MessageAttachment
		if json.Unmarshal(r, &a) == nil {
			atts = append(atts, &a)
		}
	}
	return atts
}
