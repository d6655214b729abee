package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSupportPacketCarriesNoSecrets(t *testing.T) {
	api := newTestAPI(t)
	p := &Plugin{}
	p.SetAPI(api)
	api.On("GetPluginConfig").Return(map[string]any{
		"hostsecret":    "s3cret-shared-value",
		"mattermosturl": "https://admin:hunter2@chat.example.com",
		"codexconfig":   "model_providers.corp.base_url = \"https://bot:pa55@llm.example.com/v1\"\nmodel_providers.corp.api_key = \"sk-live-abcdef\"\nmodel = \"gpt-5.5\"",
		"projects":      "api = /srv/api",
		"queuelimit":    20,
	})
	files, err := p.GenerateSupportData(nil)
	require.NoError(t, err)
	require.Len(t, files, 1)
	assert.Equal(t, supportFile, files[0].Filename)
	body := string(files[0].Body)
	for _, secret := range []string{"s3cret-shared-value", "hunter2", "pa55", "sk-live-abcdef"} {
		assert.NotContains(t, body, secret)
	}

	var doc supportData
	require.NoError(t, json.Unmarshal(files[0].Body, &doc))
	assert.False(t, doc.Active, "an inactive plugin says so")
	assert.Equal(t, "(set)", doc.Settings["hostsecret"])
	assert.Equal(t, "https://redacted@chat.example.com", doc.Settings["mattermosturl"])
	assert.Equal(t, "api = /srv/api", doc.Settings["projects"])
	assert.EqualValues(t, 20, doc.Settings["queuelimit"])
	cfg := doc.Settings["codexconfig"].(string)
	assert.Contains(t, cfg, `model = "gpt-5.5"`, "lines without credentials are kept")
	assert.Contains(t, cfg, "model_providers.corp.api_key = (redacted)")
	assert.True(t, strings.Contains(cfg, "https://redacted@llm.example.com/v1"), cfg)
}

func TestAnEmptySecretIsReportedAsEmpty(t *testing.T) {
	out := redactSettings(map[string]any{"hostsecret": "", "HostSecret2": nil})
	assert.Equal(t, "(empty)", out["hostsecret"])
	assert.Equal(t, "(empty)", out["HostSecret2"])
}
