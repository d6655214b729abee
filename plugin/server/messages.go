package main

// The few messages the plugin itself shows to people: when codex-host cannot be asked, the user
// learns what happened, what an admin should check, and gets their prompt back so nothing is lost.
// Everything else people read is written by the host.

import (
	"fmt"
	"strings"
)

// unavailableMessage explains a failed host call to the user who triggered it and echoes what they
// typed. what names what was not done ("Your prompt was not run").
func unavailableMessage(he *hostError, what, echoed string) string {
	var b strings.Builder
	switch he.kind {
	case hostRejected, hostFailed:
		fmt.Fprintf(&b, "**Codex ran into an error.** %s.\n\n", what)
		if he.message != "" {
			fmt.Fprintf(&b, "The Codex host said: %s\n\n", oneLine(he.message, 300))
		}
		b.WriteString("A system admin can find the details in the server log (lines starting with `codex-host:`).")
	case hostWrongPeer:
		fmt.Fprintf(&b, "**Codex is not available right now.** %s.\n\n", what)
		b.WriteString("The program answering on the Codex host's socket is not the expected Codex host, so nothing was sent to it. A system admin should check the server log for `refused to talk to the socket`.")
	case hostUnauthorized:
		fmt.Fprintf(&b, "**Codex is not available right now.** %s.\n\n", what)
		b.WriteString("The Codex host refused the plugin. A system admin should check that the host's secret matches **Host secret** in System Console > Plugins > Codex for Mattermost.")
	case runnerOffline:
		fmt.Fprintf(&b, "**Codex is not available right now.** %s: the %s.\n\n", what, oneLine(he.message, 200))
		b.WriteString("Its runner is another machine that connects to this server. Once it is back, send this again; a system admin can see its state with `/codex runner list`.")
	default:
		fmt.Fprintf(&b, "**Codex is not available right now.** %s.\n\n", what)
		b.WriteString("The Codex host is not answering. A system admin should check **Host mode** and **Socket path** in System Console > Plugins > Codex for Mattermost, and the server log for lines starting with `codex-host:`.")
	}
	if strings.TrimSpace(echoed) != "" {
		b.WriteString("\n\nHere is what you sent, so nothing is lost:\n")
		b.WriteString(codeBlock(echoed))
	}
	return b.String()
}

// codeBlock fences text so that no backtick run inside it can close the fence early.
func codeBlock(text string) string {
	longest, run := 0, 0
	for _, c := range text {
		if c == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", max(3, longest+1))
	return fence + "\n" + text + "\n" + fence
}

// oneLine flattens text to one line of at most n runes, for quoting an error inside a message.
func oneLine(text string, n int) string {
	text = strings.Join(strings.Fields(text), " ")
	if r := []rune(text); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return text
}
