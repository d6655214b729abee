package main

// The relay: a remote runner makes the same Mattermost REST calls as a local host
// (host/src/chat/mattermost.rs), to /plugins/<id>/runner/v1/mm/api/v4/... with its runner token;
// the plugin makes them as the bot. A runner never holds the bot's token, and it may only read and
// post in channels the plugin gave it work in (router.allow); every other call is refused with
// 403. Posts it creates record their thread's route (routing.go), so that replies and clicks find
// their way back to it.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const relayPrefix = "/runner/v1/mm"

var (
	relayPostRE     = regexp.MustCompile(`^/api/v4/posts/([a-z0-9]{26})(/patch|/thread)?$`)
	relayFileRE     = regexp.MustCompile(`^/api/v4/files/([a-z0-9]{26})(/info)?$`)
	relayHTTPClient = &http.Client{Timeout: 30 * time.Second}
)

func (p *Plugin) handleRunnerRelay(w http.ResponseWriter, r *http.Request) {
	st, runner := p.runnerFromRequest(w, r)
	if runner == "" {
		return
	}
	path := strings.TrimPrefix(r.URL.Path, relayPrefix)
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRunnerBody))
	if err != nil {
		writeError(w, http.StatusBadRequest, "could not read the request: "+err.Error())
		return
	}
	refuse := func(why string) {
		p.API.LogWarn("Refused a runner's Mattermost call.", "runner", runner, "method", r.Method, "path", path, "reason", why)
		writeError(w, http.StatusForbidden, "Refused by the Codex plugin: "+why)
	}
	switch {
	case r.Method == http.MethodPost && path == "/api/v4/posts":
		var post struct {
			ChannelID string `json:"channel_id"`
			RootID    string `json:"root_id"`
		}
		if json.Unmarshal(body, &post) != nil || !st.route.allowed(runner, post.ChannelID) {
			refuse("a runner posts only in channels it was given work in")
			return
		}
		if post.RootID != "" {
			if why := p.threadRefusal(st, runner, post.RootID, post.ChannelID); why != "" {
				refuse(why)
				return
			}
		}
		res := p.forwardAsBot(st, r, path, body)
		var created model.Post
		if res.status < 300 && json.Unmarshal(res.body, &created) == nil && created.Id != "" {
			st.route.recordThread(threadOf(&created), runner)
		}
		res.write(w)
	case relayPostRE.MatchString(path) && (r.Method == http.MethodGet || (r.Method == http.MethodPut && strings.HasSuffix(path, "/patch"))):
		postID := relayPostRE.FindStringSubmatch(path)[1]
		post, appErr := p.API.GetPost(postID)
		if appErr != nil || !st.route.allowed(runner, post.ChannelId) {
			refuse("a runner reads and edits posts only in channels it was given work in")
			return
		}
		if r.Method == http.MethodPut && (post.UserId != st.botUserID || st.route.threadRunner(threadOf(post)) != runner) {
			refuse("a runner edits only the posts it made")
			return
		}
		p.forwardAsBot(st, r, path, body).write(w)
	case r.Method == http.MethodPost && path == "/api/v4/users/ids":
		p.forwardAsBot(st, r, path, body).write(w)
	case r.Method == http.MethodPost && path == "/api/v4/files":
		p.relayUpload(w, r, st, runner, body, refuse)
	case r.Method == http.MethodGet && relayFileRE.MatchString(path):
		m := relayFileRE.FindStringSubmatch(path)
		info, appErr := p.API.GetFileInfo(m[1])
		if appErr != nil || !st.route.allowed(runner, info.ChannelId) {
			refuse("a runner reads only files of channels it was given work in")
			return
		}
		if m[2] == "/info" {
			writeJSON(w, http.StatusOK, info)
			return
		}
		data, appErr := p.API.GetFile(m[1])
		if appErr != nil {
			writeError(w, appErr.StatusCode, appErr.Error())
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(data)
	default:
		refuse("this call is not one codex-host makes")
	}
}

// threadRefusal says why a runner may not post in a thread, or "": the thread must be in the
// channel, and be the runner's own or one no host answered in yet that a person started (an
// @-mention roots a thread on the person's post). Another runner's thread, or one the local host
// started, stays theirs.
func (p *Plugin) threadRefusal(st *activeState, runner, rootID, channelID string) string {
	root, appErr := p.API.GetPost(rootID)
	switch owner := st.route.threadRunner(rootID); {
	case appErr != nil || root.ChannelId != channelID:
		return "the thread is not in that channel"
	case owner == runner:
		return ""
	case owner != "" || root.UserId == st.botUserID:
		return "the thread belongs to another Codex host"
	}
	return ""
}

// threadOf is the root of a post's thread.
func threadOf(post *model.Post) string {
	if post.RootId != "" {
		return post.RootId
	}
	return post.Id
}

// relayUpload uploads one file (multipart `channel_id` + `files`) as the bot and answers as the
// REST API does.
func (p *Plugin) relayUpload(w http.ResponseWriter, r *http.Request, st *activeState, runner string, body []byte, refuse func(string)) {
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := r.ParseMultipartForm(maxRunnerBody); err != nil {
		writeError(w, http.StatusBadRequest, "not a file upload: "+err.Error())
		return
	}
	channelID := r.FormValue("channel_id")
	if !st.route.allowed(runner, channelID) {
		refuse("a runner uploads only to channels it was given work in")
		return
	}
	files := r.MultipartForm.File["files"]
	if len(files) != 1 {
		writeError(w, http.StatusBadRequest, "upload exactly one file")
		return
	}
	f, err := files[0].Open()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	info, appErr := p.API.UploadFile(data, channelID, files[0].Filename)
	if appErr != nil {
		writeError(w, appErr.StatusCode, appErr.Error())
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"file_infos": []*model.FileInfo{info}})
}

// relayed is the server's answer to a relayed call.
type relayed struct {
	status int
	header http.Header
	body   []byte
}

// write passes the answer on, with the headers the host's client reads (rate limits).
func (res relayed) write(w http.ResponseWriter) {
	for _, h := range []string{"Retry-After", "X-Ratelimit-Reset", "X-Ratelimit-Remaining"} {
		if v := res.header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

// forwardAsBot makes the call on the server's REST API with the bot's token.
func (p *Plugin) forwardAsBot(st *activeState, r *http.Request, path string, body []byte) relayed {
	base := strings.TrimRight(st.target().doc.MattermostURL, "/")
	u := base + path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u, bytes.NewReader(body))
	if err != nil {
		return relayed{status: http.StatusBadRequest, header: http.Header{}, body: errorJSON(err.Error())}
	}
	req.Header.Set("Authorization", "Bearer "+st.botToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := relayHTTPClient.Do(req)
	if err != nil {
		return relayed{status: http.StatusBadGateway, header: http.Header{}, body: errorJSON("the plugin could not reach the server's REST API: " + err.Error())}
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, maxRunnerBody))
	return relayed{status: resp.StatusCode, header: resp.Header, body: out}
}

func errorJSON(msg string) []byte {
	b, _ := json.Marshal(ErrorBody{Error: msg})
	return b
}
