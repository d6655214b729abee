package main

// The plugin's System Console settings: one typed struct, parsed and validated in one place.
// Names and defaults come from manifest.json (settings.go); a unit test keeps the struct's fields
// equal to the manifest's settings.
//
// Mattermost hands settings over as a loosely typed map (keys may arrive lower-cased, numbers as
// JSON numbers or strings). parseConfiguration turns that map into a configuration or reports every
// problem by the setting's name in System Console, with the accepted values. The plugin checks what
// it owns (host mode, socket, secret, URLs, value types); the host validates what it acts on
// (projects, sandbox, ranges) when the settings are pushed. This file does no I/O.

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Host modes.
const (
	hostModeManaged  = "managed"
	hostModeExternal = "external"
)

// uidUnset marks an empty Host OS user id setting.
const uidUnset = -1

// maxUID is the largest uid a Unix system assigns ((uid_t)-1 means "no user").
const maxUID = 1<<32 - 2

// maxSocketPathLen is the longest Unix socket path every supported OS accepts (macOS: 104 bytes
// including the terminating NUL; Linux: 108).
const maxSocketPathLen = 103

// maxWorktreeIdleDays is the largest accepted Remove idle worktrees after (days), about ten years.
const maxWorktreeIdleDays = 3650

// configuration is the last good set of System Console settings.
type configuration struct {
	HostMode        string
	SocketPath      string
	HostSecret      string
	ExternalHostUID int // uidUnset: the Mattermost server's own uid
	MattermostURL   string

	AllowedUsers    []string
	AllowedChannels []string
	AllowedTeams    []string
	AllowedBotIDs   []string // plugin-only: bot accounts whose posts and commands may reach the host

	Projects       string
	DefaultProject string

	WorktreeDir      string // where threads of `worktree=on` projects get their git worktrees
	WorktreeIdleDays int    // worktrees idle this long are removed (never dirty ones); 0: never

	CodexPath      string
	CodexHome      string
	CodexConfig    string
	DefaultSandbox string
	Model          string
	RunIsolation   string
	CodexEnv       string

	RunTimeoutMinutes      float64
	MaxConcurrentRuns      int
	QueueLimit             int
	RetentionDays          int
	TranscriptBudgetChars  int
	ThreadRepliesContinue  bool
	PolicyDir              string
	ApproversIncludeAdmins bool
	AccessApprovers        []string
	CommandApprovalDefault string
	SteerBy                string
}

// settingsReader reads typed values out of Mattermost's settings map and collects problems.
type settingsReader struct {
	raw      map[string]any
	problems []string
}

func (r *settingsReader) lookup(key string) (any, bool) {
	if v, ok := r.raw[key]; ok {
		return v, true
	}
	v, ok := r.raw[strings.ToLower(key)]
	return v, ok
}

func (r *settingsReader) problem(key, format string, args ...any) {
	r.problems = append(r.problems, manifestSettings.displayName(key)+": "+fmt.Sprintf(format, args...))
}

// str reads a text setting; empty means the manifest's default.
func (r *settingsReader) str(key string) string {
	def := manifestSettings.defaultString(key)
	v, ok := r.lookup(key)
	if !ok || v == nil {
		return def
	}
	switch s := v.(type) {
	case string:
		if strings.TrimSpace(s) == "" {
			return def
		}
		return strings.TrimSpace(s)
	case float64, bool:
		return fmt.Sprint(s)
	default:
		r.problem(key, "expected text, got %T.", v)
		return def
	}
}

// number accepts a JSON number or a numeric string (System Console has saved both over time);
// empty means the manifest's default.
func (r *settingsReader) number(key string, integer bool) float64 {
	def := manifestSettings.defaultNumber(key)
	v, ok := r.lookup(key)
	if !ok || v == nil {
		return def
	}
	var n float64
	switch x := v.(type) {
	case float64:
		n = x
	case string:
		if strings.TrimSpace(x) == "" {
			return def
		}
		parsed, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			r.problem(key, "`%s` is not a number.", x)
			return def
		}
		n = parsed
	default:
		r.problem(key, "expected a number, got %T.", v)
		return def
	}
	if n < 0 {
		r.problem(key, "%v is negative; accepted: 0 or more.", n)
		return def
	}
	if integer && n != float64(int64(n)) {
		r.problem(key, "%v is not a whole number.", n)
		return def
	}
	return n
}

func (r *settingsReader) boolean(key string) bool {
	def := manifestSettings.defaultBool(key)
	v, ok := r.lookup(key)
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "":
			return def
		case "true":
			return true
		case "false":
			return false
		}
	}
	r.problem(key, "`%v` is not true or false.", v)
	return def
}

// list splits a setting on commas, whitespace and newlines; a leading @ (as in @alice) or ~ (as in
// ~town-square) is dropped, so admins can paste mentions.
func (r *settingsReader) list(key string) []string {
	s := r.str(key)
	out := []string{}
	for _, item := range strings.FieldsFunc(s, func(c rune) bool {
		return c == ',' || c == ';' || c == ' ' || c == '\n' || c == '\r' || c == '\t'
	}) {
		item = strings.TrimLeft(item, "@~")
		if item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseConfiguration turns Mattermost's settings map into a configuration, or an error listing
// every problem.
func parseConfiguration(raw map[string]any) (*configuration, error) {
	r := &settingsReader{raw: raw}
	c := &configuration{
		HostMode:               strings.ToLower(r.str("HostMode")),
		SocketPath:             r.str("SocketPath"),
		HostSecret:             r.str("HostSecret"),
		ExternalHostUID:        uidUnset,
		MattermostURL:          strings.TrimRight(r.str("MattermostURL"), "/"),
		AllowedUsers:           r.list("AllowedUsers"),
		AllowedChannels:        r.list("AllowedChannels"),
		AllowedTeams:           r.list("AllowedTeams"),
		AllowedBotIDs:          r.list("AllowedBotIds"),
		Projects:               r.str("Projects"),
		DefaultProject:         r.str("DefaultProject"),
		CodexPath:              r.str("CodexPath"),
		CodexHome:              r.str("CodexHome"),
		CodexConfig:            r.str("CodexConfig"),
		DefaultSandbox:         r.str("DefaultSandbox"),
		Model:                  r.str("Model"),
		RunIsolation:           r.str("RunIsolation"),
		CodexEnv:               r.str("CodexEnv"),
		RunTimeoutMinutes:      r.number("RunTimeoutMinutes", false),
		MaxConcurrentRuns:      int(r.number("MaxConcurrentRuns", true)),
		QueueLimit:             int(r.number("QueueLimit", true)),
		RetentionDays:          int(r.number("RetentionDays", true)),
		TranscriptBudgetChars:  int(r.number("TranscriptBudgetChars", true)),
		ThreadRepliesContinue:  r.boolean("ThreadRepliesContinue"),
		PolicyDir:              r.str("PolicyDir"),
		ApproversIncludeAdmins: r.boolean("ApproversIncludeAdmins"),
		AccessApprovers:        r.list("AccessApprovers"),
		CommandApprovalDefault: r.str("CommandApprovalDefault"),
		SteerBy:                r.str("SteerBy"),
		WorktreeDir:            r.str("WorktreeDir"),
		WorktreeIdleDays:       int(r.number("WorktreeIdleDays", true)),
	}
	// The uid is a text setting so that empty can mean "the server's own user".
	if r.str("ExternalHostUID") != "" {
		c.ExternalHostUID = int(r.number("ExternalHostUID", true))
	}

	switch c.HostMode {
	case hostModeManaged:
	case hostModeExternal:
		if c.SocketPath == "" {
			r.problem("SocketPath", "required in external mode; give the path the host was started with (`codex-host serve --socket PATH`).")
		}
		if c.HostSecret == "" {
			r.problem("HostSecret", "required in external mode; press Regenerate, then give the same value to the host as CODEX_HOST_SECRET.")
		}
	default:
		r.problem("HostMode", "`%s` is not a host mode; accepted: managed, external.", c.HostMode)
	}
	if c.SocketPath != "" {
		if !filepath.IsAbs(c.SocketPath) {
			r.problem("SocketPath", "`%s` is not an absolute path.", c.SocketPath)
		} else if len(c.SocketPath) > maxSocketPathLen {
			r.problem("SocketPath", "`%s` is %d bytes long; Unix sockets accept at most %d. Pick a shorter path, e.g. /run/codex-host/host.sock.", c.SocketPath, len(c.SocketPath), maxSocketPathLen)
		}
	}
	if c.ExternalHostUID > maxUID {
		r.problem("ExternalHostUID", "%d is not a uid; accepted: 0 to %d (find it with `id -u <user>`).", c.ExternalHostUID, maxUID)
	}
	if c.MattermostURL != "" {
		u, err := url.Parse(c.MattermostURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.problem("MattermostURL", "`%s` is not an http:// or https:// URL.", c.MattermostURL)
		}
	}
	if slices.Contains(c.AllowedChannels, allowEveryone) {
		r.problem("AllowedChannels", "`*` is accepted in Allowed users only; leave this setting empty for every channel of the allowed teams.")
	}
	if slices.Contains(c.AccessApprovers, allowEveryone) {
		r.problem("AccessApprovers", "`*` is accepted in Allowed users only; list usernames, or leave this setting empty for every system admin.")
	}
	if slices.Contains(c.AllowedTeams, allowEveryone) {
		r.problem("AllowedTeams", "`*` is accepted in Allowed users only; leave this setting empty for every team.")
	}
	if c.PolicyDir != "" && !filepath.IsAbs(c.PolicyDir) {
		r.problem("PolicyDir", "`%s` is not an absolute path.", c.PolicyDir)
	}
	if c.CodexHome != "" && !filepath.IsAbs(c.CodexHome) {
		r.problem("CodexHome", "`%s` is not an absolute path.", c.CodexHome)
	}
	if c.WorktreeDir != "" && !filepath.IsAbs(c.WorktreeDir) {
		r.problem("WorktreeDir", "`%s` is not an absolute path; give one, or leave it empty for the host's state directory.", c.WorktreeDir)
	}
	if c.WorktreeIdleDays > maxWorktreeIdleDays {
		r.problem("WorktreeIdleDays", "%d is out of range; accepted: 0 (never) to %d.", c.WorktreeIdleDays, maxWorktreeIdleDays)
	}

	if len(r.problems) > 0 {
		return nil, &configError{problems: r.problems}
	}
	return c, nil
}

// configError lists every problem found in one settings document.
type configError struct {
	problems []string
}

func (e *configError) Error() string {
	return "invalid Codex for Mattermost settings: " + strings.Join(e.problems, " ")
}

// hostSettings is the part of the configuration the host acts on, with the allowlist settings as
// the admin wrote them; allowlistResolver turns them into ids just before each push.
func (c *configuration) hostSettings() HostSettings {
	return HostSettings{
		AllowedUsers:           c.AllowedUsers,
		AllowedChannels:        c.AllowedChannels,
		AllowedTeams:           c.AllowedTeams,
		Projects:               c.Projects,
		DefaultProject:         c.DefaultProject,
		CodexPath:              c.CodexPath,
		CodexHome:              c.CodexHome,
		CodexConfig:            c.CodexConfig,
		DefaultSandbox:         c.DefaultSandbox,
		Model:                  c.Model,
		RunIsolation:           c.RunIsolation,
		CodexEnv:               c.CodexEnv,
		RunTimeoutMinutes:      c.RunTimeoutMinutes,
		MaxConcurrentRuns:      c.MaxConcurrentRuns,
		QueueLimit:             c.QueueLimit,
		RetentionDays:          c.RetentionDays,
		ThreadRepliesContinue:  c.ThreadRepliesContinue,
		TranscriptBudgetChars:  c.TranscriptBudgetChars,
		PolicyDir:              c.PolicyDir,
		ApproversIncludeAdmins: c.ApproversIncludeAdmins,
		AccessApprovers:        c.AccessApprovers,
		CommandApprovalDefault: c.CommandApprovalDefault,
		SteerBy:                c.SteerBy,
		WorktreeDir:            c.WorktreeDir,
		WorktreeIdleDays:       c.WorktreeIdleDays,
	}
}
