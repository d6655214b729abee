package main

// Identity: who is asking and where. Resolves Mattermost user, channel and team ids into the
// contract's User and Channel, and answers the two questions MessageHasBeenPosted asks for every
// post on the server (is this a DM or group message with the bot? was this thread started by the
// bot?) from small caches, so that ordinary chatter costs at most one cached lookup.

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// identityAPI is the part of plugin.API identity needs.
type identityAPI interface {
	GetUser(userID string) (*model.User, *model.AppError)
	GetChannel(channelID string) (*model.Channel, *model.AppError)
	GetTeam(teamID string) (*model.Team, *model.AppError)
	GetPost(postID string) (*model.Post, *model.AppError)
	HasPermissionToChannel(userID, channelID string, permission *model.Permission) bool
	GetChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError)
	GetTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError)
	CreateTeamMember(teamID, userID string) (*model.TeamMember, *model.AppError)
	AddChannelMember(channelID, userID string) (*model.ChannelMember, *model.AppError)
}

func channelKind(t model.ChannelType) string {
	switch t {
	case model.ChannelTypeOpen:
		return kindPublic
	case model.ChannelTypePrivate:
		return kindPrivate
	case model.ChannelTypeDirect:
		return kindDirect
	case model.ChannelTypeGroup:
		return kindGroup
	default:
		return strings.ToLower(string(t))
	}
}

func contractUser(u *model.User) User {
	return User{ID: u.Id, Username: u.Username, Roles: strings.Fields(u.Roles), IsBot: u.IsBot}
}

// resolver turns ids into contract shapes. Channel and thread facts are cached because
// MessageHasBeenPosted asks about every post on the server.
type resolver struct {
	api       identityAPI
	botUserID string
	channels  *ttlCache[*model.Channel]
	teams     *ttlCache[string] // team id -> team name
	botThread *ttlCache[bool]   // root post id -> started by the bot
	botMember *ttlCache[bool]   // group channel id -> the bot is a member
	botJoined *ttlCache[bool]   // channel id -> the bot may post there (joined or already in it)
}

func newResolver(api identityAPI, botUserID string) *resolver {
	return &resolver{
		api:       api,
		botUserID: botUserID,
		channels:  newTTLCache[*model.Channel](5*time.Minute, 10000),
		teams:     newTTLCache[string](5*time.Minute, 1000),
		botThread: newTTLCache[bool](time.Hour, 20000),
		botMember: newTTLCache[bool](time.Minute, 10000),
		botJoined: newTTLCache[bool](10*time.Minute, 10000),
	}
}

func (r *resolver) user(userID string) (User, error) {
	u, appErr := r.api.GetUser(userID)
	if appErr != nil {
		return User{}, fmt.Errorf("looking up user %s: %w", userID, appErr)
	}
	return contractUser(u), nil
}

func (r *resolver) rawChannel(channelID string) (*model.Channel, error) {
	if ch, ok := r.channels.get(channelID); ok {
		return ch, nil
	}
	ch, appErr := r.api.GetChannel(channelID)
	if appErr != nil {
		return nil, fmt.Errorf("looking up channel %s: %w", channelID, appErr)
	}
	r.channels.put(channelID, ch)
	return ch, nil
}

// channel resolves a channel with its kind and team. Direct and group channels belong to no
// team; for them fallbackTeamID (the team the user was in when typing a command) is used.
func (r *resolver) channel(channelID, fallbackTeamID string) (Channel, error) {
	ch, err := r.rawChannel(channelID)
	if err != nil {
		return Channel{}, err
	}
	out := Channel{ID: ch.Id, Name: ch.Name, DisplayName: ch.DisplayName, Kind: channelKind(ch.Type), TeamID: ch.TeamId}
	if out.TeamID == "" {
		out.TeamID = fallbackTeamID
	}
	if out.TeamID != "" {
		name, ok := r.teams.get(out.TeamID)
		if !ok {
			team, appErr := r.api.GetTeam(out.TeamID)
			if appErr != nil {
				return Channel{}, fmt.Errorf("looking up team %s: %w", out.TeamID, appErr)
			}
			name = team.Name
			r.teams.put(out.TeamID, name)
		}
		out.TeamName = name
	}
	return out, nil
}

// errNotWithBot: a direct or group message the bot is not part of; it cannot be added to one.
var errNotWithBot = errors.New("this is a direct or group message without @codex, and the bot cannot join it; use /codex in a channel or in a direct message with @codex")

// botCanPost reports whether the bot may already post in a channel, changing nothing: it is a
// member of the channel, or the channel is a direct or group message that includes it.
func (r *resolver) botCanPost(channelID string) (bool, error) {
	if ok, _ := r.botJoined.get(channelID); ok {
		return true, nil
	}
	ch, err := r.rawChannel(channelID)
	if err != nil {
		return false, err
	}
	switch ch.Type {
	case model.ChannelTypeDirect, model.ChannelTypeGroup:
		member, err := r.isBotConversation(ch)
		if err != nil || !member {
			return false, err
		}
	default:
		if _, appErr := r.api.GetChannelMember(ch.Id, r.botUserID); appErr != nil {
			if appErr.StatusCode == http.StatusNotFound {
				return false, nil
			}
			return false, fmt.Errorf("looking up @codex in ~%s: %w", ch.Name, appErr)
		}
	}
	r.botJoined.put(channelID, true)
	return true, nil
}

// ensureBotCanPost gives the bot access to a channel where botCanPost said it has none, since
// codex-host posts as the bot through the REST API: in public and private channels it joins the
// team and the channel (a plugin may add members to private channels too); direct and group
// messages must include it already. Called only once the host has accepted a run request there.
func (r *resolver) ensureBotCanPost(channelID string) error {
	if ok, _ := r.botJoined.get(channelID); ok {
		return nil
	}
	ch, err := r.rawChannel(channelID)
	if err != nil {
		return err
	}
	switch ch.Type {
	case model.ChannelTypeDirect, model.ChannelTypeGroup:
		member, err := r.isBotConversation(ch)
		if err != nil {
			return err
		}
		if !member {
			return errNotWithBot
		}
	default:
		if _, appErr := r.api.GetTeamMember(ch.TeamId, r.botUserID); appErr != nil {
			if _, appErr := r.api.CreateTeamMember(ch.TeamId, r.botUserID); appErr != nil {
				return fmt.Errorf("adding @codex to the team: %w", appErr)
			}
		}
		if _, appErr := r.api.AddChannelMember(ch.Id, r.botUserID); appErr != nil {
			return fmt.Errorf("adding @codex to ~%s: %w", ch.Name, appErr)
		}
	}
	r.botJoined.put(channelID, true)
	return nil
}

// errThreadNotHere: a command named a thread that is not one of its channel's threads, or one
// its user may not read. Missing, elsewhere and unreadable are one answer, so that the reply
// tells nothing about posts the user cannot see.
var errThreadNotHere = errors.New("the thread this command names is not a thread of this channel that you can read")

// threadRoot returns the root of the thread a command was typed in, from the command's root id.
// Mattermost does not check that CommandArgs.RootId belongs to the command's channel, so any
// client can name any post: it must exist, be in channelID, and the user must be able to read
// that channel. A reply's id is taken as naming its thread, whose root is the reply's root.
// The second result is the channel the named post is really in, for the log.
func (r *resolver) threadRoot(userID, channelID, postID string) (string, string, error) {
	post, appErr := r.api.GetPost(postID)
	if appErr != nil {
		if appErr.StatusCode == 404 {
			return "", "", errThreadNotHere
		}
		return "", "", fmt.Errorf("looking up post %s: %w", postID, appErr)
	}
	if post.DeleteAt != 0 || post.ChannelId != channelID {
		return "", post.ChannelId, errThreadNotHere
	}
	if !r.api.HasPermissionToChannel(userID, channelID, model.PermissionReadChannel) {
		return "", post.ChannelId, errThreadNotHere
	}
	if post.RootId != "" {
		return post.RootId, post.ChannelId, nil
	}
	return post.Id, post.ChannelId, nil
}

// isBotConversation reports whether a channel is a direct or group message the bot is part of.
func (r *resolver) isBotConversation(ch *model.Channel) (bool, error) {
	switch ch.Type {
	case model.ChannelTypeDirect:
		// Direct channel names are "<user id>__<user id>".
		a, b, _ := strings.Cut(ch.Name, "__")
		return a == r.botUserID || b == r.botUserID, nil
	case model.ChannelTypeGroup:
		if member, ok := r.botMember.get(ch.Id); ok {
			return member, nil
		}
		_, appErr := r.api.GetChannelMember(ch.Id, r.botUserID)
		member := appErr == nil
		if appErr != nil && appErr.StatusCode != 404 {
			return false, fmt.Errorf("checking the bot's membership of channel %s: %w", ch.Id, appErr)
		}
		r.botMember.put(ch.Id, member)
		return member, nil
	default:
		return false, nil
	}
}

// isBotThread reports whether the thread rooted at rootID may be a Codex thread: started by the
// bot, or by a post that @-mentions it (the host knows whether that mention became a run).
func (r *resolver) isBotThread(rootID string) (bool, error) {
	if v, ok := r.botThread.get(rootID); ok {
		return v, nil
	}
	root, appErr := r.api.GetPost(rootID)
	if appErr != nil {
		return false, fmt.Errorf("looking up root post %s: %w", rootID, appErr)
	}
	v := root.UserId == r.botUserID || mentionsBot(root.Message)
	r.botThread.put(rootID, v)
	return v, nil
}

// ttlCache is a small map with expiry; when full it is emptied rather than evicting one by one,
// which keeps it simple and bounded.
type ttlCache[V any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](ttl time.Duration, max int) *ttlCache[V] {
	return &ttlCache[V]{ttl: ttl, max: max, entries: map[string]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || time.Now().After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		c.entries = map[string]ttlEntry[V]{}
	}
	c.entries[k] = ttlEntry[V]{v: v, expires: time.Now().Add(c.ttl)}
}
