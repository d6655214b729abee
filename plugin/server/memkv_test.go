package main

import (
	"bytes"
	"sort"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
)

// memKV is the plugin KV store in memory, with the server's atomic-set semantics; two plugin
// instances given the same memKV share it as two nodes of a cluster share the database.
type memKV struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemKV() *memKV { return &memKV{m: map[string][]byte{}} }

func (k *memKV) KVGet(key string) ([]byte, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key], nil
}

func (k *memKV) KVSetWithOptions(key string, value []byte, o model.PluginKVSetOptions) (bool, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o.Atomic {
		if !bytes.Equal(k.m[key], o.OldValue) {
			return false, nil
		}
	}
	if value == nil {
		delete(k.m, key)
	} else {
		k.m[key] = value
	}
	return true, nil
}

func (k *memKV) KVDelete(key string) *model.AppError {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, key)
	return nil
}

func (k *memKV) KVList(page, perPage int) ([]string, *model.AppError) {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := make([]string, 0, len(k.m))
	for key := range k.m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	lo := min(page*perPage, len(keys))
	return keys[lo:min(lo+perPage, len(keys))], nil
}
