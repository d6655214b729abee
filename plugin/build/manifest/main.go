// Command manifest writes the bundle's plugin.json: it reads manifest.json, stamps the version
// (the Makefile passes the content of VERSION), and refuses to write a manifest Mattermost would
// reject (model.Manifest.IsValid).
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
