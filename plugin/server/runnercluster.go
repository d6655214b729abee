package main

// Runners in a Mattermost cluster: a runner's poll reaches one app node, while a command, reply or
// click may reach any. Each node records in the KV store which node a runner polls ("seen"); a
// node that receives work for a runner polling elsewhere sends the envelope there as a plugin
// cluster event, and the answer comes back the same way, to the node whose caller waits. Routes
// and runner records are in the KV store already, so every node decides alike. Calls for the
// managed host travel on the same link to the one node that runs it (hostlease.go).

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const (
	clusterEnvelopeEvent = "codex_runner_envelope"
	clusterAnswerEvent   = "codex_runner_answer"
	kvRunnerSeen         = "runner_seen_"
	// seenEvery bounds the KV writes of a polling runner.
	seenEvery = 5 * time.Second
	// seenFresh: a runner seen on another node this recently is taken to be polling there (a poll
	// lasts up to pollHold, and the next one follows at once).
	seenFresh = pollHold + runnerGone
)

type clusterLink struct {
	node    string // this node's plugin instance, random per activation
	kv      kvStore
	publish func(model.PluginClusterEvent) error
	hub     *runnerHub
	// localHost is this node's client of the managed host (nil when it runs none): it answers
	// the calls other nodes forward here (hostlease.go).
	localHost func() *hostClient

	mu      sync.Mutex
	written map[string]time.Time
}

type seenRecord struct {
	Node string `json:"node"`
	At   int64  `json:"at"` // unix milliseconds
}

type clusterEnvelope struct {
	Runner   string   `json:"runner"`
	From     string   `json:"from"`
	Envelope envelope `json:"envelope"`
}

type clusterAnswer struct {
	To     string       `json:"to"`
	Answer runnerAnswer `json:"answer"`
}

func newClusterLink(hub *runnerHub, kv kvStore, publish func(model.PluginClusterEvent) error) *clusterLink {
	c := &clusterLink{node: model.NewId(), kv: kv, publish: publish, hub: hub, written: map[string]time.Time{}}
	hub.cluster = c
	return c
}

// markSeen records that runner polls this node (at most every seenEvery).
func (c *clusterLink) markSeen(runner string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	due := time.Since(c.written[runner]) >= seenEvery
	if due {
		c.written[runner] = time.Now()
	}
	c.mu.Unlock()
	if due {
		raw, _ := json.Marshal(seenRecord{Node: c.node, At: model.GetMillis()})
		_, _ = c.kv.KVSetWithOptions(kvRunnerSeen+runner, raw, model.PluginKVSetOptions{})
	}
}

// seenElsewhere reports whether runner polls another node now, and when it was last seen.
func (c *clusterLink) seenElsewhere(runner string, last time.Time) (bool, time.Time) {
	if c == nil {
		return false, last
	}
	raw, appErr := c.kv.KVGet(kvRunnerSeen + runner)
	var rec seenRecord
	if appErr != nil || raw == nil || json.Unmarshal(raw, &rec) != nil {
		return false, last
	}
	at := time.UnixMilli(rec.At)
	if at.After(last) {
		last = at
	}
	return rec.Node != c.node && time.Since(at) < seenFresh, last
}

func (c *clusterLink) send(id string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.publish(model.PluginClusterEvent{Id: id, Data: raw})
}

func (c *clusterLink) sendEnvelope(runner string, env envelope) error {
	return c.send(clusterEnvelopeEvent, clusterEnvelope{Runner: runner, From: c.node, Envelope: env})
}

func (c *clusterLink) sendAnswer(node string, a runnerAnswer) {
	if c != nil {
		_ = c.send(clusterAnswerEvent, clusterAnswer{To: node, Answer: a})
	}
}

// receive handles another node's event: work for a runner polling here, a call for the managed
// host running here, or an answer for a caller waiting here. Everything else is for another node
// and ignored.
func (c *clusterLink) receive(ev model.PluginClusterEvent) {
	switch ev.Id {
	case clusterEnvelopeEvent:
		var in clusterEnvelope
		if json.Unmarshal(ev.Data, &in) != nil || in.From == c.node {
			return
		}
		if polling, _ := c.hub.online(in.Runner); polling {
			c.hub.enqueue(in.Runner, in.Envelope, waiter{runner: in.Runner, node: in.From})
		}
	case clusterHostEvent:
		var in clusterHostEnvelope
		if json.Unmarshal(ev.Data, &in) != nil || in.To != c.node {
			return
		}
		var local *hostClient
		if c.localHost != nil {
			local = c.localHost()
		}
		// Not on the server's goroutine: the host may take up to the call's timeout.
		go c.serveHost(in, local)
	case clusterAnswerEvent:
		var in clusterAnswer
		if json.Unmarshal(ev.Data, &in) != nil || in.To != c.node {
			return
		}
		c.hub.mu.Lock()
		w, ok := c.hub.waiting[in.Answer.ID]
		if ok && w.ch != nil {
			delete(c.hub.waiting, in.Answer.ID)
		}
		c.hub.mu.Unlock()
		if ok && w.ch != nil {
			w.ch <- in.Answer
		}
	}
}

// OnPluginClusterEvent passes runner and managed-host traffic between the nodes of a cluster.
func (p *Plugin) OnPluginClusterEvent(_ *plugin.Context, ev model.PluginClusterEvent) {
	if st := p.state(); st != nil && st.hub.cluster != nil {
		st.hub.cluster.receive(ev)
	}
}
