package main

// GenerateSupportData: what a Support Packet (System Console > Reporting > Support Packet)
// carries about Codex for Mattermost, so that whoever helps an admin sees the versions, the
// host's health and the settings without asking for them. Secrets never leave: the shared secret
// is reduced to whether it is set, and credentials in URLs or Codex config lines are replaced.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const supportFile = "codex-for-mattermost/diagnostics.json"

type supportData struct {
	PluginVersion string          `json:"plugin_version"`
	HostMode      string          `json:"host_mode,omitempty"`
	Active        bool            `json:"active"`
	HostRestarts  uint64          `json:"managed_host_restarts"`
	Settings      map[string]any  `json:"settings"`
	Host          json.RawMessage `json:"host_health,omitempty"`
	HostError     string          `json:"host_error,omitempty"`
}

func (p *Plugin) GenerateSupportData(_ *plugin.Context) ([]*model.FileData, error) {
	data := supportData{
		HostRestarts: managedHostRestarts.Load(),
		Settings:     redactSettings(p.API.GetPluginConfig()),
	}
	if st := p.state(); st != nil {
		data.Active, data.PluginVersion, data.HostMode = true, st.version, st.mode()
		if raw, err := st.conn("").call(context.Background(), timeoutHealth, http.MethodGet, routeHealth, nil); err != nil {
			data.HostError = err.Error()
		} else {
			data.Host = raw
		}
	}
	body, err := json.MarshalIndent(data, "", "  ")
	if err != nil {
		return nil, err
	}
	return []*model.FileData{{Filename: supportFile, Body: body}}, nil
}

// secretKey matches setting and config keys whose values are credentials.
var secretKey = regexp.MustCompile(`(?i)(secret|token|password|passwd|api[_-]?key|auth|credential|bearer|private[_-]?key)`)

// redactSettings copies the plugin's settings with every credential removed.
func redactSettings(in map[string]any) map[string]any {
	out := make(map[string]any, len(in))
	for k, v := range in {
		s, isString := v.(string)
		switch {
		case secretKey.MatchString(k):
			out[k] = "(empty)"
			if v != nil && (!isString || s != "") {
				out[k] = "(set)"
			}
		case !isString:
			out[k] = v
		case strings.EqualFold(k, "codexconfig"):
			out[k] = redactConfigLines(s)
		default:
			out[k] = redactURLCredentials(s)
		}
	}
	return out
}

// redactConfigLines keeps Codex config lines (`key = value`) but replaces the values of those whose
// key names a credential, and credentials inside URLs.
func redactConfigLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		if key, _, ok := strings.Cut(line, "="); ok && secretKey.MatchString(key) {
			lines[i] = strings.TrimRight(key, " ") + " = (redacted)"
			continue
		}
		lines[i] = redactURLCredentials(line)
	}
	return strings.Join(lines, "\n")
}

var urlWithUserinfo = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s"']*@[^\s"']*`)

func redactURLCredentials(s string) string {
	return urlWithUserinfo.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			return "(redacted URL)"
		}
		u.User = url.User("redacted")
		return u.String()
	})
}
