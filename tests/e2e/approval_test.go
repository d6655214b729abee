package e2e

// Approvals: the bundled approval-for-risky policy installed the way an admin does it (the .wasm
// from the bundle's policies/ with its JSON settings in the Policy directory), then real button
// presses by the approver and by people who may not approve.

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApprovalWithButtonPresses(t *testing.T) {
	s.usePolicy(t, "approval-for-risky", `{"patterns": ["(?i)\\bdeploy\\b"], "approvers": ["carol"], "min_approvals": 1, "expiry_secs": 600}`)

	t.Run("the approver approves; others cannot", func(t *testing.T) {
		const prompt = "deploy the demo to staging (e2e-approve)"
		s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
		root := s.botRoot(t, s.public, prompt)
		request := s.waitApprovalRequest(t, root.Id)
		assert.Contains(t, request.Message, "@carol", "the request names who may approve")

		for _, a := range []*actor{s.bob, s.alice} { // bob is not an approver; alice asked
			sees := s.listen(t, a)
			_, err := press(a, request, "approve")
			require.NoError(t, err, "the press reaches the plugin; the refusal is an ephemeral message")
			refusal := sees.waitFor(t, s.public.Id, "@carol") // the refusal names who may decide
			t.Logf("@%s pressed Approve and was told: %q", a.user.Username, refusal.Message)
			posts := s.thread(t, root.Id)
			assert.Empty(t, ofKind(posts, "outcome"), "@%s's Approve must not decide the run: %s", a.user.Username, describe(posts))
			assert.Equal(t, "awaiting_approval", status(ofKind(posts, "approval")[0]), "after @%s pressed Approve", a.user.Username)
		}
		assert.False(t, s.modelSaw(t, "e2e-approve"), "Codex must not run before approval")

		_, err := press(s.carol, request, "approve")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "answered", status(out), out.Message)
		assert.Contains(t, out.Message, "Mock answer: "+prompt)
		closed := ofKind(s.thread(t, root.Id), "approval")[0]
		assert.NotEqual(t, "awaiting_approval", status(closed))
		assert.Empty(t, actionIDs(closed), "a decided request keeps no buttons")
	})

	t.Run("the approver denies", func(t *testing.T) {
		const prompt = "deploy to production now (e2e-deny)"
		s.mustCommand(t, s.alice, s.public, "", "/codex "+prompt)
		root := s.botRoot(t, s.public, prompt)
		request := s.waitApprovalRequest(t, root.Id)
		_, err := press(s.carol, request, "deny")
		require.NoError(t, err)
		out := s.waitOutcome(t, root.Id, 1, runTimeout)
		assert.Equal(t, "refused", status(out), out.Message)
		assert.Contains(t, out.Message, "@carol")
		assert.False(t, s.modelSaw(t, "e2e-deny"), "a denied prompt never reaches Codex")
	})
}

// usePolicy installs one of the bundle's example policy modules the way an admin does (the .wasm
// from the bundle's policies/ with its JSON settings in the Policy directory) as the only module
// of the admin's chain until the test ends, and waits until /codex policy lists it.
func (s *suite) usePolicy(t *testing.T, module, config string) {
	t.Helper()
	dir := filepath.Join(s.workDir, "policies-"+module)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	require.NoError(t, extractFromBundle(s.bundle, pluginID+"/policies/"+module+".wasm", filepath.Join(dir, module+".wasm")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, module+".json"), []byte(config), 0o644))
	ctx := context.Background()
	s.settings["policydir"] = dir
	require.NoError(t, s.writeSettings(ctx))
	t.Cleanup(func() {
		s.settings["policydir"] = ""
		assert.NoError(t, s.writeSettings(ctx))
	})
	eventually(t, 60*time.Second, "the host to load "+module, func() (bool, bool, string) {
		resp, err := s.command(ctx, s.alice, s.public, "", "/codex policy")
		if err != nil {
			return false, false, err.Error()
		}
		return true, strings.Contains(resp.Text, module), resp.Text
	})
}

// waitApprovalRequest waits for the thread's approval request with its Approve and Deny buttons.
func (s *suite) waitApprovalRequest(t *testing.T, rootID string) *model.Post {
	t.Helper()
	return eventually(t, 60*time.Second, "an approval request with Approve and Deny", func() (*model.Post, bool, string) {
		posts := s.thread(t, rootID)
		for _, p := range ofKind(posts, "approval") {
			if status(p) == "awaiting_approval" && hasAction(p, "approve") && hasAction(p, "deny") {
				return p, true, ""
			}
		}
		return nil, false, describe(posts)
	})
}

// modelSaw reports whether any request to the mock model contained marker.
func (s *suite) modelSaw(t *testing.T, marker string) bool {
	for _, body := range s.mockRequests(t) {
		if strings.Contains(body, marker) {
			return true
		}
	}
	return false
}

// extractFromBundle copies one file out of the plugin bundle, as an admin does with tar -x.
func extractFromBundle(bundle, name, dest string) error {
	f, err := os.Open(bundle)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return fmt.Errorf("%s is not in %s", name, bundle)
		}
		if err != nil {
			return err
		}
		if strings.TrimPrefix(h.Name, "./") != name {
			continue
		}
		out, err := os.Create(dest)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, tr); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	}
}
