package main

// The System Console settings as manifest.json defines them: the one list of setting keys, names,
// types and defaults. configuration.go reads every value through it, so a default is written once,
// in the manifest. The plugin embeds a copy of the repository's manifest.json (and of
// contract/commands.json, see command.go); `go generate` refreshes both and a unit test fails when
// either copy is stale. This file does no I/O.

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/mattermost/mattermost/server/public/model"
)

//go:generate cp ../../manifest.json ../../contract/commands.json embedded/

//go:embed embedded/manifest.json
var manifestJSON []byte

// manifestSettings is every setting of manifest.json, section by section, keyed by setting key.
var manifestSettings = mustLoadSettings(manifestJSON)

// settingSchema is the part of the manifest that defines the settings.
type settingSchema struct {
	sections []*model.PluginSettingsSection
	byKey    map[string]*model.PluginSetting
}

func mustLoadSettings(raw []byte) settingSchema {
	var m model.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.SettingsSchema == nil {
		panic(fmt.Sprintf("the embedded manifest.json has no settings_schema (%v); run go generate in plugin/server", err))
	}
	s := settingSchema{sections: m.SettingsSchema.Sections, byKey: map[string]*model.PluginSetting{}}
	for _, sec := range s.sections {
		for _, setting := range sec.Settings {
			s.byKey[setting.Key] = setting
		}
	}
	return s
}

// setting returns a setting's definition; asking for a key the manifest lacks is a programming
// error that every unit test run catches.
func (s settingSchema) setting(key string) *model.PluginSetting {
	def, ok := s.byKey[key]
	if !ok {
		panic("manifest.json defines no setting " + key)
	}
	return def
}

// displayName is the setting's name in System Console, used in every message about it.
func (s settingSchema) displayName(key string) string {
	return s.setting(key).DisplayName
}

func (s settingSchema) defaultString(key string) string {
	switch d := s.setting(key).Default.(type) {
	case nil:
		return ""
	case string:
		return d
	default:
		return fmt.Sprint(d)
	}
}

func (s settingSchema) defaultNumber(key string) float64 {
	switch d := s.setting(key).Default.(type) {
	case float64:
		return d
	case string:
		n, _ := strconv.ParseFloat(d, 64)
		return n
	default:
		return 0
	}
}

func (s settingSchema) defaultBool(key string) bool {
	d, _ := s.setting(key).Default.(bool)
	return d
}
