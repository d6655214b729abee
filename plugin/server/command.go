package main

// The /codex slash command: its registration with full autocomplete, and ExecuteCommand, which
// resolves who and where, forwards the text to the host and returns the host's answer. The host
// interprets the text (subcommands, prompts); the plugin never does.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const commandTrigger = "codex"

// autocompleteProjectsPath is the plugin route serving the dynamic project list. It is relative:
// the server prefixes /plugins/<id> when the command is registered.
const autocompleteProjectsPath = "autocomplete/projects"

// subcommand is one /codex subcommand as autocomplete shows it. Help texts are short enough to
// read on a phone. The list is also what decides whether the bot must be able to post in the
// channel before the text is forwarded (informational).
type subcommand struct {
	name, hint, help string
	arg              func(*model.AutocompleteData)
	answerOnly       bool // answers the user only; nothing is posted in the channel
}

func promptArg(help string) func(*model.AutocompleteData) {
	return func(ad *model.AutocompleteData) { ad.AddTextArgument(help, "[prompt]", "") }
}

var subcommands = []subcommand{
	{"new", "[prompt]", "Start a new Codex session in a new thread", promptArg("What Codex should do"), false},
	{"continue", "[prompt]", "Continue this channel's latest session", promptArg("What Codex should do next"), false},
	{"project", "[name]", "Show or switch this channel's project", func(ad *model.AutocompleteData) {
		ad.AddDynamicListArgument("Project for this channel (leave empty to see the current one)", autocompleteProjectsPath, false)
	}, true},
	{"projects", "", "List the projects Codex can work on", nil, true},
	{"status", "", "Show running and queued Codex runs", nil, true},
	{"last", "", "Show the last run in this channel", nil, true},
	{"cancel", "", "Cancel the run in this thread", nil, true},
	{"policy", "", "What you may do here, and why", nil, true},
	{"help", "", "How to use /codex", nil, true},
}

// codexCommand is the /codex registration. A prompt that matches no subcommand is run as a
// prompt (autocomplete only suggests; it never blocks what can be sent).
func codexCommand() *model.Command {
	ad := model.NewAutocompleteData(commandTrigger, "[prompt] or [command]",
		"Ask Codex to work on a project. Type a prompt, or pick a command.")
	for _, sc := range subcommands {
		sub := model.NewAutocompleteData(sc.name, sc.hint, sc.help)
		if sc.arg != nil {
			sc.arg(sub)
		}
		ad.AddCommand(sub)
	}
	return &model.Command{
		Trigger:          commandTrigger,
		DisplayName:      "Codex",
		Description:      "Run OpenAI Codex on a configured project; answers arrive in a thread.",
		AutoComplete:     true,
		AutoCompleteHint: "[prompt] or [command]",
		AutoCompleteDesc: "Ask Codex to work on a project, or type help",
		AutocompleteData: ad,
	}
}

// commandText is everything after the trigger, with the user's own spacing and newlines kept.
func commandText(command string) string {
	command = strings.TrimLeft(command, " \t")
	if i := strings.IndexAny(command, " \t\n"); i >= 0 {
		return strings.TrimSpace(command[i+1:])
	}
	return ""
}

// informational reports whether a /codex text posts nothing in the channel: an empty text (the
// host answers with help) or a subcommand marked answerOnly. Anything else, including a
// misspelt subcommand, is a prompt as far as the plugin can tell.
func informational(text string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(text), " ")
	if word == "" {
		return true
	}
	for _, sc := range subcommands {
		if strings.EqualFold(word, sc.name) {
			return sc.answerOnly
		}
	}
	return false
}

func ephemeral(text string) *model.CommandResponse {
	return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: text}
}

// ExecuteCommand forwards /codex to the host and returns its answer. Failures never surface as
// an AppError (Mattermost shows those as a bare "unable to execute"): the user gets an ephemeral
// message saying what happened, with their prompt echoed back.
func (p *Plugin) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	text := commandText(args.Command)
	st := p.state()
	if st == nil {
		return ephemeral(unavailableMessage(&hostError{kind: hostUnreachable}, "Your prompt was not run", text)), nil
	}

	user, err := st.resolver.user(args.UserId)
	if err != nil {
		p.API.LogError("Could not resolve the user of a /codex command.", "user_id", args.UserId, "error", err.Error())
		return ephemeral("Codex could not look up your account, so your prompt was not run. Please try again.\n\n" + codeBlock(text)), nil
	}
	if user.IsBot && !st.botAllowed(user.ID) {
		return ephemeral("Codex runs only for people, and @" + user.Username + " is a bot account, so this was not run. A system admin can let a bot trigger runs in **Bots that may trigger runs** (System Console > Plugins > Codex for Mattermost).\n\n" + codeBlock(text)), nil
	}
	channel, err := st.resolver.channel(args.ChannelId, args.TeamId)
	if err != nil {
		p.API.LogError("Could not resolve the channel of a /codex command.", "channel_id", args.ChannelId, "error", err.Error())
		return ephemeral("Codex could not look up this channel, so your prompt was not run. Please try again.\n\n" + codeBlock(text)), nil
	}

	rootID := ""
	if args.RootId != "" {
		var resp *model.CommandResponse
		if rootID, resp = p.commandThread(st, args, text); resp != nil {
			return resp, nil
		}
	}

	// A prompt makes the bot post in this channel; informational subcommands only answer here.
	if !informational(text) {
		if err := st.resolver.ensureBotCanPost(args.ChannelId); err != nil {
			p.API.LogWarn("The bot could not be given access to a channel for /codex.", "channel_id", args.ChannelId, "error", err.Error())
			return ephemeral("Codex cannot answer here: " + err.Error() + ".\n\nYour prompt was not run:\n" + codeBlock(text)), nil
		}
	}

	req := CommandRequest{User: user, Channel: channel, RootID: rootID, TriggerID: args.TriggerId, Text: text}
	raw, err := st.target().client.call(context.Background(), timeoutCommand, http.MethodPost, routeCommands, req)
	if err != nil {
		he := asHostError(err)
		p.API.LogWarn("A /codex command could not be handed to codex-host. "+hostAdvice(he.kind, st.mode()),
			"user", user.Username, "channel_id", channel.ID, "error", he.Error())
		return ephemeral(unavailableMessage(he, "Your prompt was not run", text)), nil
	}
	var resp model.CommandResponse
	if err := json.Unmarshal(raw, &resp); err != nil {
		p.API.LogError("codex-host answered a command with something that is not a CommandResponse.", "error", err.Error())
		return ephemeral(unavailableMessage(&hostError{kind: hostFailed, message: "unreadable answer"}, "Your prompt may not have been run", text)), nil
	}
	if resp.ResponseType == "" {
		resp.ResponseType = model.CommandResponseTypeEphemeral
	}
	return &resp, nil
}

// commandThread checks the thread a command was typed in (resolver.threadRoot) and returns its
// root, or the ephemeral refusal to return instead. Every subcommand is checked, not only prompts:
// cancel and status act on the thread they name too.
func (p *Plugin) commandThread(st *activeState, args *model.CommandArgs, text string) (string, *model.CommandResponse) {
	rootID, postChannel, err := st.resolver.threadRoot(args.UserId, args.ChannelId, args.RootId)
	switch {
	case err == nil:
		return rootID, nil
	case errors.Is(err, errThreadNotHere):
		if postChannel != "" && postChannel != args.ChannelId {
			// Clients do not send this on their own: someone crafted the request.
			p.API.LogWarn("Refused a /codex command that names a thread of another channel (Mattermost does not check a command's root id).",
				"user_id", args.UserId, "channel_id", args.ChannelId, "root_id", args.RootId, "root_channel_id", postChannel)
		}
		return "", ephemeral("Codex cannot answer in this thread: " + err.Error() + ". Use /codex in the thread itself, or at the channel level to start a new one.\n\nYour prompt was not run:\n" + codeBlock(text))
	default:
		p.API.LogError("Could not look up the thread of a /codex command.", "root_id", args.RootId, "error", err.Error())
		return "", ephemeral("Codex could not look up this thread, so your prompt was not run. Please try again.\n\n" + codeBlock(text))
	}
}
