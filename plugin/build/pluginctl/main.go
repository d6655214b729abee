// Command pluginctl uploads and enables the plugin bundle on a Mattermost server, the way
// Mattermost's plugin starter template does it (`make deploy`).
//
// It connects through the server's local-mode socket when one is there (MM_LOCALSOCKETPATH,
// default /var/tmp/mattermost_local.socket; needs ServiceSettings.EnableLocalMode), otherwise
// through the REST API at MM_SERVICESETTINGS_SITEURL with MM_ADMIN_TOKEN, or MM_ADMIN_USERNAME
// and MM_ADMIN_PASSWORD. Uploads need PluginSettings.EnableUploads on the server.
//
//	pluginctl deploy <plugin id> <bundle path>
//	pluginctl enable|disable|reset <plugin id>
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const usage = `usage:
    pluginctl deploy <plugin id> <bundle path>
    pluginctl enable <plugin id>
    pluginctl disable <plugin id>
    pluginctl reset <plugin id>`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pluginctl:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 || (args[0] == "deploy" && len(args) < 3) {
		return errors.New(usage)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client, err := connect(ctx)
	if err != nil {
		return err
	}
	id := args[1]
	switch args[0] {
	case "deploy":
		return deploy(ctx, client, id, args[2])
	case "enable":
		return enable(ctx, client, id)
	case "disable":
		return disable(ctx, client, id)
	case "reset":
		if err := disable(ctx, client, id); err != nil {
			return err
		}
		return enable(ctx, client, id)
	default:
		return errors.New(usage)
	}
}

func connect(ctx context.Context) (*model.Client4, error) {
	socket := os.Getenv("MM_LOCALSOCKETPATH")
	if socket == "" {
		socket = model.LocalModeSocketPath
	}
	if conn, err := net.Dial("unix", socket); err == nil {
		_ = conn.Close()
		log.Printf("using the server's local mode over %s", socket)
		return model.NewAPIv4SocketClient(socket), nil
	}

	siteURL := os.Getenv("MM_SERVICESETTINGS_SITEURL")
	if siteURL == "" {
		return nil, fmt.Errorf("no local-mode socket at %s and MM_SERVICESETTINGS_SITEURL is not set; set it to the server's URL, with MM_ADMIN_TOKEN (or MM_ADMIN_USERNAME and MM_ADMIN_PASSWORD)", socket)
	}
	client := model.NewAPIv4Client(siteURL)
	if token := os.Getenv("MM_ADMIN_TOKEN"); token != "" {
		log.Printf("using a token against %s", siteURL)
		client.SetToken(token)
		return client, nil
	}
	user, password := os.Getenv("MM_ADMIN_USERNAME"), os.Getenv("MM_ADMIN_PASSWORD")
	if user == "" || password == "" {
		return nil, errors.New("set MM_ADMIN_TOKEN, or MM_ADMIN_USERNAME and MM_ADMIN_PASSWORD, to authenticate against " + siteURL)
	}
	log.Printf("logging in as %s against %s", user, siteURL)
	if _, _, err := client.Login(ctx, user, password); err != nil {
		return nil, fmt.Errorf("logging in as %s: %w", user, err)
	}
	return client, nil
}

func deploy(ctx context.Context, client *model.Client4, id, bundlePath string) error {
	f, err := os.Open(bundlePath)
	if err != nil {
		return err
	}
	defer f.Close()
	log.Printf("uploading %s", bundlePath)
	if _, _, err := client.UploadPluginForced(ctx, f); err != nil {
		return fmt.Errorf("uploading the bundle (the server needs PluginSettings.EnableUploads=true, and RequirePluginSignature=false for unsigned bundles): %w", err)
	}
	return enable(ctx, client, id)
}

func enable(ctx context.Context, client *model.Client4, id string) error {
	log.Printf("enabling %s", id)
	if _, err := client.EnablePlugin(ctx, id); err != nil {
		return fmt.Errorf("enabling %s (System Console > Plugins shows why it did not start): %w", id, err)
	}
	return nil
}

func disable(ctx context.Context, client *model.Client4, id string) error {
	log.Printf("disabling %s", id)
	if _, err := client.DisablePlugin(ctx, id); err != nil {
		return fmt.Errorf("disabling %s: %w", id, err)
	}
	return nil
}
