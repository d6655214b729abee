package main

// Remote runners: codex-host processes on other machines that dial out to this server with
// `codex-host connect` (docs/remote-runners.md). This file is their registry — one KV record per
// runner, holding the SHA-256 of its token, never the token — and the `/codex runner` subcommand
// that system admins use to add, list and remove them. The plugin handles that subcommand itself:
// runners are the plugin's to know, not any one host's.

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	kvRunnerPrefix = "runner_"
	// runnerAuthCacheFor bounds how long a removed runner's token keeps working on a node that
	// checked it just before the removal.
	runnerAuthCacheFor = 5 * time.Second
)

var runnerNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// runnerRecord is what the KV store keeps of a runner.
type runnerRecord struct {
	Name      string `json:"name"`
	TokenHash string `json:"token_hash"` // hex SHA-256 of the whole token
	CreatedAt int64  `json:"created_at"`
	CreatedBy string `json:"created_by"`
}

// runnerRegistry reads and writes runner records; it caches successful token checks briefly.
type runnerRegistry struct {
	kv kvStore

	mu    sync.Mutex
	authd map[string]authEntry // token hash → runner
}

type authEntry struct {
	name  string
	until time.Time
}

// kvStore is the part of the plugin API the registry and the router use.
type kvStore interface {
	KVGet(key string) ([]byte, *model.AppError)
	KVSetWithOptions(key string, value []byte, options model.PluginKVSetOptions) (bool, *model.AppError)
	KVDelete(key string) *model.AppError
	KVList(page, perPage int) ([]string, *model.AppError)
}

func newRunnerRegistry(kv kvStore) *runnerRegistry {
	return &runnerRegistry{kv: kv, authd: map[string]authEntry{}}
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// add registers a runner and returns its token, which is shown once and never stored.
func (r *runnerRegistry) add(name, createdBy string) (string, error) {
	if !runnerNameRE.MatchString(name) {
		return "", fmt.Errorf("`%s` is not a runner name: use 1 to 32 lowercase letters, digits or `-`, starting with a letter or digit", name)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("could not make a token: %w", err)
	}
	token := "cxr." + name + "." + base64.RawURLEncoding.EncodeToString(secret)
	rec, _ := json.Marshal(runnerRecord{Name: name, TokenHash: hashToken(token), CreatedAt: model.GetMillis(), CreatedBy: createdBy})
	ok, appErr := r.kv.KVSetWithOptions(kvRunnerPrefix+name, rec, model.PluginKVSetOptions{Atomic: true, OldValue: nil})
	if appErr != nil {
		return "", fmt.Errorf("could not save the runner: %s", appErr.Error())
	}
	if !ok {
		return "", fmt.Errorf("a runner named `%s` exists already; remove it first to give it a new token", name)
	}
	return token, nil
}

func (r *runnerRegistry) get(name string) (*runnerRecord, error) {
	raw, appErr := r.kv.KVGet(kvRunnerPrefix + name)
	if appErr != nil {
		return nil, fmt.Errorf("could not read runner %s: %s", name, appErr.Error())
	}
	if raw == nil {
		return nil, nil
	}
	var rec runnerRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("the record of runner %s is unreadable: %w", name, err)
	}
	return &rec, nil
}

// list returns every runner, by name.
func (r *runnerRegistry) list() ([]runnerRecord, error) {
	var out []runnerRecord
	for page := 0; ; page++ {
		keys, appErr := r.kv.KVList(page, 200)
		if appErr != nil {
			return nil, fmt.Errorf("could not list the runners: %s", appErr.Error())
		}
		for _, k := range keys {
			if name, ok := strings.CutPrefix(k, kvRunnerPrefix); ok {
				rec, err := r.get(name)
				if err != nil {
					return nil, err
				}
				if rec != nil {
					out = append(out, *rec)
				}
			}
		}
		if len(keys) < 200 {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// remove deletes a runner; its token stops working at once on this node, within
// runnerAuthCacheFor on others.
func (r *runnerRegistry) remove(name string) (bool, error) {
	rec, err := r.get(name)
	if err != nil || rec == nil {
		return false, err
	}
	if appErr := r.kv.KVDelete(kvRunnerPrefix + name); appErr != nil {
		return false, fmt.Errorf("could not remove runner %s: %s", name, appErr.Error())
	}
	r.mu.Lock()
	delete(r.authd, rec.TokenHash)
	r.mu.Unlock()
	return true, nil
}

var errBadRunnerToken = errors.New("not a valid runner token (removed, mistyped, or never issued): an admin can issue a new one with /codex runner add")

// authenticate returns the runner a token belongs to. The name is read from the token and the
// token's hash compared in constant time with the stored one.
func (r *runnerRegistry) authenticate(token string) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "cxr" || !runnerNameRE.MatchString(parts[1]) {
		return "", errBadRunnerToken
	}
	h := hashToken(token)
	r.mu.Lock()
	e, ok := r.authd[h]
	r.mu.Unlock()
	if ok && time.Now().Before(e.until) {
		return e.name, nil
	}
	rec, err := r.get(parts[1])
	if err != nil {
		return "", err
	}
	if rec == nil || subtle.ConstantTimeCompare([]byte(rec.TokenHash), []byte(h)) != 1 {
		return "", errBadRunnerToken
	}
	r.mu.Lock()
	r.authd[h] = authEntry{name: rec.Name, until: time.Now().Add(runnerAuthCacheFor)}
	r.mu.Unlock()
	return rec.Name, nil
}
