package main

// The socket contract v1 between the plugin and codex-host, as Go types.
//
// This is the Go copy of docs/socket-contract.md; the host keeps the Rust twin in
// host/src/api/contract.rs. The golden documents in contract/golden/ are decoded by both sides'
// tests (contract_test.go here), so the two copies and the page cannot drift apart. Unknown fields
// are ignored when decoding, so either side can add optional fields without breaking the other.
// Nothing in this file does I/O.

import (
	"encoding/json"

	"github.com/mattermost/mattermost/server/public/model"
)

// Host routes, relative to the socket.
const (
	routeCommands     = "/v1/commands"
	routePosts        = "/v1/posts"
	routeActions      = "/v1/actions"
	routeAutocomplete = "/v1/autocomplete/projects"
	routeConfig       = "/v1/config"
	routeHealth       = "/v1/health"
)

// Channel kinds as the contract spells them (Mattermost's O, P, D, G).
const (
	kindPublic  = "public"
	kindPrivate = "private"
	kindDirect  = "direct"
	kindGroup   = "group"
)

// User is a Mattermost user as resolved by the plugin.
type User struct {
	ID       string   `json:"id"`
	Username string   `json:"username"`
	Roles    []string `json:"roles"`
	IsBot    bool     `json:"is_bot"`
}

// Channel is a Mattermost channel with its kind and team.
type Channel struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	Kind        string `json:"kind"`
	TeamID      string `json:"team_id"`
	TeamName    string `json:"team_name"`
}

// CommandRequest is the body of POST /v1/commands. The host answers with a CommandAnswer.
type CommandRequest struct {
	User      User    `json:"user"`
	Channel   Channel `json:"channel"`
	RootID    string  `json:"root_id"`
	TriggerID string  `json:"trigger_id"`
	Text      string  `json:"text"`
	// BotCanPost says whether the bot may already post in the channel. When it may not and the
	// text starts a run, the host answers NeedsBotAccess and does nothing else.
	BotCanPost bool `json:"bot_can_post"`
}

// CommandAnswer answers POST /v1/commands: a Mattermost CommandResponse, which the plugin returns
// as is, or NeedsBotAccess: the plugin gives the bot access to the channel and asks again.
type CommandAnswer struct {
	model.CommandResponse
	NeedsBotAccess bool `json:"needs_bot_access,omitempty"`
}

// IncomingPost is a post the plugin saw in MessageHasBeenPosted.
type IncomingPost struct {
	ID        string   `json:"id"`
	RootID    string   `json:"root_id"`
	ChannelID string   `json:"channel_id"`
	UserID    string   `json:"user_id"`
	Message   string   `json:"message"`
	FileIDs   []string `json:"file_ids"`
	CreateAt  int64    `json:"create_at"`
}

// PostRequest is the body of POST /v1/posts.
type PostRequest struct {
	User    User         `json:"user"`
	Channel Channel      `json:"channel"`
	Post    IncomingPost `json:"post"`
	// BotCanPost: as in CommandRequest, for a post that @-mentions the bot.
	BotCanPost bool `json:"bot_can_post"`
}

// PostResponse answers POST /v1/posts.
type PostResponse struct {
	Handled bool `json:"handled"`
	// EphemeralText, when set, is shown to the poster in the same thread (e.g. a refusal).
	EphemeralText string `json:"ephemeral_text,omitempty"`
	// NeedsBotAccess: the post would start a run where the bot may not post yet; the plugin gives
	// the bot access and forwards the post again.
	NeedsBotAccess bool `json:"needs_bot_access,omitempty"`
	// Attachments go with EphemeralText, e.g. the Request access button under a refusal. Kept as
	// the host sent them; the plugin decodes them into Mattermost's type when it posts.
	Attachments []json.RawMessage `json:"attachments,omitempty"`
}

// ActionRequest is the body of POST /v1/actions: Mattermost's PostActionIntegrationRequest with
// user_id taken from the server-set Mattermost-User-Id header, never from the client's body. The
// host answers with a Mattermost PostActionIntegrationResponse, which the plugin passes through.
type ActionRequest struct {
	UserID string `json:"user_id"`
	// User and Channel are resolved by the plugin from UserID and ChannelID (roles decide admin
	// rights; the channel is what the policy sees on a retry).
	User      User           `json:"user"`
	Channel   Channel        `json:"channel"`
	UserName  string         `json:"user_name"`
	PostID    string         `json:"post_id"`
	ChannelID string         `json:"channel_id"`
	TeamID    string         `json:"team_id"`
	TriggerID string         `json:"trigger_id"`
	Context   map[string]any `json:"context"`
}

// AutocompleteItem is one entry of the dynamic project list, in Mattermost's AutocompleteListItem
// shape (Go field names, no JSON tags).
type AutocompleteItem struct {
	Item     string
	Hint     string
	HelpText string
}

// ConfigRequest is the body of PUT /v1/config.
type ConfigRequest struct {
	MattermostURL string       `json:"mattermost_url"`
	BotUserID     string       `json:"bot_user_id"`
	BotUsername   string       `json:"bot_username"`
	BotToken      string       `json:"bot_token"`
	PluginVersion string       `json:"plugin_version"`
	PluginID      string       `json:"plugin_id"`
	ActionsURL    string       `json:"actions_url"`
	Settings      HostSettings `json:"settings"`
}

// HostSettings are the System Console settings the host acts on, keyed as in the contract.
type HostSettings struct {
	AllowedUsers    []string `json:"allowed_users"`
	AllowedChannels []string `json:"allowed_channels"`
	AllowedTeams    []string `json:"allowed_teams"`
	Projects        string   `json:"projects"`
	DefaultProject  string   `json:"default_project"`
	CodexPath       string   `json:"codex_path"`
	CodexHome       string   `json:"codex_home"`
	CodexConfig     string   `json:"codex_config"`
	DefaultSandbox  string   `json:"default_sandbox"`
	Model           string   `json:"model"`
	// RunIsolation is `bubblewrap` (each Codex run in its own namespace) or `off`.
	RunIsolation string `json:"run_isolation"`
	// CodexEnv names host environment variables Codex also gets, one per line.
	CodexEnv              string  `json:"codex_env"`
	RunTimeoutMinutes     float64 `json:"run_timeout_minutes"`
	MaxConcurrentRuns     int     `json:"max_concurrent_runs"`
	QueueLimit            int     `json:"queue_limit"`
	RetentionDays         int     `json:"retention_days"`
	ThreadRepliesContinue bool    `json:"thread_replies_continue"`
	// ApproversIncludeAdmins lets system admins approve runs besides the policy's approvers.
	ApproversIncludeAdmins bool `json:"approvers_include_admins"`
	// AccessApprovers get access requests and may answer them, as ids; empty: system admins.
	AccessApprovers       []string `json:"access_approvers"`
	TranscriptBudgetChars int      `json:"transcript_budget_chars"`
	PolicyDir             string   `json:"policy_dir"`
	// CommandApprovalDefault decides Codex's requests no policy module decides:
	// `ask-requester`, `ask-approvers` or `decline`.
	CommandApprovalDefault string `json:"command_approval_default"`
	// SteerBy says who may steer a running turn with a reply: `requester` or `allowed-users`.
	SteerBy string `json:"steer_by"`
	// WorktreeDir is where threads of `worktree=on` projects get their git worktrees; empty: the
	// host's state directory.
	WorktreeDir string `json:"worktree_dir"`
	// WorktreeIdleDays removes worktrees idle this long (never with uncommitted changes); 0: never.
	WorktreeIdleDays int `json:"worktree_idle_days"`
}

// ConfigResponse answers a successful PUT /v1/config.
type ConfigResponse struct {
	OK       bool     `json:"ok"`
	Warnings []string `json:"warnings"`
}

// Health answers GET /v1/health.
type Health struct {
	Version    string `json:"version"`
	Configured bool   `json:"configured"`
	Codex      struct {
		Path    string `json:"path"`
		Version string `json:"version"`
		// TestedRange: the Codex CLI versions this host release was tested with.
		TestedRange string `json:"tested_range"`
		// Tested: whether Version is in that range; nil while unknown.
		Tested *bool `json:"tested"`
	} `json:"codex"`
	Queue struct {
		Running           int `json:"running"`
		Queued            int `json:"queued"`
		MaxConcurrentRuns int `json:"max_concurrent_runs"`
		QueueLimit        int `json:"queue_limit"`
	} `json:"queue"`
	Policies  []json.RawMessage `json:"policies"`
	Isolation struct {
		Mode    string  `json:"mode"`
		Active  bool    `json:"active"`
		Problem *string `json:"problem"`
	} `json:"isolation"`
	Metrics HostMetrics `json:"metrics"`
}

// HostMetrics are the host's counters since it started (the plugin's Prometheus metrics).
type HostMetrics struct {
	// Runs that reached their outcome, by final status.
	Runs             map[string]uint64 `json:"runs"`
	ApprovalsPending int               `json:"approvals_pending"`
	PolicyDecision   struct {
		// Upper bounds of the buckets in seconds; Counts has one more entry (+Inf), not cumulative.
		BoundsSeconds []float64 `json:"bounds_seconds"`
		Counts        []uint64  `json:"counts"`
		SumSeconds    float64   `json:"sum_seconds"`
	} `json:"policy_decision"`
}

// ErrorBody is the body of every non-2xx answer from the host.
type ErrorBody struct {
	Error string `json:"error"`
}
