package main

import (
	"bytes"
	"sort"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// memKV is the plugin KV store in memory, with the server's atomic-set semantics and expiry; two
// plugin instances given the same memKV share it as two nodes of a cluster share the database.
type memKV struct {
	mu      sync.Mutex
	m       map[string][]byte
	expires map[string]time.Time
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}, expires: map[string]time.Time{}} }

// live is the key's value, nil once it has expired.
func (k *memKV) live(key string) []byte {
	if at, ok := k.expires[key]; ok && !time.Now().Before(at) {
		delete(k.m, key)
		delete(k.expires, key)
	}
	return k.m[key]
}

func (k *memKV) KVGet(key string) ([]byte, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.live(key), nil
}

func (k *memKV) KVSetWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o.Atomic && !bytes.Equal(k.live(key), o.OldValue) {
		return false, nil
	}
	delete(k.expires, key)
	if value == nil {
		delete(k.m, key)
		return true, nil
	}
	k.m[key] = value
	if o.ExpireInSeconds > 0 {
		k.expires[key] = time.Now().Add(time.Duration(o.ExpireInSeconds) * time.Second)
	}
	return true, nil
}

// expire makes key expire now, as if its writer had stopped refreshing it long ago.
func (k *memKV) expire(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.expires[key] = time.Now()
}

func (k *memKV) KVDelete(key string) *model.AppError {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	delete(k.expires, key)
	return nil
}

func (k *memKV) KVList(page, perPage int) ([]string, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]string, 0, len(k.m))
	for key := range k.m {
		if k.live(key) != nil {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	lo := min(page*perPage, len(keys))
	return keys[lo:min(lo+perPage, len(keys))], nil
}
