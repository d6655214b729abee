package main

// The golden contract documents (contract/golden/*.json), which host/tests/contract.rs decodes
// too: each decodes into its Go type with no unknown field, and encodes back to the same document
// (for Mattermost's own types, which carry more fields than the host fills: back to a superset).
// docs/socket-contract.md links every one of them.

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const goldenDir = "../../contract/golden"

// goldenType says what a golden document decodes into, and whether encoding it back must give the
// same document (exact) or may add fields (a Mattermost type the host fills only in part).
type goldenType struct {
	decodeInto func() any
	exact      bool
}

// goldenTypes maps a golden file's name, without its numbered or descriptive suffix, to its type.
var goldenTypes = map[string]goldenType{
	"command-request":       {func() any { return &CommandRequest{} }, true},
	"command-response":      {func() any { return &CommandAnswer{} }, false},
	"post-request":          {func() any { return &PostRequest{} }, true},
	"post-response":         {func() any { return &PostResponse{} }, true},
	"action-request":        {func() any { return &ActionRequest{} }, true},
	"action-response":       {func() any { return &model.PostActionIntegrationResponse{} }, false},
	"autocomplete":          {func() any { return &[]AutocompleteItem{} }, true},
	"config-request":        {func() any { return &ConfigRequest{} }, true},
	"config-response":       {func() any { return &ConfigResponse{} }, true},
	"health":                {func() any { return &Health{} }, true},
	"error":                 {func() any { return &ErrorBody{} }, true},
	"access-grant-request":  {func() any { return &AccessGrant{} }, true},
	"access-grant-response": {func() any { return &AccessGranted{} }, true},
	"post":                  {func() any { return &model.Post{} }, false},
}

// goldenTypeOf finds the type of a golden file by the longest matching name prefix.
func goldenTypeOf(name string) (goldenType, bool) {
	best := ""
	for prefix := range goldenTypes {
		if (name == prefix || strings.HasPrefix(name, prefix+"-")) && len(prefix) > len(best) {
			best = prefix
		}
	}
	gt, ok := goldenTypes[best]
	return gt, ok
}

func goldenFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	sort.Strings(files)
	return files
}

func TestGoldenContractDocumentsDecodeIntoTheGoTypes(t *testing.T) {
	for _, file := range goldenFiles(t) {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			gt, ok := goldenTypeOf(name)
			require.True(t, ok, "no Go type for contract/golden/%s.json: add it to goldenTypes", name)
			raw, err := os.ReadFile(file)
			require.NoError(t, err)

			v := gt.decodeInto()
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(v), "the Go type does not take this document as it is")

			again, err := json.Marshal(v)
			require.NoError(t, err)
			var want, got any
			require.NoError(t, json.Unmarshal(raw, &want))
			require.NoError(t, json.Unmarshal(again, &got))
			if gt.exact {
				assert.Equal(t, want, got, "encoding the Go value gives another document")
			} else {
				assertSubset(t, want, got, name)
			}
		})
	}
}

// assertSubset checks that every value of want is in got at the same place.
func assertSubset(t *testing.T, want, got any, path string) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !assert.True(t, ok, "%s: want an object, got %v", path, got) {
			return
		}
		for k, v := range w {
			assertSubset(t, v, g[k], path+"."+k)
		}
	case []any:
		g, ok := got.([]any)
		if !assert.True(t, ok, "%s: want a list, got %v", path, got) || !assert.Len(t, g, len(w), path) {
			return
		}
		for i := range w {
			assertSubset(t, w[i], g[i], path)
		}
	default:
		assert.True(t, reflect.DeepEqual(want, got), "%s: want %v, got %v", path, want, got)
	}
}

func TestSocketContractDocLinksEveryGoldenDocument(t *testing.T) {
	raw, err := os.ReadFile("../../docs/socket-contract.md")
	require.NoError(t, err)
	for _, file := range goldenFiles(t) {
		link := "(../contract/golden/" + filepath.Base(file) + ")"
		assert.True(t, strings.Contains(string(raw), link), "docs/socket-contract.md does not link %s", link)
	}
}
