package main

// The /codex slash command: its registration, with autocomplete built from contract/commands.json
// (embedded as embedded/commands.json), and ExecuteCommand, which resolves who and where, forwards
// the text to the host and returns the host's answer. The host owns the command grammar
// (subcommands, prompts); the plugin never classifies the text. When the host says the text
// starts a run and the bot cannot post in the channel yet (needs_bot_access), the plugin gives the
// bot access and sends the command again.

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// autocompleteProjectsPath is the plugin route serving the dynamic project list. It is relative:
// the server prefixes /plugins/<id> when the command is registered.
const autocompleteProjectsPath = "autocomplete/projects"

//go:embed embedded/commands.json
var commandsJSON []byte

// commandList is contract/commands.json: the /codex trigger and every subcommand, as autocomplete
// shows them (help texts short enough to read on a phone). host/tests/commands.rs checks that the
// host accepts exactly these subcommands.
type commandList struct {
	Trigger     string       `json:"trigger"`
	Hint        string       `json:"hint"`
	Help        string       `json:"help"`
	Subcommands []subcommand `json:"subcommands"`
}

type subcommand struct {
	Name     string           `json:"name"`
	Hint     string           `json:"hint"`
	Help     string           `json:"help"`
	Argument *commandArgument `json:"argument,omitempty"`
}

// commandArgument is a subcommand's one argument: free text, or the dynamic list of projects.
type commandArgument struct {
	Kind string `json:"kind"` // "text" or "projects"
	Hint string `json:"hint,omitempty"`
	Help string `json:"help"`
}

var commands = mustLoadCommands(commandsJSON)

func mustLoadCommands(raw []byte) commandList {
	var c commandList
	if err := json.Unmarshal(raw, &c); err != nil || c.Trigger == "" {
		panic(fmt.Sprintf("the embedded commands.json is not a command list (%v); run go generate in plugin/server", err))
	}
	return c
}

// codexCommand is the /codex registration. A prompt that matches no subcommand is run as a
// prompt (autocomplete only suggests; it never blocks what can be sent).
func codexCommand() *model.Command {
	ad := model.NewAutocompleteData(commands.Trigger, commands.Hint, commands.Help)
	for _, sc := range commands.Subcommands {
		sub := model.NewAutocompleteData(sc.Name, sc.Hint, sc.Help)
		if arg := sc.Argument; arg != nil {
			switch arg.Kind {
			case "projects":
				sub.AddDynamicListArgument(arg.Help, autocompleteProjectsPath, false)
			default:
				sub.AddTextArgument(arg.Help, arg.Hint, "")
			}
		}
		ad.AddCommand(sub)
	}
	return &model.Command{
		Trigger:          commands.Trigger,
		DisplayName:      "Codex",
		Description:      "Run OpenAI Codex on a configured project; answers arrive in a thread.",
		AutoComplete:     true,
		AutoCompleteHint: commands.Hint,
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

	if sub, rest, _ := strings.Cut(text, " "); sub == "runner" {
		return p.runnerCommand(st, user, strings.TrimSpace(rest)), nil
	}

	rootID := ""
	if args.RootId != "" {
		var resp *model.CommandResponse
		if rootID, resp = p.commandThread(st, args, text); resp != nil {
			return resp, nil
		}
	}

	canPost, err := st.resolver.botCanPost(args.ChannelId)
	if err != nil {
		// The host asks for access if the text needs it; the join then says what is wrong.
		p.API.LogWarn("Could not check whether the bot may post in a channel.", "channel_id", args.ChannelId, "error", err.Error())
	}
	req := CommandRequest{User: user, Channel: channel, RootID: rootID, TriggerID: args.TriggerId, Text: text, BotCanPost: canPost}
	resp, runner, failure := p.forwardCommand(st, req)
	if failure == nil && resp.NeedsBotAccess {
		// The host accepted the text as a run request: only now may the bot join the channel.
		if err := st.resolver.ensureBotCanPost(args.ChannelId); err != nil {
			p.API.LogWarn("The bot could not be given access to a channel for /codex.", "channel_id", args.ChannelId, "error", err.Error())
			return ephemeral("Codex cannot answer here: " + err.Error() + ".\n\nYour prompt was not run:\n" + codeBlock(text)), nil
		}
		req.BotCanPost = true
		resp, runner, failure = p.forwardCommand(st, req)
		if failure == nil && resp.NeedsBotAccess {
			p.API.LogError("codex-host asked again for the bot's access to a channel the bot was just given.", "channel_id", args.ChannelId)
			failure = ephemeral(unavailableMessage(&hostError{kind: hostFailed, message: "the host asked twice for channel access"}, "Your prompt was not run", text))
		}
	}
	if failure != nil {
		return failure, nil
	}
	out := resp.CommandResponse
	if out.ResponseType == "" {
		out.ResponseType = model.CommandResponseTypeEphemeral
	}
	if strings.TrimSpace(text) == "projects" {
		// Each host knows only its own projects: the others are listed from the settings.
		out.Text += st.projectsElsewhere(runner)
	}
	return &out, nil
}

// forwardCommand sends a command to the host and returns its answer, or the ephemeral message
// to show instead when the host could not be asked or answered something unreadable.
func (p *Plugin) forwardCommand(st *activeState, req CommandRequest) (*CommandAnswer, string, *model.CommandResponse) {
	projects, defaultProject := st.routing()
	runner := st.route.forCommand(projects, defaultProject, req.Channel.ID, req.RootID, req.Text)
	st.route.allow(runner, req.Channel.ID)
	raw, err := st.conn(runner).call(context.Background(), timeoutCommand, http.MethodPost, routeCommands, req)
	if err != nil {
		he := asHostError(err)
		p.API.LogWarn("A /codex command could not be handed to codex-host. "+hostAdvice(he.kind, st.mode()),
			"user", req.User.Username, "channel_id", req.Channel.ID, "error", he.Error())
		return nil, runner, ephemeral(unavailableMessage(he, "Your prompt was not run", req.Text))
	}
	var resp CommandAnswer
	if err := json.Unmarshal(raw, &resp); err != nil {
		p.API.LogError("codex-host answered a command with something that is not a CommandResponse.", "error", err.Error())
		return nil, runner, ephemeral(unavailableMessage(&hostError{kind: hostFailed, message: "unreadable answer"}, "Your prompt may not have been run", req.Text))
	}
	return &resp, runner, nil
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
