// Command manifest writes the bundle's plugin.json: it reads manifest.json, stamps the version
// (the Makefile passes the content of VERSION), lists every setting of settings_schema.sections
// again in settings_schema.settings, and refuses to write a manifest Mattermost would reject
// (model.Manifest.IsValid).
//
// manifest.json defines each setting once, inside its System Console section. The flat list is
// for the server: Mattermost's LoadPluginConfiguration takes defaults, and its config API hides
// secret settings, only from settings_schema.settings; System Console shows the sections and
// ignores the flat list when there are sections.
//
//	go run ./build/manifest -in ../manifest.json -version 0.1.0 -out ../dist/<id>/plugin.json
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/mattermost/mattermost/server/public/model"
)

func main() {
	in := flag.String("in", "manifest.json", "source manifest")
	version := flag.String("version", "", "version to stamp (required)")
	out := flag.String("out", "", "where to write plugin.json (required)")
	flag.Parse()
	if err := run(*in, *version, *out); err != nil {
		fmt.Fprintln(os.Stderr, "manifest:", err)
		os.Exit(1)
	}
}

func run(in, version, out string) error {
	if version == "" || out == "" {
		return fmt.Errorf("-version and -out are required")
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	// Stamp through a generic map so that fields this model version does not know survive.
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s is not valid JSON: %w", in, err)
	}
	doc["version"] = version
	if err := flattenSections(doc); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	stamped, err := json.MarshalIndent(doc, "", "    ")
	if err != nil {
		return err
	}

	var m model.Manifest
	dec := json.NewDecoder(bytes.NewReader(stamped))
	if err := dec.Decode(&m); err != nil {
		return fmt.Errorf("%s does not decode as a Mattermost manifest: %w", in, err)
	}
	if err := m.IsValid(); err != nil {
		return fmt.Errorf("%s is not a valid Mattermost manifest: %w", in, err)
	}
	return os.WriteFile(out, append(stamped, '\n'), 0o644)
}

// flattenSections sets settings_schema.settings to the settings of every section, in order.
func flattenSections(doc map[string]any) error {
	schema, ok := doc["settings_schema"].(map[string]any)
	if !ok {
		return nil
	}
	sections, _ := schema["sections"].([]any)
	if len(sections) == 0 {
		return nil
	}
	if flat, _ := schema["settings"].([]any); len(flat) > 0 {
		return fmt.Errorf("settings_schema has both settings and sections; define each setting once, in its section")
	}
	flat := []any{}
	for _, sec := range sections {
		section, ok := sec.(map[string]any)
		if !ok {
			return fmt.Errorf("settings_schema.sections holds something that is not a section")
		}
		settings, _ := section["settings"].([]any)
		flat = append(flat, settings...)
	}
	schema["settings"] = flat
	return nil
}
