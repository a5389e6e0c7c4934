package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fincore/fincore/platform/config"
)

const configUsage = `usage:
  fincore config get KEY [CONN]
  fincore config set KEY VALUE [--reason TEXT] [--expect-version N] [CONN]
  fincore config list [--prefix PREFIX] [CONN]
  fincore config history KEY [CONN]

VALUE is JSON (true, 250, "on", '{"rate_per_s":100,"burst":200}'); a VALUE that is not JSON
is sent as a string, so 'set switch.payments degraded' works. Keys: docs/config.md.

CONN is the running server to talk to:
  --server URL   its base URL (default http://127.0.0.1:8080)
  --key TOKEN    an admin API key (default $FINCORE_API_KEY)
`

// configListPage is how many values `config list` asks for per request.
const configListPage = 1000

// cmdConfig runs `fincore config get|set|list|history` against a server's /v1/config. Results
// go to stdout (get prints the bare value, for scripts), details of a get to stderr.
func cmdConfig(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(configUsage)
	}
	verb, args := args[0], args[1:]
	// Positional arguments come first, so that a VALUE such as -5 is not taken for a flag
	// (no key starts with "-", no JSON value with "--").
	need := map[string]int{"get": 1, "set": 2, "list": 0, "history": 1}
	n, ok := need[verb]
	if !ok {
		return fmt.Errorf("unknown config command %q\n%s", verb, configUsage)
	}
	for i := range n {
		if i >= len(args) || strings.HasPrefix(args[i], "--") || i == 0 && strings.HasPrefix(args[i], "-") {
			return fmt.Errorf("config %s needs %d argument(s) before its flags\n%s", verb, n, configUsage)
		}
	}
	pos, args := args[:n], args[n:]

	fs := flag.NewFlagSet("config "+verb, flag.ContinueOnError)
	server := fs.String("server", "http://127.0.0.1:8080", "the server's base URL")
	fs.StringVar(server, "url", "http://127.0.0.1:8080", "same as --server")
	token := fs.String("key", "", "an admin API key (default $"+envAPIKey+")")
	var reason, prefix *string
	var expect *int64
	switch verb {
	case "set":
		reason = fs.String("reason", "", "why; recorded with the change")
		expect = fs.Int64("expect-version", -1, "change only if the key is at this version (0: has no value)")
	case "list":
		prefix = fs.String("prefix", "", "only keys starting with this text")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *token == "" {
		*token = os.Getenv(envAPIKey)
	}
	if *token == "" {
		return fmt.Errorf("no API key: give --key or set $%s", envAPIKey)
	}
	u, err := url.Parse(*server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--server %q is not an http(s) URL", *server)
	}
	// The client of `fincore keys` speaks the API's JSON and error envelope.
	c := &httpKeys{base: strings.TrimSuffix(*server, "/"), token: *token, c: &http.Client{Timeout: 30 * time.Second}}
	ctx := context.Background()
	keyPath := func(key string) string { return "/v1/config/" + url.PathEscape(key) }

	switch verb {
	case "get":
		var e config.Entry
		if err := c.do(ctx, "GET", keyPath(pos[0]), nil, &e); err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(e.Value))
		fmt.Fprintf(stderr, "%s: version %d, set by %s at %s%s\n", e.Key, e.Version, e.Actor, e.At.Format(time.RFC3339), because(e.Reason))
	case "set":
		body := map[string]any{"value": jsonArg(pos[1])}
		if *reason != "" {
			body["reason"] = *reason
		}
		if *expect >= 0 {
			body["expected_version"] = *expect
		}
		var ch config.Change
		if err := c.do(ctx, "PUT", keyPath(pos[0]), body, &ch); err != nil {
			return err
		}
		old := "(unset)"
		if ch.OldVersion != 0 {
			old = string(ch.OldValue)
		}
		fmt.Fprintf(stdout, "%s: %s -> %s (version %d)\n", ch.Key, old, ch.Value, ch.Version)
	case "list":
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "KEY\tVALUE\tVERSION\tUPDATED_BY\tUPDATED_AT")
		after := ""
		// Bounded: a bucket of DefaultBucketMaxBytes holds fewer keys than this many pages.
		for range 1000 {
			q := url.Values{"limit": {fmt.Sprint(configListPage)}, "prefix": {*prefix}}
			if after != "" {
				q.Set("starting_after", after)
			}
			var page struct {
				Data    []config.Entry `json:"data"`
				HasMore bool           `json:"has_more"`
			}
			if err := c.do(ctx, "GET", "/v1/config?"+q.Encode(), nil, &page); err != nil {
				return err
			}
			for _, e := range page.Data {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", e.Key, e.Value, e.Version, e.Actor, e.At.Format(time.RFC3339))
			}
			if !page.HasMore || len(page.Data) == 0 {
				break
			}
			after = page.Data[len(page.Data)-1].Key
		}
		return tw.Flush()
	case "history":
		var h struct {
			Data []config.Change `json:"data"`
		}
		if err := c.do(ctx, "GET", keyPath(pos[0])+"/history?limit="+fmt.Sprint(config.HistoryDefault), nil, &h); err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tAT\tACTOR\tOLD\tNEW\tREASON")
		for _, ch := range h.Data {
			old := "-"
			if ch.OldVersion != 0 {
				old = string(ch.OldValue)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", ch.Version, ch.At.Format(time.RFC3339), ch.Actor, old, ch.Value, ch.Reason)
		}
		return tw.Flush()
	}
	return nil
}

// jsonArg is a VALUE argument as JSON: itself if it is JSON, else a JSON string of it.
func jsonArg(s string) json.RawMessage {
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return " (" + reason + ")"
}
